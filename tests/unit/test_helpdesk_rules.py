"""The helpdesk's rules (shared/domain/helpdesk.py, helpdesk_links.py, throttling.py HELPDESK_LIMITS), no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain import helpdesk, helpdesk_links, throttling
from shared.domain.helpdesk import (
    ApprovalRequest,
    HelpdeskAction,
    Verification,
    VerificationState,
)
from shared.domain.helpdesk_links import LinkPurpose, LinkVerdict, ResetLink
from shared.domain.helpdesk_policy import PrivilegedCallers
from shared.domain.policy import Method

NOW = datetime(2026, 3, 2, 10, 32, tzinfo=UTC)
KEY = b"k" * 32
VID = "6d1f4a52-0e57-4b8e-9d4e-2f3a4b5c6d7e"
AGENT = "0a1b2c3d-0000-4000-8000-00000000000a"
USER = "0a1b2c3d-0000-4000-8000-00000000000b"


def verification(privileged: bool = False, **changes: object) -> Verification:
    caller = helpdesk.Caller(user_id=USER, user_principal_name="casey@contoso.example", display_name="Casey", privileged=privileged)
    return replace(Verification(verification_id=VID, agent_id=AGENT, agent_name="Hal", caller=caller, created_at=NOW),
                   **changes)


def test_a_verification_lives_thirty_minutes_and_belongs_to_its_agent_only() -> None:
    v = verification()
    assert not helpdesk.is_expired(v, NOW + timedelta(minutes=29, seconds=59))
    assert helpdesk.is_expired(v, NOW + timedelta(minutes=30))
    assert helpdesk.belongs_to(v, AGENT.upper()) and not helpdesk.belongs_to(v, USER)
    assert helpdesk.agent_is_caller(AGENT, AGENT.upper()) and not helpdesk.agent_is_caller(AGENT, USER)


def test_five_wrong_app_codes_lock_and_a_locked_verification_never_verifies() -> None:
    v = verification()
    for _ in range(4):
        v = helpdesk.record_failure(v, Method.AUTHENTICATOR_APP)
    assert v.state is VerificationState.STARTED
    v = helpdesk.record_failure(v, Method.AUTHENTICATOR_APP)
    assert v.state is VerificationState.LOCKED
    assert helpdesk.record_verified(v, Method.EMAIL, NOW).state is VerificationState.LOCKED
    assert not helpdesk.may_act(v, NOW)


def test_only_a_verified_live_verification_may_act() -> None:
    v = helpdesk.record_verified(verification(), Method.EMAIL, NOW)
    assert v.method is Method.EMAIL and helpdesk.may_act(v, NOW + timedelta(minutes=10))
    assert not helpdesk.may_act(v, NOW + timedelta(minutes=30))
    assert not helpdesk.may_act(verification(), NOW)


def test_a_block_is_cleared_once_and_links_at_most_three_times_per_verification() -> None:
    v = verification()
    v = helpdesk.record_done(v, HelpdeskAction.CLEAR_BLOCK)
    assert not helpdesk.may_repeat(v, HelpdeskAction.CLEAR_BLOCK)
    for _ in range(helpdesk.MAX_RESET_LINKS):
        assert helpdesk.may_repeat(v, HelpdeskAction.RESET_LINK)
        v = helpdesk.record_done(v, HelpdeskAction.RESET_LINK)
    assert not helpdesk.may_repeat(v, HelpdeskAction.RESET_LINK)


def test_privileged_callers_wait_for_four_eyes_or_are_refused_by_policy() -> None:
    assert helpdesk.is_privileged(["User Administrator"], False) and helpdesk.is_privileged([], True)
    assert not helpdesk.is_privileged([], False)
    privileged, ordinary = verification(privileged=True), verification()
    assert helpdesk.needs_four_eyes(privileged, PrivilegedCallers.FOUR_EYES)
    assert not helpdesk.needs_four_eyes(ordinary, PrivilegedCallers.FOUR_EYES)
    assert helpdesk.refused_as_privileged(privileged, PrivilegedCallers.REFUSE)
    assert not helpdesk.refused_as_privileged(ordinary, PrivilegedCallers.REFUSE)


def test_neither_the_agent_who_asked_nor_the_caller_approves_and_a_request_is_decided_once() -> None:
    request = ApprovalRequest(request_id="r", verification_id=VID, action=HelpdeskAction.RESET_LINK, user_id=USER,
                              user_principal_name="casey@contoso.example", requested_by=AGENT, requested_by_name="Hal",
                              requested_at=NOW, expires_at=NOW + timedelta(minutes=30))
    second = "0a1b2c3d-0000-4000-8000-00000000000c"
    assert not helpdesk.may_decide(request, AGENT) and not helpdesk.may_decide(request, USER.upper())
    assert helpdesk.may_decide(request, second)
    approved = helpdesk.decided(request, True, second, "Greta", NOW)
    assert approved.state is helpdesk.ApprovalState.APPROVED and approved.decided_by == second
    assert helpdesk.decided(approved, False, second, "Greta", NOW) == approved
    assert not helpdesk.is_open(approved, NOW) and not helpdesk.is_open(request, NOW + timedelta(minutes=30))


# ---- one-time links ------------------------------------------------------------------------------------------


def link(**changes: object) -> ResetLink:
    return replace(ResetLink(verification_id=VID, user_id=USER, purpose=LinkPurpose.RESET, contact="c@alt.example",
                             agent_name="Hal", created_at=NOW, message_id="m1"), **changes)


def test_a_link_opens_once_within_its_lifetime_and_only_with_its_own_secret() -> None:
    secret = helpdesk_links.new_secret()
    sent = helpdesk_links.issued(link(), helpdesk_links.link_digest(KEY, VID, secret), NOW)
    verdict, used = helpdesk_links.opened(sent, KEY, secret, NOW + timedelta(minutes=29))
    assert verdict is LinkVerdict.OPENED and used.used_at is not None and used.secret_digest is None
    assert helpdesk_links.opened(used, KEY, secret, NOW)[0] is LinkVerdict.REFUSED, "single use"
    assert helpdesk_links.opened(sent, KEY, secret, NOW + timedelta(minutes=30))[0] is LinkVerdict.REFUSED, "expired"
    assert helpdesk_links.opened(sent, KEY, helpdesk_links.new_secret(), NOW)[0] is LinkVerdict.REFUSED
    other = helpdesk_links.issued(link(verification_id=USER), helpdesk_links.link_digest(KEY, VID, secret), NOW)
    assert helpdesk_links.opened(other, KEY, secret, NOW)[0] is LinkVerdict.REFUSED, "bound to its verification"
    assert helpdesk_links.opened(link(), KEY, secret, NOW)[0] is LinkVerdict.REFUSED, "never sent"


def test_only_the_links_own_message_makes_its_secret_and_a_failed_send_leaves_nothing_that_opens() -> None:
    assert helpdesk_links.should_issue(link(), "m1") and not helpdesk_links.should_issue(link(), "m0")
    assert not helpdesk_links.should_issue(link(used_at=NOW), "m1")
    secret = helpdesk_links.new_secret()
    failed = helpdesk_links.send_failed(helpdesk_links.issued(link(), helpdesk_links.link_digest(KEY, VID, secret), NOW))
    assert helpdesk_links.opened(failed, KEY, secret, NOW)[0] is LinkVerdict.REFUSED


def test_a_link_token_is_a_verification_id_and_a_long_secret_and_nothing_else() -> None:
    secret = helpdesk_links.new_secret()
    assert helpdesk_links.parse_token(helpdesk_links.token(VID.upper(), secret)) == (VID, secret)
    for bad in ("", VID, f"{VID}.short", f"not-a-guid.{secret}", f"{VID}.{secret}/x", f"{VID}.{secret}\n"):
        assert helpdesk_links.parse_token(bad) is None, bad


# ---- HELPDESK_LIMITS ------------------------------------------------------------------------------------------


def test_the_eleventh_code_in_ten_minutes_pauses_the_caller_for_a_day_and_an_agent_for_an_hour() -> None:
    caller = throttling.UserThrottle(throttling.helpdesk_caller_key(USER))
    for n in range(10):
        caller = throttling.record_helpdesk_send(caller, NOW + timedelta(seconds=n), throttling.HELPDESK_CALLER)
    assert not throttling.is_blocked(caller, NOW + timedelta(seconds=10))
    caller = throttling.record_helpdesk_send(caller, NOW + timedelta(seconds=10), throttling.HELPDESK_CALLER)
    assert caller.blocked_until == NOW + timedelta(seconds=10, hours=24)
    agent = throttling.UserThrottle(throttling.helpdesk_agent_key(AGENT))
    for n in range(21):
        agent = throttling.record_helpdesk_send(agent, NOW + timedelta(seconds=n), throttling.HELPDESK_AGENT)
    assert agent.blocked_until == NOW + timedelta(seconds=20, hours=1)


def test_the_sixth_wrong_code_in_an_hour_pauses_the_caller_and_the_eleventh_the_agent() -> None:
    caller = throttling.UserThrottle("c")
    agent = throttling.UserThrottle("a")
    for n in range(6):
        caller = throttling.record_helpdesk_failure(caller, NOW + timedelta(minutes=n), throttling.HELPDESK_CALLER)
    assert throttling.is_blocked(caller, NOW + timedelta(minutes=6))
    for n in range(11):
        agent = throttling.record_helpdesk_failure(agent, NOW + timedelta(minutes=n), throttling.HELPDESK_AGENT)
        assert throttling.is_blocked(agent, NOW + timedelta(minutes=n)) is (n == 10)
