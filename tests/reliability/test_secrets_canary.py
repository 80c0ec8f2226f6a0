"""The secrets canary (issue 8 part 4): every journey of the service run with marked values, then every sink searched.

One test on a stack of its own (own Azurite, emulator and host), so every table and queue it searches holds only
what this test made. Marked values: the admin's, the user's and the authentication-events app's tokens; the
registration codes (mail, SMS), the authenticator app's seed and a TOTP code from it, the security question answers;
the reset's codes (right and wrong), its flow secret, its answers (right and wrong), its passwords (refused and
set) and the Temporary Access Pass it ended with; the helpdesk's (issue 18) agent token, its code read back (right
and wrong), its one-time link's secret, the flow secret the link opened and the password set through it; then a
password expiry run with reminders on (its run, page and per-user rows, reminder slots, queue messages, the
reminder's mail and SMS are searched like the rest); then a synced user's own change on the change page with the
real on-premises agent and a Samba AD DC (a wrong current password, a new password Entra's rules refuse, the change
itself: the change's rows, its sealed job and result, the agents' tables, the notice). Sinks: every row of every
table (all properties), every message of every queue and poison queue (as stored and base64-decoded), the host's
whole log (stdout + stderr), every mail and SMS in the emulator's outbox, and every status line, header and body the
service answered. Allowed: a code in the one message that delivers it, the seed in the setup answer that hands it to
the user, the flow secret in the start answer, the pass in the answer that hands it over, a helpdesk link's secret in
the one mail that delivers it and its flow secret in the answer that opens it. Everything else is a leak.

Full contacts (security.md E2; architecture: messages carry ids, never secrets): the user's registered address (and
its local part) and mobile number, found in any spelling, may be only in the rows that must hold them (the user's
method rows, registration and reset challenge rows: `contacts_belong`); never in a queue or poison queue message,
the log, a mail's or SMS's text or any answer (the user's own security info shows them masked too).

The search proves it can fail: a password and contacts of its own planted in a row, a work queue, a poison queue and
the host's log are found in each (`self_check`).

Same approach as tests/integration/test_reset_security.py::test_B3_A2_... (reset only), widened to every journey;
the search helpers are copied here because that module starts fixtures of its own on import by pytest.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from devtools.onprem_site import STAFF_OU, AgentRunner, AgentSite, Domain
from devtools.stack import FunctionHost, GraphEmulator, azurite_running, private_stack
from devtools.tokens import events_token, token_issuance_start
from shared.adapters.proof_of_work import solve
from shared.domain.policy import DEFAULT_DOCUMENT
from tests.integration.outbox import wait_for
from tests.integration.reset_helpers import Member, Resetter, enable_everyone, set_policy
from tests.integration.tokens import bearer, user_token

PREFIX = "can" + uuid.uuid4().hex[:8]
ADMIN = "admin@contoso.example"
HELPDESK = "helpdesk@contoso.example"
NOTICE_SUBJECT = "Your password was reset"
PASS_NOTICE_SUBJECT = "A Temporary Access Pass was made for your account"
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


PHONE_TAIL = 9  # a phone number is found by its last 9 digits (the national number), however it is written


def found_in(text: str, value: str) -> bool:
    """Digits: as a whole number, not inside a longer one nor as a fraction of a second (a timestamp's
    ".123456" would otherwise match a 6-digit TOTP code by chance). A phone number (`+` and digits): its last
    PHONE_TAIL digits in any spelling (E.164, national with a 0, spaces, dashes, dots or brackets between digits),
    so a masked `+46*******67` is not found and `070-123 45 67` is. Text: case-insensitively, since an answer is
    case-folded before it is hashed and a leak of the folded form is a leak too."""
    if value.isdigit():
        return re.search(rf"(?<![\d.]){value}(?!\d)", text) is not None
    if value.startswith("+") and value[1:].isdigit():
        spelled = r"[\s().\-/]?".join(value[-PHONE_TAIL:])
        return re.search(rf"{spelled}(?!\d)", text) is not None
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


def outbox_sinks(emulator: GraphEmulator, recipients: bool = True) -> list[Sink]:
    """Every mail and SMS; without `recipients` only what was written in it (a contact's own envelope names it)."""
    return [Sink(outbox_key(m), "\n".join(f"{k}: {v}" for k, v in m.items() if recipients or k != "to"))
            for m in outbox(emulator)]


def leaks(marks: dict[str, str], sinks: list[Sink], allowed: dict[str, set[str]],
          rightful: Callable[[str], bool] = lambda key: False) -> list[str]:
    """Each (mark, sink) where a marked value is found and neither allowed for it nor a `rightful` place for every
    mark (by the sink's key), with the first line that holds it."""
    found = []
    for name, value in marks.items():
        for sink in sinks:
            if sink.key not in allowed.get(name, set()) and not rightful(sink.key) and found_in(sink.text, value):
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


@dataclass(frozen=True)
class OnPrem:
    """The on-premises side of the canary: the session's Samba DC and the real agent on the canary's own storage."""

    domain: Domain
    agent: AgentRunner


def test_no_marked_secret_of_any_journey_reaches_a_table_queue_log_mail_sms_or_answer_where_it_does_not_belong(
        domain: Domain, tmp_path_factory: pytest.TempPathFactory) -> None:
    began = time.monotonic()
    answers = Answers()
    with azurite_running(f"sspr-{PREFIX}-") as azurite:
        site = AgentSite.create(domain, azurite.connection_string, tmp_path_factory.mktemp("canary-site"), PREFIX)
        with private_stack(PREFIX, azurite=azurite, SSPR_ONPREM_AGENT_PUBLIC_KEY=site.public_key,
                           SSPR_ONPREM_WAIT_SECONDS="6") as stack, \
                httpx.Client(base_url=f"{stack.host.base_url}/api", timeout=60,
                             event_hooks={"response": [answers]}) as api:
            agent = AgentRunner(site).start()
            try:
                run_every_journey_and_search(api, stack.emulator, stack.host, stack.settings["AzureWebJobsStorage"],
                                             answers, OnPrem(domain, agent))
            finally:
                agent.stop()
    print(f"secrets canary: {time.monotonic() - began:.1f} s, {len(answers.sinks)} answers searched")


def run_every_journey_and_search(api: httpx.Client, emulator: GraphEmulator, host: FunctionHost, connection: str,
                                 answers: Answers, onprem: OnPrem) -> None:
    tag = uuid.uuid4().hex[:10]
    marks: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}

    with QueueWatch(connection) as watch:
        # -- admin: a policy change (2 methods, questions allowed) and the audit log, with a marked admin token
        member = Member(emulator, api)
        # Full contacts (E2, "messages carry ids"): the registered address and mobile, and the address's own local
        # part (made unique here, so a leak of it alone is found too).
        member.alternate_email = f"canary-contact-{tag}@alt.example"
        contacts = {"registered email": member.alternate_email, "registered email (local part)":
                    member.alternate_email.split("@")[0], "registered mobile": member.mobile}
        admin_token = user_token(emulator, ADMIN)
        marks |= token_marks("admin token", admin_token)
        set_policy(api, emulator, scope="all", methodsRequired=2,
                   methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True},
                   securityQuestions={"registerCount": 3, "resetCount": 3, "customQuestions": []},
                   temporaryAccessPass={"insteadOfPassword": False, "afterPassword": True, "lifetimeMinutes": 60,
                                        "oneTimeUse": True})
        enable_everyone(api, emulator)

        # -- registration, as the user: email and SMS codes, authenticator app, security questions
        user = user_token(emulator, member.upn)
        marks |= token_marks("user token", user)
        me = {**bearer(user), "X-Forwarded-For": "10.8.8.8"}
        for mark, method, body, contact in (
                ("registration email code", "email", {"address": member.alternate_email}, member.alternate_email),
                ("registration SMS code", "mobilePhone", {"number": member.mobile}, member.mobile)):
            started = api.post(f"/me/security-info/{method}", json=body, headers=me)
            assert started.status_code == 202, started.text
            code, message = delivery(emulator, contact, count=1)
            marks[mark], allowed[mark] = code, {message}
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
        issued = resetter.post("/access-pass")  # recovering into passwordless: a Temporary Access Pass after it
        assert issued.status_code == 201, issued.text
        marks["temporary access pass"] = issued.json()["temporaryAccessPass"]
        allowed["temporary access pass"] = {answers.last("POST", f"/reset/flows/{resetter.flow_id}/access-pass").key}

        # -- the helpdesk (issue 18), as Hal with his marked token: a code to the registered address (a wrong one read
        # back first), a one-time reset link, the user opening it and setting a password the agent never sees
        agent_token = user_token(emulator, HELPDESK)
        marks |= token_marks("helpdesk agent token", agent_token)
        agent = {**bearer(agent_token), "X-Forwarded-For": "10.9.9.9"}
        started = api.post("/helpdesk/verifications", json={"userId": member.id}, headers=agent)
        assert started.status_code == 201, started.text
        verification = started.json()["verificationId"]
        assert api.post(f"/helpdesk/verifications/{verification}/codes", json={"method": "email"},
                        headers=agent).status_code == 202
        code, message = delivery(emulator, member.alternate_email, count=3)
        marks["helpdesk code"], allowed["helpdesk code"] = code, {message}
        wrong = api.post(f"/helpdesk/verifications/{verification}/verify", headers=agent,
                         json={"method": "email", "code": marks["wrong code"]})
        assert wrong.status_code == 400, wrong.text
        checked = api.post(f"/helpdesk/verifications/{verification}/verify", headers=agent,
                           json={"method": "email", "code": code})
        assert checked.status_code == 200 and checked.json()["state"] == "verified", checked.text
        assert api.post(f"/helpdesk/verifications/{verification}/actions", json={"action": "reset-link"},
                        headers=agent).status_code == 200
        link_mail = wait_for("the helpdesk's link", lambda: next((m for m in outbox(emulator)
                                                                  if "#link=" in m["body"]), None))
        token = re.search(r"#link=([0-9a-f-]{36}\.[A-Za-z0-9_-]+)", link_mail["body"]).group(1)  # type: ignore[union-attr]
        marks["helpdesk link secret"] = token.split(".")[1]
        allowed["helpdesk link secret"] = {outbox_key(link_mail)}
        opened = api.post("/reset/links", json={"link": token}, headers={"X-Forwarded-For": "10.7.7.7"})
        assert opened.status_code == 201, opened.text
        marks["link flow secret"] = opened.json()["flowSecret"]
        allowed["link flow secret"] = {answers.last("POST", "/reset/links").key}
        marks["password after the link"] = f"Canary-Lantern-{tag}-77"
        set_by_link = api.post(f"/reset/flows/{opened.json()['flowId']}/password", headers={
            "X-Flow-Secret": opened.json()["flowSecret"], "X-Forwarded-For": "10.7.7.7"},
            json={"password": marks["password after the link"]})
        assert set_by_link.status_code == 200, set_by_link.text
        assert member.signs_in_with(marks["password after the link"])
        link_flow = opened.json()["flowId"]

        # -- after the reset, as the admin: the audit log (its answer is searched too)
        audit = api.get("/manage/audit", params={"user": member.id}, headers=bearer(admin_token))
        assert audit.status_code == 200 and audit.json()["value"], audit.text

        # -- password expiry: reminders on (mail and SMS), the admin's run, a reminder to a user a week from expiry
        week_out = Member(emulator, api, given="Wanda", extra={
            "mobilePhone": "+46 70 555 12 34",
            "lastPasswordChangeDateTime": (datetime.now(UTC) - timedelta(days=83)).isoformat()})
        set_policy(api, emulator, scope="all", methodsRequired=2,
                   methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True},
                   securityQuestions={"registerCount": 3, "resetCount": 3, "customQuestions": []},
                   expiryReminders={"enabled": True, "stages": [14, 7, 3, 1], "sms": True,
                                    "cloudPolicyForSyncedUsers": False},
                   onPremises={"writeback": True, "unlockWithoutReset": False})
        expiry_run = api.post("/manage/password-expiry/runs", headers=bearer(admin_token))
        assert expiry_run.status_code == 202, expiry_run.text
        wait_for("the password expiry run", lambda: api.get(
            f"/manage/password-expiry/runs/{expiry_run.json()['id']}", headers=bearer(admin_token)
        ).json()["state"] == "completed")
        wait_for("the expiry reminder", lambda: any(
            m.get("subject") == "Your password expires in 7 days" and week_out.upn in m["to"] for m in outbox(emulator)))

        # -- a synced user's own change (the change page's API, the real agent, a Samba DC): a wrong current password,
        # a new password Entra's rules refuse, then the change in AD; every password marked
        ad = onprem.domain.make_user(STAFF_OU, password=f"Canary-Current-{tag}-1!")
        changer = Member(emulator, api, given="Sid", extra={"onPremisesSyncEnabled": True,
                                                            "onPremisesSecurityIdentifier": ad.sid,
                                                            "onPremisesDistinguishedName": ad.dn})
        marks |= {"change current password": ad.password, "change wrong current password": f"Canary-Wrong-{tag}-2!",
                  "change refused new password": f"canaryfeeble{tag}", "change new password": f"Canary-Changed-{tag}-3!"}

        def change(current: str, new: str) -> httpx.Response:
            altcha = solve(api.get("/change/pow").json())
            return api.post("/change", headers={"X-Forwarded-For": "10.9.9.9"}, json={
                "username": changer.upn, "currentPassword": current, "newPassword": new, "altcha": altcha})

        assert change(marks["change wrong current password"], marks["change new password"]).status_code == 400
        checked = api.post("/change/password/check", json={"username": changer.upn,
                                                            "password": marks["change refused new password"]})
        assert checked.status_code == 200 and checked.json()["acceptable"] is False, checked.text
        assert change(ad.password, marks["change refused new password"]).status_code == 422
        changed = change(ad.password, marks["change new password"])
        if changed.status_code == 202:  # AD's verdict came after the wait (a loaded machine): the page asks after it
            started = changed.json()
            changed = wait_for("the change's verdict", lambda: (r := api.get(
                f"/change/requests/{started['changeId']}", headers={"X-Change-Secret": started["changeSecret"],
                                                                    "X-Forwarded-For": "10.9.9.9"}))
                .status_code != 202 and r)
        assert changed.status_code == 200, changed.text
        assert onprem.domain.binds(ad.dn, marks["change new password"])  # it reached AD: the journey really ran
        wait_for("the change notice", lambda: any(
            m.get("subject") == "Your password was changed" and changer.upn in m["to"] for m in outbox(emulator)))

        def notified(address: str) -> bool:
            return any(m.get("subject") == NOTICE_SUBJECT and address in m["to"] for m in outbox(emulator))
        for address in (member.alternate_email, member.upn):  # every registered address and the directory's
            wait_for(f"the reset notice to {address}", functools.partial(notified, address))
            wait_for(f"the access pass notice to {address}", lambda a=address: any(
                m.get("subject") == PASS_NOTICE_SUBJECT and a in m["to"] for m in outbox(emulator)))
        try:  # a queue that does not drain is told after the search, so a leak that also stalls one is named first
            wait_for("every work queue to drain", lambda: queues_drained(connection))
            stalled = ""
        except AssertionError as not_drained:
            stalled = str(not_drained)

    # -- the search must be able to fail: marked values planted in a row, a queue, a poison queue and the host's
    # log are found (a password and full contacts of their own, so the search below is not disturbed)
    self_check(connection, api, host)

    # -- every sink
    log = host.process.output()
    assert len(host.process.lines) < LOG_LINES_KEPT, "the host's log was cut: it would be searched only in part"
    assert f"reset_password [HTTP POST /api/reset/flows/{resetter.flow_id}/password]" in log  # it covers the reset
    assert f"reset_password [HTTP POST /api/reset/flows/{link_flow}/password]" in log  # and the helpdesk's link
    assert "change_password [HTTP POST /api/change]" in log  # and the change
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

    # -- full contacts: only in the rows that must hold them (contacts_belong); never in a queue message, the log, a
    # mail's text or any answer (the user's own security info shows them masked)
    contact_sinks = [*stored, *watch.seen.values(), Sink("host log", log), *outbox_sinks(emulator, recipients=False),
                     *answers.sinks]
    found = leaks(contacts, contact_sinks, {}, rightful=contacts_belong(member.id, resetter.flow_id, verification))
    assert not found, "full contacts found where they do not belong:\n" + "\n".join(found)
    rows = {s.key: s.text for s in stored}
    for key, contact in ((f"table {PREFIX}SecurityInfo row {member.id}/method-email", member.alternate_email),
                         (f"table {PREFIX}SecurityInfo row {member.id}/method-mobilePhone", member.mobile),
                         (f"table {PREFIX}ResetFlows row {resetter.flow_id}/email", member.alternate_email),
                         (f"table {PREFIX}Helpdesk row {verification}/email", member.alternate_email),
                         (f"table {PREFIX}Helpdesk row {verification}/link", member.alternate_email)):
        assert found_in(rows[key], contact), key  # the rightful places do hold them: the search looks at the right text

    assert not stalled, stalled

    tables = sorted({s.key.split(" row ")[0] for s in stored if " row " in s.key})
    queues = sorted(q.name for q in QueueServiceClient.from_connection_string(connection).list_queues())
    in_flight = sorted({key.split()[1] for key in watch.seen})
    print(f"searched {sorted(marks)} and {sorted(contacts)} in {len(stored)} rows and messages of {tables} and "
          f"queues {queues}, {len(watch.seen)} queue messages in flight ({in_flight}), {len(log.splitlines())} log "
          f"lines, {len(mail)} mails and SMS, {len(answers.sinks)} answers")


def contacts_belong(user_id: str, flow_id: str, verification_id: str = "") -> Callable[[str], bool]:
    """Where a user's full contact belongs (docs/security.md E2): the user's registered method rows (SecurityInfo),
    a registration challenge's row (Challenges), a reset flow's challenge rows (ResetFlows, not the flow's own row)
    and a helpdesk verification's challenge and link rows (Helpdesk, not the verification's own row): the
    notifications worker reads the contact there to deliver the code or the link, since the queue message carries
    only the row's keys. The challenge and link rows go with the purge (E4)."""
    places = (f"table {PREFIX}SecurityInfo row {user_id}/method-", f"table {PREFIX}Challenges row ",
              f"table {PREFIX}ResetFlows row {flow_id}/",
              *((f"table {PREFIX}Helpdesk row {verification_id}/",) if verification_id else ()))
    own_rows = (f"table {PREFIX}ResetFlows row {flow_id}/flow", f"table {PREFIX}Helpdesk row {verification_id}/verification")
    return lambda key: key.startswith(places) and key not in own_rows


def self_check(connection: str, api: httpx.Client, host: FunctionHost) -> None:
    """Plant a password and full contacts (an address, a mobile number written nationally with spaces) in a
    table row where contacts do not belong, a work queue and a poison queue (base64, as the host writes), and the
    host's log (a request whose path holds them: the host logs each request's path); the search finds each in
    each. The row and queues are removed after; the log lines stay, their values are no one's."""
    digits = f"{uuid.uuid4().int % 10_000_000:07d}"
    planted = {"planted password": f"Planted-Harbour-{uuid.uuid4().hex[:10]}-42", "planted email": f"planted-{uuid.uuid4().hex[:10]}@alt.example",
               "planted mobile": f"+4670{digits}"}
    written = {**planted, "planted mobile": f"070-{digits[:3]} {digits[3:5]} {digits[5:]}"}
    tables = TableServiceClient.from_connection_string(connection)
    table = tables.get_table_client(f"{PREFIX}ResetFlows")
    row = {"PartitionKey": f"canary-self-check-{uuid.uuid4().hex}", "RowKey": "flow",
           "note": " / ".join(f"x {v} y" for v in written.values())}
    table.create_entity(row)
    queues = [QueueClient.from_connection_string(connection, f"{PREFIX}-canary-self-check{suffix}",
                                                 message_encode_policy=TextBase64EncodePolicy())
              for suffix in ("", "-poison")]
    for queue in queues:
        queue.create_queue()
        queue.send_message(json.dumps({"planted": list(written.values())}))
    for value in written.values():
        assert api.get(f"/reset/flows/{value}/questions").status_code == 404
    try:
        rightful = contacts_belong(str(uuid.uuid4()), str(uuid.uuid4()))
        found = leaks(planted, [*stored_sinks(connection), Sink("host log", host.process.output())], {}, rightful)
        places = [f"row {row['PartitionKey']}/flow", f"queue {PREFIX}-canary-self-check message",
                  f"queue {PREFIX}-canary-self-check-poison message", "host log"]
        for name in planted:
            for place in places:
                assert any(f.startswith(f"{name} in ") and place in f for f in found), (name, place, found)
    finally:
        table.delete_entity(row["PartitionKey"], "flow")
        for queue in queues:
            queue.delete_queue()
