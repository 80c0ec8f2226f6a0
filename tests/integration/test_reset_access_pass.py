"""A verified reset ends with a Temporary Access Pass (security.md I3): made by Graph (the emulator) within the
tenant's TAP policy, shown once, good for one sign-in at the emulator's authorize and token endpoints when
one-time, never twice per flow; the user is told by mail, which never holds the pass; audited with Entra's names."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.stack import DEMO_TENANT_ID, PAGES_APP_ID, GraphEmulator
from tests.integration.outbox import code_sent_to, messages_to, wait_for
from tests.integration.reset_helpers import Member, Resetter, api_fixture, enable_everyone, set_policy
from tests.integration.tokens import DEMO_PASSWORD, bearer, user_token

PREFIX = "tap" + uuid.uuid4().hex[:8]
NEW_PASSWORD = "Correct-Horse-Battery-93"
NOTICE = "A Temporary Access Pass was made for your account"
TAP_DEFAULTS = {"state": "enabled", "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480,
                "isUsableOnce": False, "includeTargets": [{"targetType": "group", "id": "all_users",
                                                           "isRegistrationRequired": False}], "excludeTargets": []}


api = api_fixture(PREFIX)


@pytest.fixture(scope="module")
def people(api: httpx.Client, graph_emulator: GraphEmulator) -> dict[str, Member]:
    found = {name: Member(graph_emulator, api) for name in ("instead", "after", "bounded", "off", "parallel")}
    set_policy(api, graph_emulator, scope="all")
    enable_everyone(api, graph_emulator)
    for member in found.values():
        member.register_email()
    return found


@pytest.fixture(autouse=True)
def tenant_tap_policy(graph_emulator: GraphEmulator) -> Iterator[None]:
    yield
    httpx.patch(f"{graph_emulator.base_url}/_emulator/tapPolicy", json=TAP_DEFAULTS, timeout=10).raise_for_status()


def offer(api: httpx.Client, emulator: GraphEmulator, **tap: Any) -> None:
    set_policy(api, emulator, scope="all", temporaryAccessPass={
        "insteadOfPassword": False, "afterPassword": False, "lifetimeMinutes": 60, "oneTimeUse": True, **tap})


def verified(api: httpx.Client, emulator: GraphEmulator, member: Member) -> Resetter:
    resetter = Resetter(api)
    assert resetter.start(member.upn).status_code == 201
    sent = len(messages_to(emulator, member.alternate_email))
    assert resetter.prove("email", member.alternate_email).status_code == 202
    progress = resetter.verify("email", code_sent_to(emulator, member.alternate_email, count=sent + 1))
    assert progress.status_code == 200 and progress.json()["next"] == "password", progress.text
    return resetter


def browser_sign_in(emulator: GraphEmulator, upn: str, credential: str) -> bool:
    """The authorization-code flow with PKCE, as a browser does it: the form at /authorize, then /token."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://localhost:7071/api/pages/register"
    authority = f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0"
    signed = httpx.post(f"{authority}/authorize", timeout=10, follow_redirects=False, data={
        "client_id": PAGES_APP_ID, "response_type": "code", "redirect_uri": redirect, "scope": "openid profile",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "username": upn,
        "password": credential})
    if signed.status_code != 302:
        return False
    code = parse_qs(urlsplit(signed.headers["location"]).query)["code"][0]
    token = httpx.post(f"{authority}/token", timeout=10, data={
        "grant_type": "authorization_code", "client_id": PAGES_APP_ID, "code": code, "redirect_uri": redirect,
        "code_verifier": verifier, "scope": "openid profile"})
    return token.status_code == 200


def test_I3_a_pass_instead_of_a_password_signs_in_once_and_ends_the_flow(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    member = people["instead"]
    offer(api, graph_emulator, insteadOfPassword=True)
    resetter = verified(api, graph_emulator, member)
    assert resetter.start(f"x-{uuid.uuid4().hex[:6]}@contoso.example").json()["accessPass"] == {
        "insteadOfPassword": True, "afterPassword": False}  # told at the start, the same for everyone

    resetter = verified(api, graph_emulator, member)
    issued = resetter.post("/access-pass")
    assert issued.status_code == 201, issued.text
    body = issued.json()
    the_pass = body["temporaryAccessPass"]
    assert len(the_pass) >= 8 and body["usableOnce"] is True and body["lifetimeMinutes"] == 60
    assert body["passwordReset"] is False
    assert issued.headers["Cache-Control"] == "no-store"

    assert resetter.set_password(NEW_PASSWORD).status_code == 404  # the flow ended with the pass
    assert resetter.post("/access-pass").status_code in (404, 409)  # one pass per flow
    assert browser_sign_in(graph_emulator, member.upn, the_pass)
    assert not browser_sign_in(graph_emulator, member.upn, the_pass)  # one-time: used up
    assert member.signs_in_with(DEMO_PASSWORD)  # the password was not changed
    assert not member.signs_in_with(the_pass)  # the password grant (ROPC) never takes a pass

    notice = wait_for("the notice", lambda: [m for m in messages_to(graph_emulator, member.alternate_email)
                                               if m.get("subject") == NOTICE])
    assert the_pass not in str(notice)
    admin = bearer(user_token(graph_emulator, "admin@contoso.example"))
    events = api.get("/manage/audit", params={"user": member.id}, headers=admin).json()["value"]
    made = [e for e in events if e["activity"] == "Admin registered security info"]
    assert made and made[0]["method"] == "temporaryAccessPass" and the_pass not in str(events)


def test_I3_a_pass_after_the_new_password_is_one_per_flow(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    member = people["after"]
    offer(api, graph_emulator, afterPassword=True)
    resetter = verified(api, graph_emulator, member)
    assert resetter.post("/access-pass").json()["type"] == "urn:sspr:problem:access-pass-unavailable"  # not yet
    assert resetter.set_password(NEW_PASSWORD).status_code == 200
    issued = resetter.post("/access-pass")
    assert issued.status_code == 201 and issued.json()["passwordReset"] is True, issued.text
    again = resetter.post("/access-pass")
    assert again.status_code == 409, again.text
    assert member.signs_in_with(NEW_PASSWORD)


def test_I3_the_tenants_tap_policy_bounds_the_pass_and_can_refuse_it(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    control = f"{graph_emulator.base_url}/_emulator/tapPolicy"
    offer(api, graph_emulator, insteadOfPassword=True, lifetimeMinutes=10, oneTimeUse=False)
    httpx.patch(control, json={"minimumLifetimeInMinutes": 30, "isUsableOnce": True}, timeout=10).raise_for_status()
    issued = verified(api, graph_emulator, people["bounded"]).post("/access-pass")
    assert issued.status_code == 201, issued.text
    assert (issued.json()["lifetimeMinutes"], issued.json()["usableOnce"]) == (30, True)

    httpx.patch(control, json={"state": "disabled"}, timeout=10).raise_for_status()
    refused = verified(api, graph_emulator, people["off"]).post("/access-pass")
    assert refused.status_code == 409 and refused.json()["type"] == "urn:sspr:problem:access-pass-unavailable"
    assert "Choose a new password instead" in refused.json()["detail"]


def test_I3_32_parallel_requests_make_one_pass(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    offer(api, graph_emulator, insteadOfPassword=True)
    resetter = verified(api, graph_emulator, people["parallel"])
    httpx.delete(f"{graph_emulator.base_url}/_emulator/stats", timeout=10).raise_for_status()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: resetter.post("/access-pass"), range(32)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 404, 409}, statuses
    made = httpx.get(f"{graph_emulator.base_url}/_emulator/stats", timeout=10).json()["graph"]["byRoute"]
    assert made.get("POST /users/{id}/authentication/temporaryAccessPassMethods") == 1, made
