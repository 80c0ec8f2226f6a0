"""Hardening of the reset against what a hostile outsider tried: parallel password sets, lookalike names and
addresses, and the direct tests of rules that other tests covered only by accident (security.md A6, A10, B2,
C1, D4, D5, F3). Each test here was seen to fail with the bug it names planted (see docs/security.md).

The module runs its own host (own tables and queues) with a policy that enables everyone; every test resets from
client IPs of its own. Codes and mails are read from the emulator's outbox, rows from Azurite.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from azure.data.tables import UpdateMode
from azure.storage.queue import QueueClient

from devtools.stack import DEV_CODE_HMAC_KEY, GraphEmulator
from shared.adapters.common_passwords import common_passwords
from shared.adapters.proof_of_work import ProofOfWork, solve
from shared.domain.passwords import PasswordContext, check_password
from shared.domain.throttling import username_key
from tests.integration.outbox import code_sent_to, messages_to, wait_for
from tests.integration.reset_helpers import Member, Resetter, Stack, enable_everyone, set_policy, stack_fixture

PREFIX = "rsh" + uuid.uuid4().hex[:8]
CODE_KEY = base64.b64decode(DEV_CODE_HMAC_KEY)
NOTICE_SUBJECT = "Your password was reset"
TENANT_NAME = "Contoso Demo"  # the emulator's organisation (devtools/graph_emulator/fixture/demo_tenant.json)
KELVIN = "\u212a"
PEOPLE = ["race", "decoy", "appfail", "real", "blocked", "secret", "totp", "totprace", "revoke"]


stack = stack_fixture(PREFIX)


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, Member]:
    members = {name: Member(stack.emulator, stack.api) for name in PEOPLE}
    members["named"] = Member(stack.emulator, stack.api, given="Marguerite", surname="Fennimore")
    members["disabled"] = Member(stack.emulator, stack.api, extra={"accountEnabled": False})
    kelvin = f"kelvin-{uuid.uuid4().hex[:8]}@contoso.example"
    members["kelvin"] = Member(stack.emulator, stack.api, extra={"userPrincipalName": kelvin, "mail": kelvin})
    members["kelvin"].upn = kelvin
    set_policy(stack.api, stack.emulator, scope="all")
    enable_everyone(stack.api, stack.emulator)
    return members


# ---- helpers ------------------------------------------------------------------------------------------------


def kind(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit(":", 1)[1]


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers but Date and request ids, and the body."""
    headers = [(k.lower(), v) for k, v in response.headers.items()
               if k.lower() != "date" and "request-id" not in k.lower()]
    return response.status_code, headers, response.content


def verified_flow(stack: Stack, member: Member) -> Resetter:
    resetter = Resetter(stack.api)
    before = len([m for m in messages_to(stack.emulator, member.alternate_email) if m["subject"] != NOTICE_SUBJECT])
    assert resetter.start(member.upn).status_code == 201
    assert resetter.prove("email", member.alternate_email).status_code == 202
    code = code_sent_to(stack.emulator, member.alternate_email, count=before + 1)
    verified = resetter.verify("email", code)
    assert verified.status_code == 200, verified.text
    return resetter


def graph_routes(emulator: GraphEmulator) -> dict[str, int]:
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats", timeout=10).json()
    return {k: int(v) for k, v in stats["graph"]["byRoute"].items()}


def patches_of(emulator: GraphEmulator) -> int:
    return graph_routes(emulator).get("PATCH /users/{id}", 0)


def user_lookups(emulator: GraphEmulator) -> int:
    return sum(n for route, n in graph_routes(emulator).items() if route.startswith("GET /users"))


def notices_to(stack: Stack, address: str) -> list[dict[str, Any]]:
    return [m for m in messages_to(stack.emulator, address) if m["subject"] == NOTICE_SUBJECT]


def queue_drained(queue: QueueClient) -> bool:
    return queue.get_queue_properties().approximate_message_count == 0


def flow_rows(stack: Stack, flow_id: str) -> dict[str, dict[str, Any]]:
    rows = stack.table("ResetFlows").query_entities("PartitionKey eq @p", parameters={"p": flow_id})
    return {r["RowKey"]: dict(r) for r in rows}


def wrong_totp(seed: str) -> str:
    """A 6-digit code no step within +/-2 of now accepts."""
    app, now = pyotp.TOTP(seed), time.time()
    taken = {app.at(now + 30 * k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(100000, 999999, 7919)) if c not in taken)


# ---- A6 / F1: one success, one password set, one notice under any concurrency -------------------------------


def test_A6_F1_32_parallel_password_sets_on_one_flow_succeed_once_set_once_and_notify_once(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["race"]
    member.register_email()
    rounds = 4
    for round_ in range(rounds):
        resetter = verified_flow(stack, member)
        patches = patches_of(stack.emulator)
        password = f"Parallel-Horse-{round_}-93x"
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda _, r=resetter, p=password: r.set_password(p), range(32)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 1, statuses
        # The others were told the step is running (409) or, once it finished, that the flow is over (404).
        assert {kind(a) for a in answers if a.status_code != 200} <= {"conflict", "flow-not-found"}, statuses
        assert patches_of(stack.emulator) == patches + 1  # the password was set once
        assert member.signs_in_with(password)
    wait_for("the notices", lambda: len(notices_to(stack, member.alternate_email)) >= rounds)
    wait_for("the notifications queue to drain", lambda: queue_drained(stack.queue("notifications")))
    time.sleep(1)  # a duplicate notice would be queued with the first: give the worker a moment to send it
    assert len(notices_to(stack, member.alternate_email)) == rounds


# ---- B4 / F6: the password was set, so the user is told and the sessions end, even when the revoke fails ----


def sessions_valid_from(stack: Stack, member: Member) -> str | None:
    user = httpx.get(f"{stack.emulator.base_url}/_emulator/users/{member.id}", timeout=10).json()
    return user["signInSessionsValidFromDateTime"]


def test_B4_F6_a_revoke_failing_after_the_password_was_set_still_answers_done_notifies_and_is_retried(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["revoke"]
    member.register_email()
    resetter = verified_flow(stack, member)
    before = sessions_valid_from(stack, member)
    answer = httpx.put(f"{stack.emulator.base_url}/_emulator/faults", timeout=10, json={"seed": 1, "rules": [
        {"status": 503, "retryAfter": 0, "methods": ["POST"], "pathContains": f"/users/{member.id}/revokeSignInSessions"}]})
    assert answer.status_code == 200, answer.text
    try:
        done = resetter.set_password("Revoked-Later-Harbour-61")
        # The password WAS changed: the user is told so (not a 503 that sends them to try again), and that their
        # other sign-ins are still to end.
        assert done.status_code == 200, done.text
        assert done.json()["reset"] is True and done.json()["sessionsRevoked"] is False
        assert member.signs_in_with("Revoked-Later-Harbour-61")
        wait_for("the reset notice", lambda: notices_to(stack, member.alternate_email))
        assert sessions_valid_from(stack, member) == before  # Graph is still refusing the revoke
        # The flow is finished, not held by a claim for minutes: the same request again is the finished flow's 404.
        again = resetter.set_password("Revoked-Later-Harbour-62")
        assert again.status_code == 404 and kind(again) == "flow-not-found", again.text
    finally:
        httpx.delete(f"{stack.emulator.base_url}/_emulator/faults", timeout=10)
    # The revoke is retried until Graph takes it: the sessions end without anyone asking again.
    wait_for("the sessions to be revoked", lambda: sessions_valid_from(stack, member) != before, seconds=45)
    assert member.signs_in_with("Revoked-Later-Harbour-61")
    assert len(notices_to(stack, member.alternate_email)) == 1


# ---- B2: the reset passes the tenant name and the user's names to the banned-password check ---------------


@pytest.fixture(scope="module")
def named(people: dict[str, Member]) -> Member:
    """Marguerite Fennimore of the Contoso Demo tenant, with an email registered."""
    people["named"].register_email()
    return people["named"]


@pytest.mark.parametrize("password", ["Contoso#2x", "Marguerite#7x", "Fennimore#7x"])
def test_B2_a_password_with_the_tenant_name_or_the_users_names_is_refused_by_the_reset_as_banned(
        stack: Stack, named: Member, password: str) -> None:
    assert password.startswith((TENANT_NAME.split()[0], "Marguerite", "Fennimore"))
    member = named
    blank = PasswordContext(tenant_name="", upn="", given_name="", surname="", display_name="")
    assert check_password(password, blank, common_passwords()) == []  # only the context words refuse it
    resetter = verified_flow(stack, member)
    checked = resetter.post("/password/check", {"password": password}).json()
    assert checked["acceptable"] is False and [f["rule"] for f in checked["failures"]] == ["PASSWORD_BANNED"]
    patches = patches_of(stack.emulator)
    refused = resetter.set_password(password)
    assert refused.status_code == 422 and [f["rule"] for f in refused.json()["failures"]] == ["PASSWORD_BANNED"]
    assert patches_of(stack.emulator) == patches


# ---- C1: a username that names nobody gets the rows a real user with another contact gets -----------------


def shape(rows: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Which rows a flow has and which columns each holds (values differ: ids, digests, times)."""
    return {row: sorted(columns) for row, columns in rows.items()}


def test_C1_a_username_naming_nobody_gets_a_decoy_challenge_like_a_real_user_with_another_contact(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["decoy"]
    member.register_email()
    nobody, real = Resetter(stack.api), Resetter(stack.api)
    nobody.start(f"nobody-{uuid.uuid4().hex[:8]}@contoso.example")
    real.start(member.upn)
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@alt.example"
    assert nobody.prove("email", stranger).status_code == 202
    assert real.prove("email", stranger).status_code == 202
    nobody_rows, real_rows = flow_rows(stack, nobody.flow_id), flow_rows(stack, real.flow_id)
    assert "email" in nobody_rows  # the decoy challenge exists
    assert shape(nobody_rows) == shape(real_rows)
    for column in ("state", "deliveryState", "failedAttempts"):
        if column in real_rows["email"]:
            assert nobody_rows["email"][column] == real_rows["email"][column], column
    # And it behaves like one: a wrong code gets the very answer the real user's decoy gives.
    assert comparable(nobody.verify("email", "12345678")) == comparable(real.verify("email", "12345678"))


# ---- F3: parallel wrong app codes on one flow and one user are each counted once -------------------------


def test_F3_20_parallel_wrong_app_codes_count_exactly_on_the_flow_and_the_typed_names_throttle_row(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["appfail"]
    seed = member.register_app()
    resetter = Resetter(stack.api)
    resetter.start(member.upn)
    wrong = wrong_totp(seed)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: resetter.prove_app(wrong), range(20)))
    kinds = [kind(a) for a in answers]
    # Five wrong app codes for one typed name pause app codes for it (USERNAME_APP_GUESSES): a late racer may be told.
    assert set(kinds) <= {"code-not-accepted", "flow-locked", "app-codes-paused"}, kinds
    assert kinds.count("code-not-accepted") == 4, kinds  # the 5th wrong answer locks the flow (A9)
    flow = flow_rows(stack, resetter.flow_id)["flow"]
    counted = json.loads(flow["failures"])["authenticatorApp"]
    assert flow["state"] == "locked" and 5 <= counted <= 20
    # Wrong app codes count against the typed name, never against the user (C7, G5): the user has no row, and the
    # name's row holds every guess that reached the flow's count (a lost update would hold fewer).
    throttle = stack.table("Throttle")
    assert not list(throttle.query_entities("PartitionKey eq @pk", parameters={"pk": f"user-{member.id}"}))
    name_row = dict(throttle.get_entity(f"user-{username_key(member.upn)}", "limits"))
    assert len(json.loads(name_row["failures"])) >= counted


# ---- C1: the proof answer is the same bytes for every kind of username ------------------------------------


def test_C1_the_proof_and_a_wrong_code_answer_the_same_bytes_for_unknown_disabled_not_enabled_blocked_and_real(
        stack: Stack, people: dict[str, Member]) -> None:
    real, blocked = people["real"], people["blocked"]
    real.register_email()
    blocked.register_email()
    stack.table("Throttle").upsert_entity({
        "PartitionKey": f"user-{blocked.id}", "RowKey": "limits", "sends": "[]", "failures": "[]",
        "failedFlows": "[]", "blockedUntil": datetime.now(UTC) + timedelta(hours=24)}, mode=UpdateMode.REPLACE)
    not_enabled = Member(stack.emulator, stack.api)  # created after the enablement run: not in scope
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@alt.example"
    cases = {
        "unknown": (f"nobody-{uuid.uuid4().hex[:8]}@contoso.example", stranger),
        "disabled": (people["disabled"].upn, stranger),
        "not enabled": (not_enabled.upn, stranger),
        "blocked": (blocked.upn, stranger),
        "real, another contact": (real.upn, stranger),
        "real, its contact": (real.upn, real.alternate_email),
    }
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    proofs, wrongs = {}, {}
    for who, (upn, contact) in cases.items():
        resetter = Resetter(stack.api, ip=ip)
        assert resetter.start(upn).status_code == 201
        proofs[who] = resetter.prove("email", contact)
        wrongs[who] = resetter.verify("email", "12345678")
    first, first_wrong = comparable(proofs["real, its contact"]), comparable(wrongs["real, its contact"])
    assert first[0] == 202 and first_wrong[0] == 400
    for who in cases:
        assert comparable(proofs[who]) == first, who
        assert comparable(wrongs[who]) == first_wrong, who


# ---- the flow secret ----------------------------------------------------------------------------------------


def test_C1_a_flow_opens_only_with_its_own_secret_and_every_refusal_is_the_same_404(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["secret"]
    mine, other = Resetter(stack.api), Resetter(stack.api)
    mine.start(member.upn)
    other.start(member.upn)
    body = {"method": "email", "contact": member.alternate_email}
    url = f"/reset/flows/{mine.flow_id}/proofs"
    answers = {
        "wrong": stack.api.post(url, json=body, headers={"X-Flow-Secret": "x" * 43}),
        "another flow's": stack.api.post(url, json=body, headers={"X-Flow-Secret": other.secret}),
        "missing": stack.api.post(url, json=body, headers={}),
        "empty": stack.api.post(url, json=body, headers={"X-Flow-Secret": ""}),
        "of an unknown flow": stack.api.post(f"/reset/flows/{uuid.uuid4()}/proofs", json=body,
                                             headers={"X-Flow-Secret": mine.secret}),
    }
    first = comparable(answers["of an unknown flow"])
    assert first[0] == 404 and kind(answers["of an unknown flow"]) == "flow-not-found"
    for which, answer in answers.items():
        assert comparable(answer) == first, which
    assert "email" not in flow_rows(stack, mine.flow_id)  # nothing happened in the flow
    assert mine.prove("email", member.alternate_email).status_code == 202  # its own secret opens it


# ---- A10: an authenticator step works once, across flows, and earlier steps not at all -------------------


def test_A10_a_used_totp_step_and_an_earlier_one_are_refused_through_the_api_like_a_wrong_code(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["totp"]
    seed = member.register_app()  # registration used the current step
    app = pyotp.TOTP(seed)
    now = time.time()
    if now % 30 > 25:  # the next step must still be "next" for the three calls below
        time.sleep(30 - now % 30 + 0.5)
        now = time.time()
    current, following = app.at(now), app.at(now + 30)
    wrong = Resetter(stack.api)
    wrong.start(member.upn)
    refused_wrong = wrong.prove_app(wrong_totp(seed))
    assert refused_wrong.status_code == 400
    first = Resetter(stack.api)
    first.start(member.upn)
    assert first.prove_app(following).status_code == 200
    for code in (following, current):  # the same step again, then one before it
        again = Resetter(stack.api)
        again.start(member.upn)
        refused = again.prove_app(code)
        assert comparable(refused) == comparable(refused_wrong), code


def test_A10_one_app_code_sent_to_32_flows_at_once_verifies_exactly_one(
        stack: Stack, people: dict[str, Member]) -> None:
    """The replay a sequential test cannot see: racers that read the method before any recorded the step pass the
    code's own check, so only the store's ETag'd `advance_last_used_step` stands between one code and many
    verified flows. Each flow has resolved its user beforehand (a proof with a stranger's address, which counts
    against nobody), so the racers' reads of the method come close together."""
    member = people["totprace"]
    seed = member.register_app()  # registration used the current step
    flows = [Resetter(stack.api) for _ in range(32)]
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@alt.example"
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(lambda flow: flow.start(member.upn).status_code, flows)) == {201}
        assert set(pool.map(lambda flow: flow.prove("email", stranger).status_code, flows)) == {202}
    now = time.time()
    if now % 30 > 25:  # the next step must still be within +/-1 step when the racers arrive
        time.sleep(30 - now % 30 + 0.5)
        now = time.time()
    code = pyotp.TOTP(seed).at(now + 30)
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda flow: flow.prove_app(code), flows))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    # The others are a used code (counted as a wrong app code for the typed name: the fifth pauses app codes).
    assert {kind(a) for a in answers if a.status_code != 200} <= {"code-not-accepted", "app-codes-paused"}, statuses
    verified = [f for f in flows if json.loads(flow_rows(stack, f.flow_id)["flow"].get("verified") or "[]")]
    assert len(verified) == 1


# ---- D4: an expired proof-of-work solution is refused --------------------------------------------------------


def test_D4_a_solved_proof_of_work_whose_challenge_expired_is_refused(stack: Stack) -> None:
    issued_long_ago = ProofOfWork(None, CODE_KEY, lambda: datetime.now(UTC) - timedelta(minutes=11))  # type: ignore[arg-type]
    fresh = ProofOfWork(None, CODE_KEY, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    username, ip = f"nobody-{uuid.uuid4().hex[:8]}@contoso.example", {"X-Forwarded-For": "203.0.113.77"}
    expired = stack.api.post("/reset/flows", json={"username": username, "altcha": solve(issued_long_ago.challenge())},
                             headers=ip)
    assert expired.status_code == 403 and kind(expired) == "proof-of-work-failed"
    # The same key's challenge within its lifetime is accepted: only the expiry refused the first one.
    accepted = stack.api.post("/reset/flows", json={"username": username, "altcha": solve(fresh.challenge())},
                              headers=ip)
    assert accepted.status_code == 201, accepted.text


# ---- D5: lookalikes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["ca\u200bsey@alt.example", "casey\u2028x@alt.example",
                                     "\u202ecasey@alt.example", '"casey"@alt.example'])
def test_D5_registration_refuses_an_address_with_invisible_bidi_separator_or_quoted_parts(
        stack: Stack, people: dict[str, Member], address: str) -> None:
    member = people["real"]
    answer = stack.api.post("/me/security-info/email", json={"address": address}, headers=member.headers())
    assert answer.status_code == 400 and kind(answer) == "invalid-request", answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == "address" and error["message"]
    assert address not in answer.text and '"***@' not in answer.text
    assert messages_to(stack.emulator, address) == []


def test_D5_a_kelvin_sign_username_names_nobody_answers_like_nobody_and_looks_nobody_up(
        stack: Stack, people: dict[str, Member]) -> None:
    member = people["kelvin"]
    member.register_email()
    lookalike = KELVIN + member.upn[1:]
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    folded, nobody = Resetter(stack.api, ip=ip), Resetter(stack.api, ip=ip)
    folded.start(lookalike)
    nobody.start(f"nobody-{uuid.uuid4().hex[:8]}@contoso.example")
    codes_before = len(messages_to(stack.emulator, member.alternate_email))
    lookups = user_lookups(stack.emulator)
    proof = folded.prove("email", member.alternate_email)
    assert user_lookups(stack.emulator) == lookups  # not even the ASCII name was asked of Graph
    assert comparable(proof) == comparable(nobody.prove("email", member.alternate_email))
    assert proof.status_code == 202
    time.sleep(2)  # a code would be queued and mailed within this
    assert len(messages_to(stack.emulator, member.alternate_email)) == codes_before  # no code to the real user
    assert json.loads(flow_rows(stack, folded.flow_id)["flow"]["resolution"])["userId"] is None
