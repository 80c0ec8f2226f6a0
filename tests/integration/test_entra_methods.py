"""Methods already registered in Entra count (policy entraMethods.count): a tenant whose users registered MFA
phones and emails in Entra sees them capable in the compliance sweep, on their registration page ("from your
Microsoft account") and at reset, where codes go to those contacts like to their own; never with the switch off.
The emulator serves Graph's phoneMethods and emailMethods in pages of 2 and, here, throttles once (429)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from devtools.stack import GraphEmulator
from tests.integration.outbox import code_sent_to, messages_to
from tests.integration.reset_helpers import Member, Resetter, api_fixture, enable_everyone, set_policy
from tests.integration.tokens import bearer, user_token

PREFIX = "ent" + uuid.uuid4().hex[:8]
ADMIN = "admin@contoso.example"


api = api_fixture(PREFIX)


def entra_method(emulator: GraphEmulator, member: Member, kind: str, **body: str) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/users/{member.id}/{kind}", json=body, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def people(api: httpx.Client, graph_emulator: GraphEmulator) -> dict[str, Member]:
    found = {name: Member(graph_emulator, api) for name in ("mfa", "mail", "three", "nothing")}
    entra_method(graph_emulator, found["mfa"], "phoneMethods", phoneNumber=found["mfa"].mobile.replace("+46", "+46 "),
                 phoneType="mobile")
    entra_method(graph_emulator, found["mail"], "emailMethods", emailAddress=found["mail"].alternate_email)
    for phone_type, number in (("mobile", "+46701110001"), ("alternateMobile", "+46701110002"),
                               ("office", "+46812345678")):
        entra_method(graph_emulator, found["three"], "phoneMethods", phoneNumber=number, phoneType=phone_type)
    policy(api, graph_emulator, count=True)
    enable_everyone(api, graph_emulator)
    return found


def policy(api: httpx.Client, emulator: GraphEmulator, count: bool) -> None:
    set_policy(api, emulator, scope="all", entraMethods={"count": count},
               methodsAllowed={"email": True, "mobilePhone": True, "officePhone": True, "authenticatorApp": True,
                               "appNotification": False, "securityQuestions": False})


def compliance_rows(api: httpx.Client, emulator: GraphEmulator) -> dict[str, dict[str, Any]]:
    admin = bearer(user_token(emulator, ADMIN))
    started = api.post("/manage/compliance/runs", json={"sendReminders": False}, headers=admin)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 60
    while (run := api.get(f"/manage/compliance/runs/{run_id}", headers=admin).json())["state"] not in (
            "completed", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    assert run["state"] == "completed", run
    rows: dict[str, dict[str, Any]] = {}
    continuation = None
    while True:
        page = api.get(f"/manage/compliance/runs/{run_id}/users", headers=admin,
                       params={"pageSize": 1000, **({"continuation": continuation} if continuation else {})}).json()
        rows |= {r["userId"]: r for r in page["value"]}
        if not (continuation := page["continuation"]):
            return rows


def test_users_with_entra_methods_are_capable_in_the_sweep_and_only_while_the_policy_counts_them(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    rows = compliance_rows(api, graph_emulator)
    assert rows[people["mfa"].id]["capable"] is True and rows[people["mfa"].id]["methods"] == ["mobilePhone"]
    assert rows[people["mail"].id]["capable"] is True
    assert rows[people["three"].id]["methods"] == ["mobilePhone", "officePhone"]  # the office phone is on page 2
    assert rows[people["nothing"].id]["capable"] is False
    try:
        policy(api, graph_emulator, count=False)
        assert compliance_rows(api, graph_emulator)[people["mfa"].id]["capable"] is False
    finally:
        policy(api, graph_emulator, count=True)


def test_the_registration_page_shows_them_from_the_microsoft_account_even_when_graph_throttles(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    member = people["three"]
    httpx.put(f"{graph_emulator.base_url}/_emulator/faults", timeout=10, json={"rules": [
        {"status": 429, "retryAfter": 1, "times": 1, "pathContains": "/authentication/phoneMethods"}]})
    try:
        mine = api.get("/me/security-info", headers=member.headers())
    finally:
        httpx.delete(f"{graph_emulator.base_url}/_emulator/faults", timeout=10)
    assert mine.status_code == 200, mine.text
    view = mine.json()
    assert [(m["method"], m["contact"][-2:]) for m in view["entraMethods"]] == [("mobilePhone", "01"),
                                                                                 ("officePhone", "78")]
    assert "+46701110001" not in mine.text  # masked, like our own contacts
    assert view["methods"] == [] and view["status"]["registered"] is True


def test_a_code_goes_to_the_entra_number_at_reset_and_never_with_the_switch_off(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    member = people["mfa"]
    resetter = Resetter(api)
    assert resetter.start(member.upn).status_code == 201
    assert resetter.prove("mobilePhone", member.mobile).status_code == 202
    progress = resetter.verify("mobilePhone", code_sent_to(graph_emulator, member.mobile))
    assert progress.status_code == 200 and progress.json()["next"] == "password", progress.text

    try:
        policy(api, graph_emulator, count=False)
        before = len(messages_to(graph_emulator, member.mobile))
        off = Resetter(api)
        assert off.start(member.upn).status_code == 201
        assert off.prove("mobilePhone", member.mobile).status_code == 202  # the same answer: a decoy
        time.sleep(2)  # the notifications worker would have delivered a real code by now
        assert len(messages_to(graph_emulator, member.mobile)) == before
    finally:
        policy(api, graph_emulator, count=True)


def test_the_sign_in_hook_counts_them_from_the_summary_without_asking_graph(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    from devtools.tokens import events_token, token_issuance_start

    member = people["mail"]
    assert api.get("/me/security-info", headers=member.headers()).status_code == 200  # read once, on demand
    httpx.delete(f"{graph_emulator.base_url}/_emulator/stats", timeout=10).raise_for_status()
    hooked = api.post("/hooks/token-issuance-start", json=token_issuance_start(member.id),
                      headers=bearer(events_token(graph_emulator)))
    assert hooked.status_code == 200, hooked.text
    claims = hooked.json()["data"]["actions"][0]["claims"]
    assert claims["ssprRegistrationRequired"] == "false", claims
    routes = httpx.get(f"{graph_emulator.base_url}/_emulator/stats", timeout=10).json()["graph"]["byRoute"]
    assert not [r for r in routes if "/authentication/" in r], routes
