"""The compliance rules: capable = enabled x registered, the reasons when not, reconfirmation, tallies, pacing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from shared.domain.compliance import (
    SWEEP_SHARDS,
    EntraFacts,
    NotCapableReason,
    Reconfirmation,
    Run,
    RunState,
    Status,
    Tally,
    assess_user,
    entra_facts,
    shard_range,
    sweep_shard,
)
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.security_info import SecurityInfoSummary
from shared.services.compliance import ReportsPacer

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
USER = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
ENABLED = {"scope": "all"}
POLICY = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"})  # 1 method, reconfirm every 180 days


def summary(*methods: Method, confirmed_days_ago: int | None = 10, admin: bool = False) -> SecurityInfoSummary:
    confirmed = NOW - timedelta(days=confirmed_days_ago) if confirmed_days_ago is not None else None
    return SecurityInfoSummary(USER, frozenset(methods), confirmed, None, admin)


def test_an_enabled_user_with_one_allowed_method_is_capable_and_not_reminded() -> None:
    user = assess_user(USER, ENABLED, summary(Method.EMAIL), POLICY, NOW)
    assert (user.enabled, user.registered, user.capable, user.status) == (True, True, True, Status.CAPABLE)
    assert user.reasons == () and user.reconfirmation is Reconfirmation.CURRENT and not user.needs_reminder
    assert user.methods == (Method.EMAIL,) and user.required == 1


def test_a_user_who_never_registered_is_not_capable_for_want_of_methods_and_is_reminded() -> None:
    user = assess_user(USER, ENABLED, summary(confirmed_days_ago=None), POLICY, NOW)
    assert user.status is Status.NOT_REGISTERED and not user.capable
    assert user.reasons == (NotCapableReason.NO_METHODS,) and user.needs_reminder
    assert user.reconfirmation is Reconfirmation.NOT_REQUIRED


def test_an_admin_with_one_method_needs_two_and_questions_never_count_for_them() -> None:
    user = assess_user(USER, ENABLED, summary(Method.EMAIL, admin=True), POLICY, NOW)
    assert user.status is Status.NOT_REGISTERED and user.reasons == (NotCapableReason.ADMIN_NEEDS_TWO,)
    assert user.required == 2
    questions = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all", "methodsRequired": 2,
                                       "methodsAllowed": {**DEFAULT_DOCUMENT["methodsAllowed"],
                                                          "securityQuestions": True}})
    admin = assess_user(USER, ENABLED, summary(Method.EMAIL, Method.SECURITY_QUESTIONS, admin=True), questions, NOW)
    assert not admin.registered
    assert set(admin.reasons) == {NotCapableReason.METHODS_NOT_ALLOWED, NotCapableReason.TOO_FEW_METHODS}


def test_methods_the_policy_no_longer_allows_do_not_count() -> None:
    user = assess_user(USER, ENABLED, summary(Method.OFFICE_PHONE), POLICY, NOW)  # office phone is off
    assert not user.capable
    assert user.reasons == (NotCapableReason.METHODS_NOT_ALLOWED, NotCapableReason.TOO_FEW_METHODS)


def test_reconfirmation_is_due_two_weeks_ahead_and_overdue_from_its_date_which_earns_a_reminder() -> None:
    due = assess_user(USER, ENABLED, summary(Method.EMAIL, confirmed_days_ago=170), POLICY, NOW)
    assert due.reconfirmation is Reconfirmation.DUE and due.status is Status.CAPABLE and not due.needs_reminder
    overdue = assess_user(USER, ENABLED, summary(Method.EMAIL, confirmed_days_ago=180), POLICY, NOW)
    assert overdue.reconfirmation is Reconfirmation.OVERDUE and overdue.status is Status.RECONFIRM_OVERDUE
    assert overdue.capable and overdue.needs_reminder
    assert overdue.reconfirm_due_at == NOW
    never = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all", "reconfirmDays": 0})
    assert assess_user(USER, ENABLED, summary(Method.EMAIL, confirmed_days_ago=999), never, NOW).reconfirmation \
        is Reconfirmation.NOT_REQUIRED


def test_nobody_is_enabled_when_the_policy_scope_is_none_or_the_user_has_no_row() -> None:
    none = Policy.model_validate(DEFAULT_DOCUMENT)
    user = assess_user(USER, ENABLED, summary(Method.EMAIL), none, NOW)
    assert user.status is Status.NOT_ENABLED and user.reasons == (NotCapableReason.NOT_ENABLED,)
    assert user.registered and not user.capable and not user.needs_reminder
    assert assess_user(USER, None, summary(Method.EMAIL), POLICY, NOW).status is Status.NOT_ENABLED


def test_entra_facts_are_compared_with_our_judgement() -> None:
    facts = entra_facts({"id": USER, "isSsprRegistered": True, "isSsprEnabled": True, "isSsprCapable": True,
                         "methodsRegistered": ["email", 7]})
    assert facts == EntraFacts(True, True, True, ("email",))
    agrees = assess_user(USER, ENABLED, summary(Method.EMAIL), POLICY, NOW, facts)
    differs = assess_user(USER, ENABLED, summary(), POLICY, NOW, facts)
    assert agrees.entra_agrees is True and differs.entra_agrees is False
    assert assess_user(USER, ENABLED, summary(), POLICY, NOW).entra_agrees is None


def test_shard_tallies_add_up_to_the_run_and_reasons_rank_by_count() -> None:
    users = [assess_user(USER, ENABLED, summary(Method.EMAIL), POLICY, NOW),
             assess_user(USER, ENABLED, summary(confirmed_days_ago=None), POLICY, NOW),
             assess_user(USER, ENABLED, summary(Method.OFFICE_PHONE), POLICY, NOW)]
    one = Tally().add_users(users[:2]).with_reminders(1)
    two = Tally().add_users(users[2:])
    total = one.plus(two)
    assert total == Tally().add_users(users).with_reminders(1)
    assert total.users == 3 and total.capable == 1 and total.reminders == 1
    assert total.by_status == {"capable": 1, "notRegistered": 2}
    assert total.by_method == {"email": 1, "officePhone": 1}
    assert total.top_reasons(2) == [("methodsNotAllowed", 1), ("noMethodsRegistered", 1)]
    assert Tally.from_dict(total.as_dict()) == total


def test_a_run_completes_with_its_sixteenth_shard_and_never_before() -> None:
    run = Run("r", "manual", "admin", NOW, NOW)
    for _ in range(15):
        run = run.after_shard(Tally(users=1), 1, NOW)
        assert run.state is RunState.RUNNING
    run = run.after_shard(Tally(users=1), 1, NOW)
    assert run.state is RunState.COMPLETED and run.tally.users == 16 and run.transactions == 16
    assert not run.blocks_new_run(NOW)


async def test_the_reports_pacer_lets_five_requests_through_and_holds_the_sixth_until_the_window_moves() -> None:
    pacer = ReportsPacer(quota=5, window=0.3)
    started = time.monotonic()
    for _ in range(5):
        await pacer.wait()
    assert time.monotonic() - started < 0.2  # the quota's first five go at once
    await asyncio.gather(pacer.wait(), pacer.wait())
    assert time.monotonic() - started >= 0.3  # the sixth waited for the first to leave the 0.3 s window


def test_every_user_id_falls_in_exactly_one_sweep_shard_whose_range_holds_it() -> None:
    ids = ["0", "00000000-0000-0000-0000-000000000000", "0fff", "1", "9abc", "a", "afff", "f", "ffffffff-ffff",
           "", "G-not-a-guid", "~", "C0FFEE00".lower(), "9" + "~"]
    for uid in ids:
        index = sweep_shard(uid)
        lo, hi = shard_range(index)
        assert (lo is None or uid >= lo) and (hi is None or uid < hi), (uid, index, lo, hi)
    assert [sweep_shard(f"{i:x}0000000-0000-4000-8000-000000000000") for i in range(16)] == list(range(SWEEP_SHARDS))
    assert shard_range(0) == (None, "1") and shard_range(15) == ("f", None)
