"""The secrets canary (issue 8 part 4): every journey of the service run with marked values, then every sink searched.

One test on a stack of its own (own Azurite, emulator and host), so every table and queue it searches holds only
what this test made. Marked values: the admin's, the user's and the authentication-events app's tokens; the
registration codes (mail, SMS), the authenticator app's seed and a TOTP code from it, the security question answers;
the reset's codes (right and wrong), its flow secret, its answers (right and wrong) and its passwords (refused and
set). Sinks: every row of every table (all properties), every message of every queue and poison queue (as stored
and base64-decoded), the host's whole log (stdout + stderr), every mail and SMS in the emulator's outbox, and every
status line, header and body the service answered. Allowed: a code in the one message that delivers it, the seed in
the setup answer that hands it to the user, the flow secret in the start answer. Everything else is a leak.

Same approach as tests/integration/test_reset_security.py::test_B3_A2_... (reset only), widened to every journey;
the search helpers are copied here because that module starts fixtures of its own on import by pytest.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from devtools.stack import FunctionHost, GraphEmulator, private_stack
from devtools.tokens import events_token, token_issuance_start
from shared.domain.policy import DEFAULT_DOCUMENT
from tests.integration.reset_helpers import Member, Resetter, enable_everyone, set_policy, wait_for
from tests.integration.tokens import bearer, user_token

PREFIX = "can" + uuid.uuid4().hex[:8]
ADMIN = "admin@contoso.example"
NOTICE_SUBJECT = "Your password was reset"
LOG_LINES_KEPT = 5000  # devtools.processes.ManagedProcess keeps this many lines: the log is whole only below it
PEEK_LIMIT = 32  # the most one peek returns: a queue holding more would be searched only in part


@dataclass(frozen=True)
class Sink:
    """One searched place: `key` names it exactly (the allow-lists use it), `text` is all it holds."""

    key: str
    text: str


class Answers:
    """Every answer the service gave this test (status, headers, body), through an httpx response hook."""

    def __init__(self) -> None:
        self.sinks: list[Sink] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items())
        key = f"response #{len(self.sinks)} {response.request.method} {response.request.url.path}"
        self.sinks.append(Sink(key, f"{response.status_code}\n{headers}\n\n{response.text}"))

    def last(self, method: str, path: str) -> Sink:
        return [s for s in self.sinks if s.key.endswith(f" {method} /api{path}")][-1]


# ---- searching ------------------------------------------------------------------------------------------------


def found_in(text: str, value: str) -> bool:
    """Digits: as a whole number, not inside a longer one nor as a fraction of a second (a timestamp's
    ".123456" would otherwise match a 6-digit TOTP code by chance). Text: case-insensitively, since an answer is
    case-folded before it is hashed and a leak of the folded form is a leak too."""
    if value.isdigit():
        return re.search(rf"(?<![\d.]){value}(?!\d)", text) is not None
    return value.lower() in text.lower()


def queue_sinks(connection: str) -> list[Sink]:
    """Every message of every queue (poison queues too), as stored and base64-decoded."""
    sinks = []
    queues = QueueServiceClient.from_connection_string(connection)
    for queue in queues.list_queues():
        client = queues.get_queue_client(queue.name)
        waiting = client.get_queue_properties().approximate_message_count or 0
        assert waiting <= PEEK_LIMIT, f"{queue.name}: {waiting} messages, too many to peek"
        for message in client.peek_messages(max_messages=PEEK_LIMIT):
            text = str(message.content)
            try:
                text += "\n" + base64.b64decode(text).decode("utf-8", "replace")
            except ValueError:
                pass  # not base64: searched as stored
            sinks.append(Sink(f"queue {queue.name} message {message.id}", text))
    return sinks


def stored_sinks(connection: str) -> list[Sink]:
    """Every entity of every table (all properties) and every message of every queue in the account."""
    tables = TableServiceClient.from_connection_string(connection)
    return [*(Sink(f"table {t.name} row {e['PartitionKey']}/{e['RowKey']}", str(dict(e)))
              for t in tables.list_tables() for e in tables.get_table_client(t.name).list_entities()),
            *queue_sinks(connection)]


class QueueWatch:
    """Peeks every queue every 100 ms while the journeys run: a worker takes a message within moments and it is
    gone by the final search, so what passes through a queue is caught (best effort) while it waits."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.seen: dict[str, Sink] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="canary-queue-watch", daemon=True)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                for sink in queue_sinks(self.connection):
                    self.seen.setdefault(f"{sink.key} (in flight)", Sink(f"{sink.key} (in flight)", sink.text))
            except Exception:  # a queue deleted between list and peek: the next round sees the rest
                continue


def outbox(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def outbox_key(message: dict[str, Any]) -> str:
    return f"outbox {message['channel']} {message['id']} to {message['to']}: {message.get('subject', '')}"


def outbox_sinks(emulator: GraphEmulator) -> list[Sink]:
    return [Sink(outbox_key(m), "\n".join(f"{k}: {v}" for k, v in m.items())) for m in outbox(emulator)]


def leaks(marks: dict[str, str], sinks: list[Sink], allowed: dict[str, set[str]]) -> list[str]:
    """Each (mark, sink) where a marked value is found and not allowed, with the first line that holds it."""
    found = []
    for name, value in marks.items():
        for sink in sinks:
            if sink.key not in allowed.get(name, set()) and found_in(sink.text, value):
                line = next((ln for ln in sink.text.splitlines() if found_in(ln, value)), "")
                found.append(f"{name} in {sink.key}: {line.strip()[:300]}")
    return found


# ---- waiting for the other processes --------------------------------------------------------------------------


def delivery(emulator: GraphEmulator, contact: str, count: int) -> tuple[str, str]:
    """(code, outbox key) of the newest message with a code to `contact`, once `count` such messages arrived."""
    def coded() -> list[dict[str, Any]]:  # newest first, as the outbox lists them
        return [m for m in outbox(emulator) if contact in m["to"] and re.search(r"(?<!\d)\d{8}(?!\d)", m["body"])]
    newest = wait_for(f"code #{count} to {contact}", lambda: (c := coded()) and len(c) >= count and c[0])
    return re.findall(r"(?<!\d)(\d{8})(?!\d)", newest["body"])[0], outbox_key(newest)


def queues_drained(connection: str) -> bool:
    """No message left in any work queue, visible or being processed (poison queues are searched, not waited on)."""
    queues = QueueServiceClient.from_connection_string(connection)
    return all(queues.get_queue_client(q.name).get_queue_properties().approximate_message_count == 0
               for q in queues.list_queues() if not q.name.endswith("-poison"))


def wrong_code(*right: str) -> str:
    """An 8-digit code that is none of the right ones (random, so it cannot appear anywhere by design)."""
    while (code := f"{uuid.uuid4().int % 10 ** 8:08d}") in right:
        pass
    return code


def token_marks(name: str, token: str) -> dict[str, str]:
    """A JWT's claims and signature parts: each is unique to the token, so a partial leak is found too."""
    _, claims, signature = token.split(".")
    return {f"{name} (claims)": claims, f"{name} (signature)": signature}


# ---- the test ----------------------------------------------------------------------------------------------------


def test_no_marked_secret_of_any_journey_reaches_a_table_queue_log_mail_sms_or_answer_where_it_does_not_belong(
) -> None:
    began = time.monotonic()
    answers = Answers()
    with private_stack(PREFIX) as stack, httpx.Client(base_url=f"{stack.host.base_url}/api", timeout=60,
                                                       event_hooks={"response": [answers]}) as api:
        run_every_journey_and_search(api, stack.emulator, stack.host, stack.settings["AzureWebJobsStorage"], answers)
    print(f"secrets canary: {time.monotonic() - began:.1f} s, {len(answers.sinks)} answers searched")


def run_every_journey_and_search(api: httpx.Client, emulator: GraphEmulator, host: FunctionHost, connection: str,
                                 answers: Answers) -> None:
    tag = uuid.uuid4().hex[:10]
    marks: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}

    with QueueWatch(connection) as watch:
        # -- admin: a policy change (2 methods, questions allowed) and the audit log, with a marked admin token
        member = Member(emulator, api)
        admin_token = user_token(emulator, ADMIN)
        marks |= token_marks("admin token", admin_token)
        set_policy(api, emulator, scope="all", methodsRequired=2,
                   methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True},
                   securityQuestions={"registerCount": 3, "resetCount": 3, "customQuestions": []})
        enable_everyone(api, emulator)

        # -- registration, as the user: email and SMS codes, authenticator app, security questions
        user = user_token(emulator, member.upn)
        marks |= token_marks("user token", user)
        me = {**bearer(user), "X-Forwarded-For": "10.8.8.8"}
        started = api.post("/me/security-info/email", json={"address": member.alternate_email}, headers=me)
        assert started.status_code == 202, started.text
        code, message = delivery(emulator, member.alternate_email, count=1)
        marks["registration email code"], allowed["registration email code"] = code, {message}
        verified = api.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify",
                            json={"code": code}, headers=me)
        assert verified.status_code == 200, verified.text

        started = api.post("/me/security-info/mobilePhone", json={"number": member.mobile}, headers=me)
        assert started.status_code == 202, started.text
        code, message = delivery(emulator, member.mobile, count=1)
        marks["registration SMS code"], allowed["registration SMS code"] = code, {message}
        verified = api.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify",
                            json={"code": code}, headers=me)
        assert verified.status_code == 200, verified.text

        setup = api.post("/me/security-info/authenticatorApp", json={}, headers=me)
        assert setup.status_code == 201, setup.text
        seed = setup.json()["secret"]
        marks["TOTP seed"], allowed["TOTP seed"] = seed, {answers.last("POST", "/me/security-info/authenticatorApp").key}
        totp = pyotp.TOTP(seed).now()
        marks["TOTP code"] = totp
        confirmed = api.post("/me/security-info/authenticatorApp/verify", headers=me,
                             json={"setupId": setup.json()["setupId"], "code": totp})
        assert confirmed.status_code == 200, confirmed.text

        catalog = api.get("/me/security-info/securityQuestions/catalog", headers=me).json()
        chosen = {q["id"]: f"CanaryAnswer{i}-{tag}" for i, q in enumerate(catalog["questions"][:3])}
        marks |= {f"answer {i}": a for i, a in enumerate(chosen.values())}
        saved = api.put("/me/security-info/securityQuestions", headers=me,
                        json={"answers": [{"questionId": q, "answer": a} for q, a in chosen.items()]})
        assert saved.status_code == 200, saved.text
        info = api.get("/me/security-info", headers=me)
        assert info.status_code == 200, info.text

        # -- the sign-in hook, called by Entra with the authentication-events app's token
        events = events_token(emulator)
        marks |= token_marks("authentication-events token", events)
        hooked = api.post("/hooks/token-issuance-start", json=token_issuance_start(member.id), headers=bearer(events))
        assert hooked.status_code == 200, hooked.text

        # -- a reset: email code (a wrong one first), questions (a wrong answer first), a refused and a set password
        resetter = Resetter(api)
        assert resetter.start(member.upn).status_code == 201
        marks["flow secret"], allowed["flow secret"] = resetter.secret, {answers.last("POST", "/reset/flows").key}
        assert resetter.prove("email", member.alternate_email).status_code == 202
        code, message = delivery(emulator, member.alternate_email, count=2)
        marks["reset email code"], allowed["reset email code"] = code, {message}
        marks["wrong code"] = wrong_code(code, marks["registration email code"], marks["registration SMS code"])
        assert resetter.verify("email", marks["wrong code"]).status_code == 400
        progress = resetter.verify("email", code)
        assert progress.status_code == 200 and progress.json()["questions"] is True, progress.text
        asked = [q["id"] for q in resetter.get("/questions").json()["questions"]]
        marks["wrong answer"] = f"CanaryWrongAnswer-{tag}"
        assert resetter.post("/questions", {"answers": {q: marks["wrong answer"] for q in asked}}).status_code == 400
        assert resetter.post("/questions", {"answers": {q: chosen[q] for q in asked}}).status_code == 200
        marks["refused password"] = f"canaryweak{tag}"
        checked = resetter.post("/password/check", {"password": marks["refused password"]})
        assert checked.status_code == 200 and checked.json()["acceptable"] is False, checked.text
        assert resetter.set_password(marks["refused password"]).status_code == 422
        marks["new password"] = f"Canary-Harbour-{tag}-42"
        done = resetter.set_password(marks["new password"])
        assert done.status_code == 200, done.text
        assert member.signs_in_with(marks["new password"])  # it reached the directory: the journey really ran

        # -- after the reset, as the admin: the audit log (its answer is searched too)
        audit = api.get("/manage/audit", params={"user": member.id}, headers=bearer(admin_token))
        assert audit.status_code == 200 and audit.json()["value"], audit.text

        def notified(address: str) -> bool:
            return any(m.get("subject") == NOTICE_SUBJECT and address in m["to"] for m in outbox(emulator))
        for address in (member.alternate_email, member.upn):  # every registered address and the directory's
            wait_for(f"the reset notice to {address}", functools.partial(notified, address))
        wait_for("every work queue to drain", lambda: queues_drained(connection))

    # -- the search must be able to fail: a marked value planted in a row and a poison message is found
    self_check(connection, marks["new password"])

    # -- every sink
    log = host.process.output()
    assert len(host.process.lines) < LOG_LINES_KEPT, "the host's log was cut: it would be searched only in part"
    assert f"reset_password [HTTP POST /api/reset/flows/{resetter.flow_id}/password]" in log  # it covers the reset
    stored = stored_sinks(connection)
    assert any(member.id in s.text for s in stored if " row " in s.key)  # the scan sees this user's rows
    mail = outbox_sinks(emulator)
    assert len(mail) >= 4  # two registration codes, the reset code and the notice (to both addresses) at least
    assert watch.seen, "the watch caught no message in flight: the journeys' queue messages went unsearched"
    sinks = [*stored, *watch.seen.values(), Sink("host log", log), *mail, *answers.sinks]
    found = leaks(marks, sinks, allowed)
    assert not found, "secrets found where they do not belong:\n" + "\n".join(found)
    # The allowed places really hold them: the allow-lists name the sinks they mean.
    for name, keys in allowed.items():
        for key in keys:
            assert any(s.key == key and found_in(s.text, marks[name]) for s in sinks), (name, key)
    tables = sorted({s.key.split(" row ")[0] for s in stored if " row " in s.key})
    queues = sorted(q.name for q in QueueServiceClient.from_connection_string(connection).list_queues())
    in_flight = sorted({key.split()[1] for key in watch.seen})
    print(f"searched {sorted(marks)} in {len(stored)} rows and messages of {tables} and queues {queues}, "
          f"{len(watch.seen)} queue messages in flight ({in_flight}), {len(log.splitlines())} log lines, "
          f"{len(mail)} mails and SMS, {len(answers.sinks)} answers")


def self_check(connection: str, marked: str) -> None:
    """Plant `marked` in a table row and (base64, as the host writes) in a poison queue; the search finds both."""
    tables = TableServiceClient.from_connection_string(connection)
    table = tables.get_table_client(f"{PREFIX}ResetFlows")
    planted = {"PartitionKey": f"canary-self-check-{uuid.uuid4().hex}", "RowKey": "row", "note": f"x {marked} y"}
    table.create_entity(planted)
    poison = QueueClient.from_connection_string(connection, f"{PREFIX}-canary-self-check-poison",
                                                message_encode_policy=TextBase64EncodePolicy())
    poison.create_queue()
    poison.send_message(f'{{"planted": "{marked}"}}')
    try:
        found = leaks({"planted": marked}, stored_sinks(connection), {})
        assert any(f"row {planted['PartitionKey']}/row" in f for f in found), found
        assert any(f"queue {PREFIX}-canary-self-check-poison" in f for f in found), found
    finally:
        table.delete_entity(planted["PartitionKey"], "row")
        poison.delete_queue()
