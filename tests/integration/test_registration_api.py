"""/api/me/security-info through the local host, the notifications worker and the emulator's outbox.

The module runs its own host (own table prefix) with a policy allowing office phone; every test signs in as a
fresh emulator user from its own client IP, so per-user throttles and send budgets never leak between tests.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from devtools.azurite import Azurite
from devtools.stack import GraphEmulator, api_running, app_settings
from shared.domain.policy import DEFAULT_DOCUMENT
from tests.integration.tokens import DEMO_PASSWORD, bearer, user_token

PREFIX = "reg" + uuid.uuid4().hex[:8]
WAIT_SECONDS = 20


@pytest.fixture(scope="module")
def settings(azurite: Azurite, graph_emulator: GraphEmulator) -> dict[str, str]:
    return app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=PREFIX)


@pytest.fixture(scope="module")
def api(settings: dict[str, str], graph_emulator: GraphEmulator) -> Iterator[httpx.Client]:
    with api_running(settings) as client:
        admin = bearer(user_token(graph_emulator, "admin@contoso.example"))
        current = client.get("/manage/policy", headers=admin)
        document = {**DEFAULT_DOCUMENT, "methodsAllowed": {**DEFAULT_DOCUMENT["methodsAllowed"], "officePhone": True}}
        saved = client.put("/manage/policy", json=document, headers={**admin, "If-Match": current.headers["ETag"]})
        assert saved.status_code == 200, saved.text
        yield client


class Person:
    """A fresh user of the emulator, signed in, calling from an IP of their own."""

    def __init__(self, emulator: GraphEmulator, api: httpx.Client, language: str = "en-US") -> None:
        upn = f"reg-{uuid.uuid4().hex[:10]}@contoso.example"
        created = httpx.post(f"{emulator.base_url}/_emulator/users", timeout=10, json={
            "userPrincipalName": upn, "displayName": "Reg <b>Tester</b>", "mail": upn, "password": DEMO_PASSWORD,
            "preferredLanguage": language,
        })
        assert created.status_code == 201, created.text
        self.id = created.json()["id"]
        self.emulator = emulator
        self.api = api
        self.headers = {**bearer(user_token(emulator, upn)),
                        "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}

    def get(self, path: str) -> httpx.Response:
        return self.api.get(path, headers=self.headers)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.api.post(path, json=body or {}, headers=self.headers)

    def delete(self, path: str) -> httpx.Response:
        return self.api.delete(path, headers=self.headers)

    def code_sent_to(self, contact: str, count: int = 1) -> str:
        """The newest code sent to `contact`, once `count` messages have arrived there."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            messages = [m for m in httpx.get(f"{self.emulator.base_url}/_emulator/outbox", timeout=10).json()["value"]
                        if contact in m.get("to", [])]
            if len(messages) >= count:
                digits = re.findall(r"(?<!\d)(\d{8})(?!\d)", messages[0]["body"]) or \
                    ["".join(re.findall(r"\d", messages[0]["body"]))[:8]]
                return digits[0]
            time.sleep(0.2)  # waiting for the worker (another process), not for time to pass
        raise AssertionError(f"no message #{count} reached {contact}")

    def register_email(self) -> tuple[str, str]:
        address = f"alt-{uuid.uuid4().hex[:8]}@fabrikam.example"
        started = self.post("/me/security-info/email", {"address": address})
        assert started.status_code == 202, started.text
        return started.json()["challengeId"], address


def mobile() -> str:
    return f"+4670{uuid.uuid4().int % 10**7:07d}"


@pytest.fixture
def person(api: httpx.Client, graph_emulator: GraphEmulator) -> Person:
    return Person(graph_emulator, api)


def test_a_new_user_sees_no_methods_and_what_they_may_register(person: Person) -> None:
    view = person.get("/me/security-info")
    assert view.status_code == 200 and view.headers["Cache-Control"] == "no-store"
    body = view.json()
    assert body["methods"] == [] and body["status"]["registered"] is False and body["status"]["requiredCount"] == 1
    assert set(body["allowedMethods"]) == {"email", "mobilePhone", "officePhone", "authenticatorApp"}


def test_email_is_registered_with_the_mailed_code(person: Person) -> None:
    challenge, address = person.register_email()
    verified = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": person.code_sent_to(address)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"]["registered"] is True
    [method] = person.get("/me/security-info").json()["methods"]
    assert method["method"] == "email" and method["contact"] == "a***@fabrikam.example"


def test_mobile_and_office_phones_are_registered_with_sms_and_voice_codes(person: Person) -> None:
    for kind, number in (("mobilePhone", mobile()), ("officePhone", f"08-{uuid.uuid4().int % 10**7:07d}")):
        started = person.post(f"/me/security-info/{kind}", {"number": number, "defaultRegion": "SE"})
        assert started.status_code == 202, started.text
        e164 = "+46" + re.sub(r"\D", "", number)[1:] if not number.startswith("+") else number
        code = person.code_sent_to(e164)
        verified = person.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify", {"code": code})
        assert verified.status_code == 200, verified.text
    assert {m["method"] for m in person.get("/me/security-info").json()["methods"]} == {"mobilePhone", "officePhone"}


def test_wrong_used_and_unknown_codes_get_the_same_answer(person: Person) -> None:
    challenge, address = person.register_email()
    code = person.code_sent_to(address)
    wrong = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": _other(code)})
    assert person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code}).status_code == 200
    reused = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code})
    unknown = person.post(f"/me/security-info/challenges/{uuid.uuid4()}/verify", {"code": code})
    malformed_id = person.post("/me/security-info/challenges/not-a-guid/verify", {"code": code})
    answers = {(r.status_code, r.json()["type"], r.json()["title"]) for r in (wrong, reused, unknown, malformed_id)}
    assert answers == {(400, "urn:sspr:problem:code-not-accepted", wrong.json()["title"])}


def test_a_resent_code_replaces_the_old_one(person: Person) -> None:
    challenge, address = person.register_email()
    old = person.code_sent_to(address)
    assert person.post(f"/me/security-info/challenges/{challenge}/resend").status_code == 202
    new = person.code_sent_to(address, count=2)
    assert person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": old}).status_code == 400 \
        or old == new
    assert person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": new}).status_code == 200


def test_five_wrong_codes_lock_the_challenge(person: Person) -> None:
    challenge, address = person.register_email()
    code = person.code_sent_to(address)
    answers = [person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": _other(code)}).status_code
               for _ in range(5)]
    assert answers == [400, 400, 400, 400, 403]
    right = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code})
    assert right.status_code == 403 and right.json()["type"] == "urn:sspr:problem:code-locked"
    assert person.get("/me/security-info").json()["methods"] == []


@pytest.mark.parametrize(("kind", "body"), [
    ("mobilePhone", {"number": "070-123 45 67"}),  # no country
    ("mobilePhone", {"number": "+46 8 123 456 78"}),  # Swedish landline
    ("mobilePhone", {"number": "+44 20 7946 0958"}),  # London landline
    ("mobilePhone", {"number": "+1 201 555"}),  # too short
    ("mobilePhone", {"number": "+49 151", "defaultRegion": "DE"}),
    ("officePhone", {"number": "+1 900 555 0123"}),  # premium rate
    ("mobilePhone", {"number": "+46701234567", "defaultRegion": "SWE"}),
    ("email", {"address": "casey"}),
    ("email", {"address": "casey@fabrikam"}),
    ("email", {"address": "a b@fabrikam.example"}),
    ("email", {"address": "x" * 250 + "@f.example"}),
    ("email", {"address": "casey@fabrikam.example", "extra": 1}),
    ("email", {"address": "casey@contoso.example"}),  # a work address of the organisation
    ("email", {"address": "casey@mail.contosodemo.onmicrosoft.com"}),
])
def test_bad_contacts_are_refused_naming_the_field(person: Person, kind: str, body: dict[str, Any]) -> None:
    answer = person.post(f"/me/security-info/{kind}", body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["errors"][0]
    assert error["field"] in {"number", "address", "defaultRegion", "extra"}
    assert error["text"] and "defaultRegion" not in error["text"]  # plain words, never a code name


def test_a_work_address_is_refused_in_the_callers_words_and_no_code_goes_to_it(api: httpx.Client,
                                                                            graph_emulator: GraphEmulator) -> None:
    swede = Person(graph_emulator, api, language="sv-SE")
    swede.headers["Accept-Language"] = "sv-SE"
    before = len(httpx.get(f"{graph_emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])
    answer = swede.post("/me/security-info/email", {"address": "someone@contoso.example"})
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert (error["field"], error["code"]) == ("address", "email.workAddress")
    assert error["text"].startswith("Använd en privat adress")
    assert len(httpx.get(f"{graph_emulator.base_url}/_emulator/outbox", timeout=10).json()["value"]) == before


def test_the_phone_country_offered_first_is_the_users_usage_location(person: Person, graph_emulator: GraphEmulator) -> None:
    assert person.get("/me/security-info").json()["defaultRegion"] == "SE"  # the emulator's new users are in SE
    httpx.patch(f"{graph_emulator.base_url}/_emulator/users/{person.id}", json={"usageLocation": "NO"},
                timeout=10).raise_for_status()
    assert person.get("/me/security-info").json()["defaultRegion"] == "NO"


def test_another_users_token_cannot_use_or_see_my_challenge(person: Person, api: httpx.Client,
                                                            graph_emulator: GraphEmulator) -> None:
    challenge, address = person.register_email()
    code = person.code_sent_to(address)
    intruder = Person(graph_emulator, api)
    theirs = intruder.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code})
    unknown = intruder.post(f"/me/security-info/challenges/{uuid.uuid4()}/verify", {"code": code})
    assert (theirs.status_code, theirs.json()) == (unknown.status_code, unknown.json())
    resend = intruder.post(f"/me/security-info/challenges/{challenge}/resend")
    assert resend.status_code == 404
    assert person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code}).status_code == 200
    assert intruder.get("/me/security-info").json()["methods"] == []


def test_removing_the_last_required_method_needs_confirmation(person: Person) -> None:
    challenge, address = person.register_email()
    person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": person.code_sent_to(address)})
    refused = person.delete("/me/security-info/email")
    assert refused.status_code == 409
    assert "will not be able to reset your password until you register another method" in refused.json()["title"]
    removed = person.delete("/me/security-info/email?confirm=true")
    assert removed.status_code == 200 and removed.json()["registered"] is False
    assert person.delete("/me/security-info/email?confirm=true").status_code == 404
    assert person.delete("/me/security-info/carrierPigeon").status_code == 400


def test_reconfirming_moves_the_due_date(person: Person) -> None:
    assert person.post("/me/security-info/reconfirm").status_code == 409
    challenge, address = person.register_email()
    first = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": person.code_sent_to(address)})
    confirmed = person.post("/me/security-info/reconfirm")
    assert confirmed.status_code == 200
    assert confirmed.json()["reconfirmDueAt"] >= first.json()["status"]["reconfirmDueAt"]
    assert confirmed.json()["reconfirmDue"] is False


def test_an_administrator_needs_two_methods(api: httpx.Client, graph_emulator: GraphEmulator) -> None:
    headers = {**bearer(user_token(graph_emulator, "useradmin@contoso.example")), "X-Forwarded-For": "10.9.9.9"}
    view = api.get("/me/security-info", headers=headers).json()
    assert view["status"]["requiredCount"] == 2


def stored_everywhere(settings: dict[str, str]) -> str:
    """Every entity of every table and every message of every queue in the account (poison queues too)."""
    connection = settings["AzureWebJobsStorage"]
    tables = TableServiceClient.from_connection_string(connection)
    texts = [str(dict(e)) for t in tables.list_tables() for e in tables.get_table_client(t.name).list_entities()]
    queues = QueueServiceClient.from_connection_string(connection)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            texts += [message.content, _b64(message.content)]
    return "\n".join(texts)


def test_no_code_is_kept_in_any_table_or_queue(person: Person, settings: dict[str, str]) -> None:
    challenge, address = person.register_email()
    code = person.code_sent_to(address)
    # While the code is live (sent, not yet used: nothing has cleared the challenge's digest yet).
    live = stored_everywhere(settings)
    assert address in live  # the scan sees the challenge
    assert code not in live
    wrong = person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": _other(code)})
    assert wrong.status_code == 400
    assert code not in stored_everywhere(settings)  # nor after a wrong guess was counted
    assert person.post(f"/me/security-info/challenges/{challenge}/verify", {"code": code}).status_code == 200


def test_parallel_right_codes_through_http_register_exactly_once(api: httpx.Client,
                                                                 graph_emulator: GraphEmulator) -> None:
    person = Person(graph_emulator, api)
    for _ in range(3):  # a race that is lost only sometimes must still be caught
        challenge, address = person.register_email()
        code = person.code_sent_to(address)
        path, body = f"/me/security-info/challenges/{challenge}/verify", {"code": code}
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda _, path=path, body=body: person.post(path, body), range(16)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 1, statuses
        assert {a.json()["type"] for a in answers if a.status_code != 200} == {"urn:sspr:problem:code-not-accepted"}


def test_parallel_wrong_codes_through_http_are_each_counted_once(api: httpx.Client, graph_emulator: GraphEmulator,
                                                                 settings: dict[str, str]) -> None:
    person = Person(graph_emulator, api)
    challenge, address = person.register_email()
    code = person.code_sent_to(address)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: person.post(f"/me/security-info/challenges/{challenge}/verify",
                                                      {"code": _other(code)}), range(20)))
    kinds = [a.json()["type"].rsplit(":", 1)[1] for a in answers]
    assert set(kinds) <= {"code-not-accepted", "code-locked", "blocked"}, kinds
    reached = kinds.count("code-not-accepted") + kinds.count("code-locked")  # "blocked" stops before the challenge
    row = TableServiceClient.from_connection_string(settings["AzureWebJobsStorage"]) \
        .get_table_client(f"{PREFIX}Challenges").get_entity(challenge, "email")
    assert row["failedAttempts"] == reached and reached > 5, kinds
    assert kinds.count("code-not-accepted") == 4  # the 5th wrong answer and every later one: locked


def test_a_user_made_administrator_after_registering_needs_two_methods_at_once(
        person: Person, settings: dict[str, str]) -> None:
    challenge, address = person.register_email()
    assert person.post(f"/me/security-info/challenges/{challenge}/verify",
                       {"code": person.code_sent_to(address)}).json()["status"]["registered"] is True
    summary = TableServiceClient.from_connection_string(settings["AzureWebJobsStorage"]) \
        .get_table_client(f"{PREFIX}SecurityInfo")
    assert summary.get_entity(person.id, "summary")["isAdmin"] is False
    made_admin = httpx.patch(f"{person.emulator.base_url}/_emulator/users/{person.id}",
                             json={"roles": ["User Administrator"]}, timeout=10)
    assert made_admin.status_code == 200, made_admin.text
    status = person.get("/me/security-info").json()["status"]
    assert (status["registered"], status["requiredCount"]) == (False, 2)
    assert summary.get_entity(person.id, "summary")["isAdmin"] is True  # what the sign-in hook reads
    httpx.patch(f"{person.emulator.base_url}/_emulator/users/{person.id}", json={"roles": []}, timeout=10)
    assert person.get("/me/security-info").json()["status"]["requiredCount"] == 1
    assert summary.get_entity(person.id, "summary")["isAdmin"] is False


def test_an_invalid_notification_goes_to_poison_without_a_mail(api: httpx.Client, settings: dict[str, str],
                                                               graph_emulator: GraphEmulator) -> None:
    name = f"{settings['SSPR_QUEUE_PREFIX']}-notifications"
    queue = QueueClient.from_connection_string(settings["AzureWebJobsStorage"], name)
    marker = uuid.uuid4().hex
    before = len(httpx.get(f"{graph_emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])
    queue.send_message(base64.b64encode(f'{{"kind":"verification-code","marker":"{marker}"}}'.encode()).decode())
    poison = QueueClient.from_connection_string(settings["AzureWebJobsStorage"], f"{name}-poison")
    deadline = time.monotonic() + 90  # host.json: 5 dequeues, 10 s visibility
    while time.monotonic() < deadline:
        if _exists(poison) and any(marker in _b64(m.content) for m in poison.peek_messages(max_messages=32)):
            break
        time.sleep(1)
    else:
        raise AssertionError("the invalid message never reached the poison queue")
    after = httpx.get(f"{graph_emulator.base_url}/_emulator/outbox", timeout=10).json()["value"]
    assert not any(marker in str(m) for m in after) and len(after) >= before


def _other(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text).decode("utf-8", errors="replace")
    except ValueError:
        return text


def _exists(queue: QueueClient) -> bool:
    try:
        queue.get_queue_properties()
        return True
    except Exception:
        return False


@pytest.mark.parametrize(("upn", "reason"), [("synced.user@contoso.example", "synced-needs-premium"),
                                             ("synced.p1@contoso.example", "synced-not-supported")])
def test_a_synced_user_the_service_cannot_reset_is_told_so_at_registration(
        api: httpx.Client, graph_emulator: GraphEmulator, upn: str, reason: str) -> None:
    """Issue 15 (10): the status a synced user registers under says that this service cannot reset their password
    (writeback is off), with whom to ask, rather than letting them learn it after proving a method at reset."""
    headers = {**bearer(user_token(graph_emulator, upn)), "X-Forwarded-For": "10.9.9.10"}
    view = api.get("/me/security-info", headers=headers).json()
    assert view["cannotReset"] == {"reason": reason, "helpdesk": {"url": None, "email": None}}


def test_a_cloud_user_is_not_told_they_cannot_reset(person: Person) -> None:
    """(Nor is a synced user the agents serve: tests/onprem/test_service_with_agent.py.)"""
    assert person.get("/me/security-info").json()["cannotReset"] is None
