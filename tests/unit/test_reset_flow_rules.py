"""The pure rules of the reset flow (shared/domain/reset_flow.py), each named for the security.md line it proves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import reset_flow
from shared.domain.onprem import Coverage
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.reset_flow import FlowState, Refusal, ResetFlow, Resolution

KEY = b"unit-test code key, not a secret"
STARTED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ALL_METHODS = {"email": True, "mobilePhone": True, "officePhone": True, "authenticatorApp": True,
               "appNotification": False, "securityQuestions": True}


def policy(**changes: object) -> Policy:
    return Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all", **changes})


def flow(**changes: Any) -> ResetFlow:
    base = ResetFlow(flow_id="0b7c0f4e-1d0e-4c55-9a53-3f1f2f9c1a01", secret_digest="", username="casey@contoso.example",
                     created_at=STARTED)
    return replace(base, **changes)


def user(**changes: Any) -> Resolution:
    base = Resolution(user_id="c0ffee00-5e1f-4ea5-b0a7-000000001003", registered=frozenset({Method.EMAIL}),
                      methods_required=1, methods_allowed=frozenset({Method.EMAIL, Method.MOBILE_PHONE}))
    return replace(base, **changes)


# ---- A5: the flow's own lifetime --------------------------------------------------------------------------------

def test_A5_a_flow_is_open_until_15_minutes_after_its_start_and_refused_from_then_on() -> None:
    started = flow()
    assert reset_flow.is_open(started, STARTED + timedelta(minutes=14, seconds=59))
    assert reset_flow.is_expired(started, STARTED + timedelta(minutes=15))
    assert not reset_flow.is_open(started, STARTED + timedelta(minutes=15))


def test_A5_a_flow_with_every_method_verified_still_expires() -> None:
    ready = flow(resolution=user(), verified=(Method.EMAIL,))
    assert reset_flow.ready_for_password(ready)
    assert not reset_flow.is_open(ready, STARTED + timedelta(minutes=16))


def test_locked_and_completed_flows_are_not_open_whatever_the_time() -> None:
    assert not reset_flow.is_open(flow(state=FlowState.LOCKED), STARTED)
    assert not reset_flow.is_open(reset_flow.completed(flow(), STARTED), STARTED)


# ---- A9: five wrong answers lock the flow -----------------------------------------------------------------------

def test_A9_the_fifth_wrong_app_code_locks_the_flow_and_not_the_fourth() -> None:
    current = flow(resolution=user())
    for _ in range(4):
        current = reset_flow.record_failure(current, Method.AUTHENTICATOR_APP)
    assert current.state is FlowState.ACTIVE and current.failures_of(Method.AUTHENTICATOR_APP) == 4
    current = reset_flow.record_failure(current, Method.AUTHENTICATOR_APP)
    assert current.state is FlowState.LOCKED


def test_A9_wrong_answers_are_counted_per_method() -> None:
    current = flow(resolution=user())
    for _ in range(4):
        current = reset_flow.record_failure(current, Method.AUTHENTICATOR_APP)
    current = reset_flow.record_failure(current, Method.SECURITY_QUESTIONS)
    assert current.state is FlowState.ACTIVE
    assert (current.failures_of(Method.AUTHENTICATOR_APP), current.failures_of(Method.SECURITY_QUESTIONS)) == (4, 1)


def test_A9_a_locked_flow_stays_locked_even_when_a_method_is_recorded_verified() -> None:
    locked = reset_flow.lock(flow(resolution=user()))
    assert reset_flow.lock(locked) is locked
    assert reset_flow.record_verified(locked, Method.EMAIL).state is FlowState.LOCKED


# ---- A11, A12: which methods, how many ---------------------------------------------------------------------------

def test_A11_security_questions_are_never_the_first_method() -> None:
    fresh = flow(resolution=user(methods_allowed=frozenset({Method.EMAIL, Method.SECURITY_QUESTIONS})))
    assert not reset_flow.may_prove(fresh, Method.SECURITY_QUESTIONS)
    assert reset_flow.may_prove(replace(fresh, verified=(Method.EMAIL,)), Method.SECURITY_QUESTIONS)


def test_A11_security_questions_are_never_for_administrators() -> None:
    admin = flow(resolution=user(is_admin=True, methods_allowed=frozenset({Method.EMAIL, Method.SECURITY_QUESTIONS})),
                 verified=(Method.EMAIL,))
    assert not reset_flow.may_prove(admin, Method.SECURITY_QUESTIONS)


def test_A11_security_questions_only_when_the_policy_allows_them() -> None:
    not_allowed = flow(resolution=user(methods_allowed=frozenset({Method.EMAIL})), verified=(Method.EMAIL,))
    assert not reset_flow.may_prove(not_allowed, Method.SECURITY_QUESTIONS)


def test_A11_questions_are_offered_only_to_a_user_who_registered_them() -> None:
    allowed = frozenset({Method.EMAIL, Method.SECURITY_QUESTIONS})
    without = flow(resolution=user(methods_allowed=allowed), verified=(Method.EMAIL,))
    with_them = flow(resolution=user(methods_allowed=allowed,
                                     registered=frozenset({Method.EMAIL, Method.SECURITY_QUESTIONS})),
                     verified=(Method.EMAIL,))
    assert not reset_flow.questions_possible(without)
    assert reset_flow.questions_possible(with_them)


def test_A12_administrators_need_two_methods_and_no_questions_whatever_the_policy_says() -> None:
    lenient = policy(methodsRequired=1)
    assert reset_flow.requirements_for(lenient, is_admin=True) == (2, lenient.methods_allowed.methods())
    assert reset_flow.requirements_for(lenient, is_admin=False) == (1, lenient.methods_allowed.methods())
    with_questions = policy(methodsRequired=2, methodsAllowed=ALL_METHODS)
    required, allowed = reset_flow.requirements_for(with_questions, is_admin=True)
    assert required == 2 and Method.SECURITY_QUESTIONS not in allowed
    assert Method.SECURITY_QUESTIONS in reset_flow.requirements_for(with_questions, is_admin=False)[1]


def test_a_method_is_proven_once_per_flow() -> None:
    verified = flow(resolution=user(), verified=(Method.EMAIL,))
    assert not reset_flow.may_prove(verified, Method.EMAIL)
    assert reset_flow.record_verified(verified, Method.EMAIL) == verified


# ---- A13: the server decides the step order ----------------------------------------------------------------------

def test_A13_the_password_step_waits_for_every_required_method() -> None:
    two = user(methods_required=2, registered=frozenset({Method.EMAIL, Method.MOBILE_PHONE}))
    assert not reset_flow.ready_for_password(flow(resolution=two))
    assert not reset_flow.ready_for_password(flow(resolution=two, verified=(Method.EMAIL,)))
    assert reset_flow.ready_for_password(flow(resolution=two, verified=(Method.EMAIL, Method.MOBILE_PHONE)))


def test_A13_an_unresolved_unknown_or_refused_user_never_reaches_the_password_step() -> None:
    assert not reset_flow.ready_for_password(flow(verified=(Method.EMAIL,)))
    assert not reset_flow.ready_for_password(flow(resolution=Resolution(user_id=None), verified=(Method.EMAIL,)))
    refused = user(refusal=Refusal.NOT_REGISTERED_ENOUGH)
    assert not reset_flow.ready_for_password(flow(resolution=refused, verified=(Method.EMAIL,)))


def test_the_next_methods_are_the_offered_possession_methods_not_yet_verified() -> None:
    offered = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.SECURITY_QUESTIONS})
    assert reset_flow.remaining_methods(flow(verified=(Method.EMAIL,)), offered) == [Method.MOBILE_PHONE]


# ---- C1, C2: what start answers -----------------------------------------------------------------------------------

def test_C2_start_offers_the_policys_possession_methods_never_questions_nor_undeliverable_ones() -> None:
    offered = reset_flow.start_methods(policy(methodsAllowed=ALL_METHODS, methodsRequired=2),
                                       frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.AUTHENTICATOR_APP}))
    assert offered == [Method.AUTHENTICATOR_APP, Method.EMAIL, Method.MOBILE_PHONE]


def test_C1_start_methods_depend_on_nothing_but_the_policy() -> None:
    sendable = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.AUTHENTICATOR_APP})
    assert reset_flow.start_methods(policy(), sendable) == reset_flow.start_methods(policy(), sendable)
    assert reset_flow.start_methods(policy(), sendable) == [Method.AUTHENTICATOR_APP, Method.EMAIL,
                                                            Method.MOBILE_PHONE]


def test_C1_the_first_resolution_wins_so_every_step_judges_the_same_facts() -> None:
    first = reset_flow.resolved(flow(), user())
    assert reset_flow.resolved(first, Resolution(user_id=None)).resolution == user()


def test_usernames_compare_without_case_or_surrounding_spaces() -> None:
    assert reset_flow.normalise_username("  Casey@Contoso.Example ") == "casey@contoso.example"


# ---- the flow secret (stored like a code: A2, A3) -----------------------------------------------------------------

def test_A1_the_flow_secret_comes_from_the_csprng_with_256_bits() -> None:
    secrets_seen = {reset_flow.new_flow_secret() for _ in range(100)}
    assert len(secrets_seen) == 100 and all(len(s) == 43 for s in secrets_seen)


def test_A2_A7_the_flow_secret_is_kept_only_as_an_hmac_bound_to_its_flow() -> None:
    secret = reset_flow.new_flow_secret()
    mine = flow(secret_digest=reset_flow.secret_digest(KEY, flow().flow_id, secret))
    other = flow(flow_id="5f0e6a1c-9b3d-4f57-8a61-0c2d4e6f8a90",
                 secret_digest=reset_flow.secret_digest(KEY, "5f0e6a1c-9b3d-4f57-8a61-0c2d4e6f8a90", secret))
    assert secret not in mine.secret_digest
    assert reset_flow.secret_matches(mine, KEY, secret)
    assert not reset_flow.secret_matches(mine, KEY, reset_flow.new_flow_secret())
    assert mine.secret_digest != other.secret_digest  # the same secret opens only its own flow
    assert not reset_flow.secret_matches(mine, b"another key", secret)


# ---- who cannot reset here, in the order a helpdesk explains it ------------------------------------------------

FIT = {"enabled": True, "account_enabled": True, "synced": None, "has_premium": False, "paid_tenant": True,
       "usable_methods": 1, "methods_required": 1}


@pytest.mark.parametrize(("changes", "refusal"), [
    ({}, None),
    ({"account_enabled": False, "enabled": False, "usable_methods": 0}, Refusal.ACCOUNT_DISABLED),
    ({"synced": Coverage.WRITEBACK_OFF}, Refusal.SYNCED_NEEDS_PREMIUM),
    ({"synced": Coverage.WRITEBACK_OFF, "has_premium": True}, Refusal.SYNCED_NOT_SUPPORTED),
    ({"synced": Coverage.SERVED}, None),
    ({"synced": Coverage.NO_LIVE_AGENT, "enabled": False}, Refusal.ONPREM_UNAVAILABLE),
    ({"synced": Coverage.OUTSIDE_AGENT_OUS}, Refusal.ONPREM_NOT_SERVED),
    ({"synced": Coverage.NO_SID}, Refusal.ONPREM_NOT_SERVED),
    ({"synced": Coverage.NO_LIVE_AGENT, "account_enabled": False}, Refusal.ACCOUNT_DISABLED),
    ({"paid_tenant": False, "enabled": False}, Refusal.TRIAL_TENANT),
    ({"enabled": False, "usable_methods": 0}, Refusal.NOT_ENABLED),
    ({"usable_methods": 1, "methods_required": 2}, Refusal.NOT_REGISTERED_ENOUGH),
])
def test_who_cannot_reset_here_is_named_by_the_first_reason_a_helpdesk_would_give(
        changes: dict[str, object], refusal: Refusal | None) -> None:
    assert reset_flow.refusal_for(**{**FIT, **changes}) == refusal  # type: ignore[arg-type]


# ---- questions chosen once per flow ------------------------------------------------------------------------------

def test_the_questions_asked_are_a_random_subset_of_distinct_registered_questions() -> None:
    registered = [f"q-{n}" for n in range(5)]
    draws = {reset_flow.choose_questions(registered, 3) for _ in range(200)}
    assert all(len(set(d)) == 3 and set(d) <= set(registered) for d in draws)
    assert len(draws) > 1  # random: not always the same three
    assert reset_flow.choose_questions(["q-1"], 3) == ("q-1",)


def test_G5_a_replaced_codes_digest_is_kept_per_method_and_the_newest_wins() -> None:
    f = reset_flow.record_replaced(flow(), Method.EMAIL, "first")
    f = reset_flow.record_replaced(f, Method.MOBILE_PHONE, "sms")
    f = reset_flow.record_replaced(f, Method.EMAIL, "second")
    assert reset_flow.replaced_digest(f, Method.EMAIL) == "second"
    assert reset_flow.replaced_digest(f, Method.MOBILE_PHONE) == "sms"
    assert reset_flow.replaced_digest(f, Method.OFFICE_PHONE) is None
