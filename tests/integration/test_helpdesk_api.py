"""The helpdesk API against the real host, Azurite and the Graph emulator: an agent (app role SSPR.Helpdesk) finds a
caller, proves who is calling through the user's registered methods, and acts; nothing a caller says is used, no
answer holds a code, a link or a password (security.md D8)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.passkey_authenticator import SoftPasskey
from devtools.stack import MASTER_KEY
from tests.integration.helpdesk_helpers import (
    HAL,
    Agent,
    helpdesk_code,
    link_sent_to,
    new_agent,
    verified_caller,
)
from tests.integration.outbox import messages_to, wait_for
from tests.integration.reset_helpers import Member, Stack, set_policy, stack_fixture
from tests.integration.tokens import bearer, user_token

stack = stack_fixture("hdesk")
NEW_PASSWORD = "Ferry-Lantern-Quietly-93"
ORIGIN = "http://localhost:7071"  # SSPR_PUBLIC_BASE_URL of the test stack: the passkeys' relying party


PASSKEYS_ON = {"email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
               "appNotification": False, "passkey": True, "securityQuestions": False}


@pytest.fixture(scope="module")
def policy(stack: Stack) -> Iterator[None]:
    set_policy(stack.api, stack.emulator, scope="all", methodsAllowed=PASSKEYS_ON)
    yield


@pytest.fixture
def member(stack: Stack, policy: None) -> Member:
    member = Member(stack.emulator, stack.api, given="Casey", surname=f"Zed{datetime.now(UTC).microsecond}")
    member.register_email()
    member.register_mobile()
    return member


@pytest.fixture
def agent(stack: Stack) -> Agent:
    return Agent(stack.api, stack.emulator)


def audit_rows(stack: Stack, user_id: str) -> list[dict[str, object]]:
    return [dict(e) for e in stack.table("Audit").query_entities("targetUserId eq @u", parameters={"u": user_id})]


# ---- who may call --------------------------------------------------------------------------------------------


def test_only_a_person_with_the_helpdesk_role_may_call_and_an_admin_role_is_not_enough(stack: Stack) -> None:
    for upn in ("admin@contoso.example", "reader@contoso.example", "casey@contoso.example"):
        refused = stack.api.get("/helpdesk/users", params={"search": "casey"},
                                headers=bearer(user_token(stack.emulator, upn)))
        assert refused.status_code == 403, (upn, refused.text)
        assert refused.json()["type"] == "urn:sspr:problem:forbidden"
    assert stack.api.get("/helpdesk/users", params={"search": "casey"}).status_code == 401
    allowed = stack.api.get("/helpdesk/users", params={"search": "casey"}, headers=bearer(user_token(stack.emulator,
                                                                                                   HAL)))
    assert allowed.status_code == 200, allowed.text


def test_an_agent_finds_a_caller_by_surname_and_sees_what_a_decision_needs_masked(agent: Agent, member: Member) -> None:
    surname = member.upn  # the member's surname is unique to this test
    found = agent.get("users", search=member.upn.split("@")[0][:9])
    assert found.status_code == 200, found.text
    assert member.id in [u["id"] for u in found.json()["value"]]
    view = agent.get(f"users/{member.id}").json()
    assert view["userPrincipalName"] == member.upn and isinstance(view["ssprEnabled"], bool)
    assert view["administrator"] is False and view["synced"] is False and view["blockedUntil"] is None
    assert {m["method"] for m in view["methods"]} == {"email", "mobilePhone"}
    text = str(view)
    assert member.alternate_email not in text and member.mobile not in text, "contacts are masked"
    assert any(m["contact"].startswith(member.alternate_email[0] + "***@") for m in view["methods"])
    assert surname


def test_the_search_is_paged_and_a_bad_search_is_a_plain_400(stack: Stack, agent: Agent) -> None:
    family = f"Paging{datetime.now(UTC).microsecond}"
    ids = {Member(stack.emulator, stack.api, given=f"Kid{n}", surname=family).id for n in range(27)}
    first = agent.get("users", search=family.lower())
    assert first.status_code == 200 and len(first.json()["value"]) == 25 and first.json()["cursor"]
    second = agent.get("users", search=family.lower(), cursor=first.json()["cursor"])
    assert second.status_code == 200 and len(second.json()["value"]) == 2 and second.json()["cursor"] is None
    assert {u["id"] for u in first.json()["value"] + second.json()["value"]} == ids
    assert agent.get("users", search="a").status_code == 400


# ---- verifying: only what the user registered -----------------------------------------------------------------


def test_a_code_goes_only_to_the_registered_contact_and_a_number_the_caller_gives_is_refused(
        stack: Stack, agent: Agent, member: Member) -> None:
    verification = agent.start(member.id)
    typed = agent.post(f"verifications/{verification}/codes", {"method": "email", "contact": "caller@evil.example"})
    assert typed.status_code == 400 and typed.json()["errors"][0]["field"] == "contact"
    typed_phone = agent.post(f"verifications/{verification}/codes", {"method": "mobilePhone", "number": "+46701234567"})
    assert typed_phone.status_code == 400
    sent = agent.send_code(verification, "mobilePhone")
    assert sent.status_code == 202, sent.text
    assert sent.json()["contact"].endswith(member.mobile[-2:]) and member.mobile not in sent.text
    helpdesk_code(stack.emulator, member.mobile)
    assert not messages_to(stack.emulator, "caller@evil.example")
    assert not messages_to(stack.emulator, "+46701234567")


def test_the_caller_reads_the_code_back_is_verified_and_told_on_every_address(stack: Stack, agent: Agent,
                                                                               member: Member) -> None:
    verification = verified_caller(agent, member)
    view = agent.get(f"verifications/{verification}").json()
    assert view["state"] == "verified" and view["verifiedWith"] == "email"
    notice = wait_for("the verified notice", lambda: [m for m in messages_to(stack.emulator, member.upn)
                                                      if "verified that it was you" in m["body"]])
    assert "Hal Helpdesk" in notice[0]["body"] and "If this was not you" in notice[0]["body"]
    assert any(r["activity"] == "Verify caller identity (helpdesk)" and r["reason"] == "verified"
               and r["actorDisplay"] == "Hal Helpdesk" for r in audit_rows(stack, member.id))


def test_five_wrong_codes_lock_the_verification_and_then_the_right_code_is_refused(stack: Stack, agent: Agent,
                                                                                  member: Member) -> None:
    verification = agent.start(member.id)
    assert agent.send_code(verification).status_code == 202
    code = helpdesk_code(stack.emulator, member.alternate_email)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    answers = [agent.verify(verification, wrong).json()["type"] for _ in range(5)]
    assert answers == ["urn:sspr:problem:code-not-accepted"] * 4 + ["urn:sspr:problem:code-locked"]
    refused = agent.verify(verification, code)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:sspr:problem:code-locked"
    assert agent.get(f"verifications/{verification}").json()["state"] == "locked"
    assert agent.act(verification, "reset-link").status_code == 403


def test_another_agents_verification_is_not_found(stack: Stack, agent: Agent, member: Member) -> None:
    verification = agent.start(member.id)
    other = Agent(stack.api, stack.emulator, new_agent(stack.emulator))
    assert other.get(f"verifications/{verification}").status_code == 404
    assert other.send_code(verification).status_code == 404


def test_the_helpdesk_pauses_for_a_caller_after_ten_codes_in_ten_minutes(stack: Stack, member: Member) -> None:
    agents = [Agent(stack.api, stack.emulator, new_agent(stack.emulator)) for _ in range(2)]
    statuses = []
    for n in range(11):
        agent = agents[n % 2]  # two agents: the caller's own limit, not one agent's
        statuses.append(agent.send_code(agent.start(member.id)).status_code)
    assert statuses == [202] * 10 + [429]
    paused = agents[0].send_code(agents[0].start(member.id))
    assert paused.status_code == 429 and paused.json()["pausedFor"] == "caller"
    assert any(r["activity"] == "Pause helpdesk verification" for r in audit_rows(stack, member.id))


# ---- actions -------------------------------------------------------------------------------------------------


def test_a_verified_agent_clears_the_users_self_service_block(stack: Stack, agent: Agent, member: Member) -> None:
    until = datetime.now(UTC) + timedelta(hours=20)
    stack.table("Throttle").upsert_entity({"PartitionKey": f"user-{member.id}", "RowKey": "limits", "sends": "[]",
                                           "failures": "[]", "failedFlows": "[]", "blockedUntil": until})
    assert agent.get(f"users/{member.id}").json()["blockedUntil"]
    verification = agent.start(member.id)
    assert agent.act(verification, "clear-block").json()["type"] == "urn:sspr:problem:caller-not-verified"
    verification = verified_caller(agent, member)
    done = agent.act(verification, "clear-block")
    assert done.status_code == 200 and done.json() == {"action": "clear-block", "done": True, "pending": False,
                                                        "sentTo": None}
    assert agent.get(f"users/{member.id}").json()["blockedUntil"] is None
    again = agent.act(verification, "clear-block")
    assert again.status_code == 409 and again.json()["reason"] in ("done", "not-blocked")
    assert wait_for("the notice", lambda: [m for m in messages_to(stack.emulator, member.upn)
                                           if "cleared the block" in m["body"]])


def test_a_cloud_users_account_cannot_be_unlocked_here(agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    refused = agent.act(verification, "unlock")
    assert refused.status_code == 409 and refused.json()["reason"] == "cloud-account"


def test_a_reset_link_goes_to_the_registered_address_and_the_user_sets_their_own_password_once(
        stack: Stack, agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    sent = agent.act(verification, "reset-link")
    assert sent.status_code == 200 and sent.json()["sentTo"].endswith(member.alternate_email.split("@")[1])
    token = link_sent_to(stack.emulator, member.alternate_email)
    assert not [t for t in agent.seen if token in t or token.split(".")[1] in t], "the agent never sees the link"
    opened = stack.api.post("/reset/links", json={"link": token}, headers={"X-Forwarded-For": "10.8.8.8"})
    assert opened.status_code == 201 and opened.json()["next"] == "password", opened.text
    flow = opened.json()
    headers = {"X-Flow-Secret": flow["flowSecret"], "X-Forwarded-For": "10.8.8.8"}
    done = stack.api.post(f"/reset/flows/{flow['flowId']}/password", json={"password": NEW_PASSWORD}, headers=headers)
    assert done.status_code == 200 and done.json()["reset"] is True, done.text
    assert member.signs_in_with(NEW_PASSWORD)
    again = stack.api.post("/reset/links", json={"link": token}, headers={"X-Forwarded-For": "10.8.8.8"})
    assert again.status_code == 404 and again.json()["type"] == "urn:sspr:problem:reset-link-not-valid"
    rows = audit_rows(stack, member.id)
    assert any(r["activity"] == "Send password reset link (helpdesk)" for r in rows)
    assert any(r["activity"] == "Reset password (helpdesk-verified)" and r["outcome"] == "success" for r in rows)
    assert not any(NEW_PASSWORD in t for t in agent.seen)


def test_a_link_expires_a_new_one_voids_the_old_and_a_link_is_bound_to_its_verification(
        stack: Stack, agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    assert agent.act(verification, "reset-link").status_code == 200
    first = link_sent_to(stack.emulator, member.alternate_email)
    assert agent.act(verification, "reset-link").status_code == 200
    second = link_sent_to(stack.emulator, member.alternate_email, 2)
    assert second != first
    post = lambda token: stack.api.post("/reset/links", json={"link": token})  # noqa: E731
    assert post(first).status_code == 404, "a new link voids the one before"
    other = verified_caller(agent, member)
    assert post(f"{other}.{second.split('.')[1]}").status_code == 404, "the secret is bound to its verification"
    links = stack.table("Helpdesk")
    row = links.get_entity(verification, "link")
    links.update_entity({"PartitionKey": verification, "RowKey": "link",
                         "expiresAt": datetime.now(UTC) - timedelta(seconds=1)})
    assert post(second).status_code == 404, "an expired link"
    links.update_entity({"PartitionKey": verification, "RowKey": "link", "expiresAt": row["expiresAt"]})
    assert post(second).status_code == 201


def test_thirty_two_parallel_openings_of_one_link_open_one_flow(stack: Stack, agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    assert agent.act(verification, "reset-link").status_code == 200
    token = link_sent_to(stack.emulator, member.alternate_email)
    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda n: stack.api.post("/reset/links", json={"link": token},
                                                       headers={"X-Forwarded-For": f"10.9.{n}.1"}).status_code,
                              range(32)))
    assert sorted(codes) == [201] + [404] * 31


# ---- privileged callers --------------------------------------------------------------------------------------


def test_an_administrator_caller_needs_a_second_agent_and_both_are_named(stack: Stack, agent: Agent,
                                                                         policy: None) -> None:
    admin = Member(stack.emulator, stack.api, given="Ava", surname="Admin", extra={"roles": ["User Administrator"]})
    admin.register_email()
    assert agent.get(f"users/{admin.id}").json()["fourEyes"] is True
    verification = verified_caller(agent, admin)
    asked = agent.act(verification, "reset-link")
    assert asked.status_code == 202 and asked.json()["pendingApproval"] is True
    request = asked.json()["requestId"]
    assert agent.post(f"approvals/{request}", {"decision": "approve"}).status_code == 403, "not the agent who asked"
    assert request not in [r["requestId"] for r in agent.get("approvals").json()["value"]]
    second = Agent(stack.api, stack.emulator, new_agent(stack.emulator, "Second"))
    assert request in [r["requestId"] for r in second.get("approvals").json()["value"]]
    assert not messages_to(stack.emulator, admin.alternate_email) or not link_in(stack, admin)
    approved = second.post(f"approvals/{request}", {"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["result"]["done"] is True, approved.text
    assert second.post(f"approvals/{request}", {"decision": "approve"}).status_code == 404, "decided once"
    link_sent_to(stack.emulator, admin.alternate_email)
    sent = [r for r in audit_rows(stack, admin.id) if r["activity"] == "Send password reset link (helpdesk)"]
    assert sent and sent[0]["actorDisplay"] == "Hal Helpdesk" and "Second Agent" in str(sent[0]["details"])


def link_in(stack: Stack, member: Member) -> bool:
    return any(re.search(r"#link=", m["body"]) for m in messages_to(stack.emulator, member.alternate_email))


def test_the_policy_may_refuse_actions_on_privileged_callers(stack: Stack, agent: Agent, policy: None) -> None:
    admin = Member(stack.emulator, stack.api, given="Rex", surname="Refused", extra={"roles": ["User Administrator"]})
    admin.register_email()
    set_policy(stack.api, stack.emulator, scope="all", methodsAllowed=PASSKEYS_ON,
               helpdesk={"privilegedCallers": "refuse"})
    try:
        verification = verified_caller(agent, admin)
        refused = agent.act(verification, "reset-link")
        assert refused.status_code == 403 and refused.json()["type"] == "urn:sspr:problem:privileged-refused"
    finally:
        set_policy(stack.api, stack.emulator, scope="all", methodsAllowed=PASSKEYS_ON)


def test_an_agent_never_verifies_their_own_account(stack: Stack, agent: Agent) -> None:
    hal = httpx.get(f"{stack.emulator.base_url}/_emulator/users/{HAL}", timeout=10)
    hal_id = hal.json()["id"] if hal.status_code == 200 else "c0ffee00-5e1f-4ea5-b0a7-00000000100a"
    assert agent.post("verifications", {"userId": hal_id}).status_code == 403


# ---- everyone hears of it --------------------------------------------------------------------------------------


def test_the_compliance_dashboard_counts_helpdesk_recoveries_beside_self_service(stack: Stack, agent: Agent,
                                                                                member: Member) -> None:
    reader = bearer(user_token(stack.emulator, "reader@contoso.example"))
    before = stack.api.get("/manage/recoveries", params={"days": 1}, headers=reader)
    assert before.status_code == 200, before.text
    stack.table("Throttle").upsert_entity({"PartitionKey": f"user-{member.id}", "RowKey": "limits", "sends": "[]",
                                           "failures": "[]", "failedFlows": "[]",
                                           "blockedUntil": datetime.now(UTC) + timedelta(hours=1)})
    assert agent.act(verified_caller(agent, member), "clear-block").status_code == 200
    after = stack.api.get("/manage/recoveries", params={"days": 1}, headers=reader).json()
    assert after["helpdesk"] == before.json()["helpdesk"] + 1
    assert after["selfService"] == before.json()["selfService"]
    assert after["byDay"][-1]["helpdesk"] == after["helpdesk"]
    assert stack.api.get("/manage/recoveries", params={"days": 91}, headers=reader).status_code == 400
    only_helpdesk = bearer(user_token(stack.emulator, new_agent(stack.emulator)))
    assert stack.api.get("/manage/recoveries", headers=only_helpdesk).status_code == 403, "helpdesk is not admin"


def test_the_admins_daily_digest_lists_the_days_helpdesk_actions_once(stack: Stack, agent: Agent,
                                                                     member: Member) -> None:
    verification = verified_caller(agent, member)
    assert agent.act(verification, "reset-link").status_code == 200
    day = datetime.now(UTC).date().isoformat()
    digest = {"kind": "helpdesk-digest", "id": str(uuid.uuid4()), "day": day}
    for _ in range(2):  # the same message twice (a redelivery): one mail
        stack.queue("notifications").send_message(json.dumps(digest))
    subject = f"Helpdesk recoveries on {day}"
    mails = wait_for("the digest", lambda: [m for m in outbox_of(stack) if m.get("subject") == subject
                                            and member.upn in m["body"]])
    assert "admin@contoso.example" in mails[0]["to"] and "Hal Helpdesk" in mails[0]["body"]
    assert "Send password reset link (helpdesk)" in mails[0]["body"]
    time.sleep(2)  # the second copy is handled by now; it sends nothing
    assert len([m for m in outbox_of(stack) if m.get("subject") == subject]) == 1
    fired = httpx.post(f"{stack.host.base_url}/admin/functions/helpdesk_digest", json={"input": ""},
                       headers={"x-functions-key": MASTER_KEY}, timeout=30)
    assert fired.status_code == 202, fired.text


def outbox_of(stack: Stack) -> list[dict[str, object]]:
    return list(httpx.get(f"{stack.emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def test_a_link_for_a_temporary_access_pass_hands_the_pass_to_the_user_once_and_never_to_the_agent(
        stack: Stack, agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    offers = {o["action"]: o for o in agent.get(f"verifications/{verification}").json()["actions"]}
    assert offers["access-pass"]["available"] is True, offers
    assert agent.act(verification, "access-pass").status_code == 200
    token = link_sent_to(stack.emulator, member.alternate_email)
    opened = stack.api.post("/reset/links", json={"link": token})
    assert opened.status_code == 201 and opened.json()["next"] == "access-pass", opened.text
    flow = opened.json()
    headers = {"X-Flow-Secret": flow["flowSecret"]}
    issued = stack.api.post(f"/reset/flows/{flow['flowId']}/access-pass", headers=headers)
    assert issued.status_code == 201, issued.text  # the policy's own offer is off: the helpdesk's link is the offer
    the_pass = issued.json()["temporaryAccessPass"]
    assert not [t for t in agent.seen if the_pass in t]
    assert not [m for m in messages_to(stack.emulator, member.alternate_email) if the_pass in m["body"]]
    assert stack.api.post(f"/reset/flows/{flow['flowId']}/access-pass", headers=headers).status_code in (404, 409)
    rows = audit_rows(stack, member.id)
    assert any(r["activity"] == "Send Temporary Access Pass link (helpdesk)" for r in rows)
    assert any(r["activity"] == "Admin registered security info" and r["method"] == "temporaryAccessPass" for r in rows)


def test_a_reset_link_never_yields_a_pass_the_policy_does_not_offer(stack: Stack, agent: Agent, member: Member) -> None:
    verification = verified_caller(agent, member)
    assert agent.act(verification, "reset-link").status_code == 200
    opened = stack.api.post("/reset/links", json={"link": link_sent_to(stack.emulator, member.alternate_email)})
    assert opened.status_code == 201 and opened.json()["next"] == "password"
    refused = stack.api.post(f"/reset/flows/{opened.json()['flowId']}/access-pass",
                             headers={"X-Flow-Secret": opened.json()["flowSecret"]})
    assert refused.status_code == 409 and refused.json()["type"] == "urn:sspr:problem:access-pass-unavailable"


def test_with_the_tenants_pass_policy_off_the_agent_is_told_why_no_pass_can_be_sent(
        stack: Stack, agent: Agent, member: Member) -> None:
    control = f"{stack.emulator.base_url}/_emulator/tapPolicy"
    httpx.patch(control, json={"state": "disabled"}, timeout=10).raise_for_status()
    try:
        verification = verified_caller(agent, member)
        offers = {o["action"]: o for o in agent.get(f"verifications/{verification}").json()["actions"]}
        assert offers["access-pass"] == {"action": "access-pass", "available": False, "reason": "access-pass-off"}
        refused = agent.act(verification, "access-pass")
        assert refused.status_code == 409 and refused.json()["reason"] == "access-pass-off"
    finally:
        httpx.patch(control, json={"state": "enabled"}, timeout=10).raise_for_status()



def test_a_caller_confirms_with_their_own_passkey_on_their_own_device_and_a_stranger_key_counts(
        stack: Stack, agent: Agent, member: Member) -> None:
    key = SoftPasskey("localhost")
    assert add_passkey(member, key).status_code == 200
    verification = agent.start(member.id)
    assert agent.get(f"verifications/{verification}").json()["passkey"] is True
    confirm = f"/helpdesk/confirmations/{verification}"
    assert stack.api.post(f"{confirm}/options").status_code == 404, "nothing before the agent asks"
    asked = agent.post(f"verifications/{verification}/passkey", {})
    assert asked.status_code == 202 and asked.json()["passkeyAsked"] is True, asked.text
    wait_for("the confirmation mail", lambda: [m for m in messages_to(stack.emulator, member.alternate_email)
                                               if f"#confirm={verification}" in m["body"]])
    stranger = SoftPasskey("localhost")
    options = stack.api.post(f"{confirm}/options").json()["publicKey"]
    assert not options.get("allowCredentials")
    refused = stack.api.post(confirm, json={"credential": stranger.get(options, ORIGIN)})
    assert refused.status_code == 400 and refused.json()["type"] == "urn:sspr:problem:passkey-not-accepted"
    options = stack.api.post(f"{confirm}/options").json()["publicKey"]
    replay = key.get(options, ORIGIN)
    assert stack.api.post(confirm, json={"credential": replay}).status_code == 200
    view = agent.get(f"verifications/{verification}").json()
    assert view["state"] == "verified" and view["verifiedWith"] == "passkey"
    assert stack.api.post(confirm, json={"credential": replay}).status_code == 404, "used once, then over"
    assert any(r["reason"] == "passkey-refused" for r in audit_rows(stack, member.id))


def add_passkey(member: Member, key: SoftPasskey) -> httpx.Response:
    headers = member.headers()
    begun = member.api.post("/me/security-info/passkeys/options", headers=headers)
    assert begun.status_code == 201, begun.text
    setup = begun.json()
    return member.api.post("/me/security-info/passkeys", headers=headers, json={
        "setupId": setup["setupId"], "name": "Phone", "credential": key.create(setup["publicKey"], ORIGIN)})


def test_thirty_two_parallel_approvals_run_the_action_once(stack: Stack, agent: Agent, policy: None) -> None:
    admin = Member(stack.emulator, stack.api, given="Pia", surname="Parallel", extra={"roles": ["User Administrator"]})
    admin.register_email()
    request = agent.act(verified_caller(agent, admin), "reset-link").json()["requestId"]
    second = Agent(stack.api, stack.emulator, new_agent(stack.emulator, "Racer"))
    second.headers()  # the token, fetched once before the race
    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda _: second.post(f"approvals/{request}", {"decision": "approve"}).status_code,
                              range(32)))
    assert codes.count(200) == 1 and set(codes) <= {200, 404, 409}, codes
    link_sent_to(stack.emulator, admin.alternate_email)
    time.sleep(2)  # any second run would have queued its link by now
    links = [m for m in messages_to(stack.emulator, admin.alternate_email) if "#link=" in m["body"]]
    assert len(links) == 1
    sent = [r for r in audit_rows(stack, admin.id) if r["activity"] == "Send password reset link (helpdesk)"]
    assert len(sent) == 1


def test_without_the_pass_permissions_the_view_still_opens_and_says_passes_are_not_set_up(
        stack: Stack, agent: Agent, member: Member) -> None:
    faults = f"{stack.emulator.base_url}/_emulator/faults"
    httpx.put(faults, timeout=10, json={"rules": [{"status": 403, "code": "Authorization_RequestDenied",
                                                   "pathContains": "authenticationMethodConfigurations",
                                                   "target": "graph"}]}).raise_for_status()
    try:
        verification = verified_caller(agent, member)
        offers = {o["action"]: o for o in agent.get(f"verifications/{verification}").json()["actions"]}
        assert offers["access-pass"]["reason"] == "access-pass-not-set-up"
        assert offers["reset-link"]["available"] is True
    finally:
        httpx.delete(faults, timeout=10).raise_for_status()
