"""The sign-in hook's decision, its claims and response shape, the reminder rule and the sign-in record filter."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.security_info import SecurityInfoSummary
from shared.domain.signin import (
    MAX_RESPONSE_BYTES,
    Reason,
    SignInEventMessage,
    SignInRecord,
    prompt_claims,
    registration_prompt,
    reminder_due,
    reminder_message_id,
    signed_in_users,
    token_issuance_start_response,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
USER = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
URL = "https://sspr.contoso.example/register"


def policy(**changes: object) -> Policy:
    return Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all", **changes})


def summary(*methods: Method, confirmed: datetime | None = None, prompted: datetime | None = None,
            admin: bool = False) -> SecurityInfoSummary:
    return SecurityInfoSummary(USER, frozenset(methods), last_confirmed_at=confirmed if methods or confirmed else None,
                               first_prompted_at=prompted, is_admin=admin)


REGISTERED = summary(Method.EMAIL, confirmed=NOW - timedelta(days=10))
UNREGISTERED = summary()


# ---- who is asked ---------------------------------------------------------------------------------------------

def test_an_enabled_unregistered_user_must_register_and_the_first_prompt_is_recorded() -> None:
    prompt = registration_prompt(UNREGISTERED, True, policy(), NOW)
    assert prompt.required and prompt.reason is Reason.NOT_REGISTERED and prompt.record_first_prompt


def test_a_registered_user_is_not_asked() -> None:
    prompt = registration_prompt(REGISTERED, True, policy(), NOW)
    assert not prompt.prompted and prompt.reason is Reason.REGISTERED and not prompt.record_first_prompt


def test_a_user_without_an_enablement_row_is_never_asked() -> None:
    prompt = registration_prompt(UNREGISTERED, False, policy(), NOW)
    assert not prompt.prompted and prompt.reason is Reason.NOT_ENABLED and not prompt.record_first_prompt


def test_scope_none_asks_nobody_even_when_stale_enablement_rows_remain() -> None:
    prompt = registration_prompt(UNREGISTERED, True, policy(scope="none"), NOW)
    assert not prompt.prompted and prompt.reason is Reason.NOT_ENABLED


def test_a_policy_that_does_not_require_registration_at_sign_in_asks_nobody() -> None:
    prompt = registration_prompt(UNREGISTERED, True, policy(requireRegistrationAtSignIn=False), NOW)
    assert not prompt.prompted and prompt.reason is Reason.NOT_REQUIRED_AT_SIGN_IN and not prompt.record_first_prompt


def test_a_user_below_the_required_count_is_not_registered() -> None:
    one = summary(Method.EMAIL, confirmed=NOW - timedelta(days=1), prompted=NOW - timedelta(days=30))
    prompt = registration_prompt(one, True, policy(methodsRequired=2), NOW)
    assert prompt.required and prompt.reason is Reason.NOT_REGISTERED


def test_an_admin_with_one_method_must_register_a_second() -> None:
    admin = summary(Method.EMAIL, confirmed=NOW - timedelta(days=1), admin=True)
    assert registration_prompt(admin, True, policy(), NOW).required
    both = summary(Method.EMAIL, Method.MOBILE_PHONE, confirmed=NOW - timedelta(days=1), admin=True)
    assert not registration_prompt(both, True, policy(), NOW).prompted


def test_security_questions_never_count_for_an_admin() -> None:
    questions_on = {**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True}
    p = policy(methodsAllowed=questions_on, methodsRequired=2)
    user = summary(Method.EMAIL, Method.SECURITY_QUESTIONS, confirmed=NOW - timedelta(days=1))
    assert not registration_prompt(user, True, p, NOW).prompted
    admin = summary(Method.EMAIL, Method.SECURITY_QUESTIONS, confirmed=NOW - timedelta(days=1), admin=True)
    assert registration_prompt(admin, True, p, NOW).required


def test_a_method_the_policy_no_longer_allows_does_not_count() -> None:
    no_email = {**DEFAULT_DOCUMENT["methodsAllowed"], "email": False}
    assert registration_prompt(REGISTERED, True, policy(methodsAllowed=no_email), NOW).required


# ---- reconfirmation -------------------------------------------------------------------------------------------

def test_reconfirmation_is_due_exactly_reconfirm_days_after_the_last_confirmation() -> None:
    p = policy(reconfirmDays=180)
    just_before = summary(Method.EMAIL, confirmed=NOW - timedelta(days=180) + timedelta(seconds=1))
    assert not registration_prompt(just_before, True, p, NOW).prompted
    on_the_day = summary(Method.EMAIL, confirmed=NOW - timedelta(days=180))
    prompt = registration_prompt(on_the_day, True, p, NOW)
    assert prompt.required and prompt.reason is Reason.RECONFIRM_DUE


def test_reconfirm_days_zero_never_asks_to_reconfirm() -> None:
    ancient = summary(Method.EMAIL, confirmed=NOW - timedelta(days=3000))
    assert not registration_prompt(ancient, True, policy(reconfirmDays=0), NOW).prompted


def test_an_old_first_prompt_does_not_use_up_the_skip_allowance_of_a_later_reconfirmation() -> None:
    # Prompted before registering 200 days ago; reconfirmation fell due 20 days ago: a new episode, new allowance.
    user = summary(Method.EMAIL, confirmed=NOW - timedelta(days=200), prompted=NOW - timedelta(days=201))
    prompt = registration_prompt(user, True, policy(reconfirmDays=180, daysUserMaySkip=3), NOW)
    assert not prompt.required and prompt.skip_until == NOW + timedelta(days=3) and prompt.record_first_prompt


def test_a_reconfirmation_prompted_after_it_fell_due_keeps_its_allowance_start() -> None:
    user = summary(Method.EMAIL, confirmed=NOW - timedelta(days=200), prompted=NOW - timedelta(days=4))
    prompt = registration_prompt(user, True, policy(reconfirmDays=180, daysUserMaySkip=3), NOW)
    assert prompt.required and not prompt.record_first_prompt


# ---- skip allowance -------------------------------------------------------------------------------------------

def test_days_user_may_skip_zero_requires_registration_at_the_first_prompt() -> None:
    prompt = registration_prompt(UNREGISTERED, True, policy(daysUserMaySkip=0), NOW)
    assert prompt.required and prompt.skip_until is None


def test_the_first_prompt_starts_the_skip_allowance() -> None:
    prompt = registration_prompt(UNREGISTERED, True, policy(daysUserMaySkip=7), NOW)
    assert not prompt.required and prompt.skip_until == NOW + timedelta(days=7) and prompt.record_first_prompt


@pytest.mark.parametrize(("days_ago", "required"), [
    (timedelta(days=7) - timedelta(seconds=1), False),  # last second of the allowance
    (timedelta(days=7), True),  # the allowance ends exactly daysUserMaySkip days after the first prompt
    (timedelta(days=30), True),
])
def test_the_skip_allowance_is_counted_from_the_first_prompt(days_ago: timedelta, required: bool) -> None:
    user = summary(prompted=NOW - days_ago)
    prompt = registration_prompt(user, True, policy(daysUserMaySkip=7), NOW)
    assert prompt.required is required and not prompt.record_first_prompt
    if not required:
        assert prompt.skip_until == NOW - days_ago + timedelta(days=7)


def test_a_user_who_dropped_below_the_count_after_confirming_gets_a_new_allowance() -> None:
    # Prompted long ago, then registered (confirmed 10 days ago), then removed methods: a new episode.
    user = summary(confirmed=NOW - timedelta(days=10), prompted=NOW - timedelta(days=100))
    prompt = registration_prompt(user, True, policy(daysUserMaySkip=2), NOW)
    assert prompt.skip_until == NOW + timedelta(days=2) and prompt.record_first_prompt


# ---- claims and the response ------------------------------------------------------------------------------------

def test_required_claims_name_the_registration_url_and_say_it_cannot_be_skipped() -> None:
    claims = prompt_claims(registration_prompt(UNREGISTERED, True, policy(), NOW), URL)
    assert claims == {"ssprRegistrationRequired": "true", "ssprRegistrationSkippable": "false",
                      "ssprRegistrationUrl": URL}


def test_skippable_claims_say_until_when_in_utc() -> None:
    claims = prompt_claims(registration_prompt(UNREGISTERED, True, policy(daysUserMaySkip=7), NOW), URL)
    assert claims == {"ssprRegistrationRequired": "false", "ssprRegistrationSkippable": "true",
                      "ssprRegistrationUrl": URL, "ssprRegistrationSkipUntil": "2026-12-02T12:00:00Z"}


def test_not_required_claims_are_one_false() -> None:
    assert prompt_claims(registration_prompt(REGISTERED, True, policy(), NOW), URL) == {
        "ssprRegistrationRequired": "false"}


def test_the_response_is_entras_one_provide_claims_action_and_fits_3_kb() -> None:
    claims = prompt_claims(registration_prompt(UNREGISTERED, True, policy(daysUserMaySkip=1), NOW), URL)
    body = token_issuance_start_response(claims)
    assert body == {"data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData", "actions": [
        {"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": claims}]}}
    assert all(isinstance(v, str) for v in claims.values())
    assert len(json.dumps(body).encode()) <= MAX_RESPONSE_BYTES


# ---- reminders ----------------------------------------------------------------------------------------------

PERIOD = timedelta(days=7)


def test_an_enabled_unregistered_user_never_reminded_gets_a_reminder() -> None:
    assert reminder_due(UNREGISTERED, True, policy(), None, PERIOD, NOW)


def test_no_reminder_for_registered_or_not_enabled_users() -> None:
    assert not reminder_due(REGISTERED, True, policy(), None, PERIOD, NOW)
    assert not reminder_due(UNREGISTERED, False, policy(), None, PERIOD, NOW)
    assert not reminder_due(UNREGISTERED, True, policy(scope="none"), None, PERIOD, NOW)


def test_a_user_whose_reconfirmation_is_overdue_gets_a_reminder() -> None:
    overdue = summary(Method.EMAIL, confirmed=NOW - timedelta(days=181))
    assert reminder_due(overdue, True, policy(reconfirmDays=180), None, PERIOD, NOW)


def test_at_most_one_reminder_per_period() -> None:
    assert not reminder_due(UNREGISTERED, True, policy(), NOW - PERIOD + timedelta(seconds=1), PERIOD, NOW)
    assert reminder_due(UNREGISTERED, True, policy(), NOW - PERIOD, PERIOD, NOW)


# ---- streamed sign-ins --------------------------------------------------------------------------------------

def test_only_successful_interactive_sign_ins_with_a_guid_user_count_once_each() -> None:
    other = "0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8"
    records = [
        SignInRecord("SignInLogs", "0", USER.upper()),
        SignInRecord("SignInLogs", "0", USER),  # duplicate (case differs)
        SignInRecord("SignInLogs", "50126", other),  # wrong password
        SignInRecord("NonInteractiveUserSignInLogs", "0", other),
        SignInRecord("SignInLogs", "0", "PartitionKey eq 'x'"),  # not a GUID: never a key
        SignInRecord(None, "0", other),
        SignInRecord("SignInLogs", "0", None),
        SignInRecord("SignInLogs", "0", other),
    ]
    assert signed_in_users(records) == [USER, other]


def test_a_signin_event_message_carries_one_guid_and_nothing_else() -> None:
    assert SignInEventMessage.model_validate({"userId": USER}).userId == USER
    for bad in ({"userId": "not-a-guid"}, {"userId": USER, "upn": "casey@contoso.com"}, {}, {"userId": 5}):
        with pytest.raises(ValueError):
            SignInEventMessage.model_validate(bad)


# ---- reminder ids -------------------------------------------------------------------------------------------------

def test_every_worker_derives_the_same_reminder_id_for_a_period_and_a_new_one_for_the_next() -> None:
    first = reminder_message_id(USER, None)
    assert reminder_message_id(USER.upper(), None) == first  # a redelivery, another worker, another case
    assert str(uuid.UUID(first)) == first  # the notifications worker only takes GUID ids
    second = reminder_message_id(USER, first)
    assert second != first and reminder_message_id(USER, first) == second
    assert reminder_message_id("0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", None) != first
