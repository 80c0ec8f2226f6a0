"""The change page's rules (shared/domain/password_change.py): what a verdict tells the person, how many wrong tries a
typed name may give before AD's own lockout would lock the account, and the change request's settling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import onprem, password_change
from shared.domain.onprem import LockoutPolicy
from shared.domain.onprem_jobs import Heartbeat, Verdict
from shared.domain.password_change import ChangeRequest, ChangeState, name_limit, state_of
from shared.domain.throttling import UserThrottle, paused_until, record_event

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("verdict", "state"), [
    (Verdict.APPLIED, ChangeState.DONE),
    (Verdict.REFUSED_HISTORY, ChangeState.REFUSED),
    (Verdict.REFUSED_MINIMUM_AGE, ChangeState.REFUSED),
    (Verdict.REFUSED_COMPLEXITY, ChangeState.REFUSED),
    (Verdict.REFUSED_POLICY, ChangeState.REFUSED),
    # decided before AD checks the password, or the password itself: one answer, so nobody learns who exists
    (Verdict.REFUSED_CURRENT_PASSWORD, ChangeState.NOT_ACCEPTED),
    (Verdict.LOCKED_OUT, ChangeState.NOT_ACCEPTED),
    (Verdict.DISABLED, ChangeState.NOT_ACCEPTED),
    (Verdict.NOT_FOUND, ChangeState.NOT_ACCEPTED),
    (Verdict.NOT_IN_SCOPE, ChangeState.NOT_ACCEPTED),
    (Verdict.CANCELLED, ChangeState.NOTHING_CHANGED),
    (Verdict.EXPIRED, ChangeState.NOTHING_CHANGED),
    (Verdict.UNREADABLE, ChangeState.NOTHING_CHANGED),
    (Verdict.FAILED, ChangeState.NOTHING_CHANGED),
])
def test_each_verdict_tells_the_person_one_of_five_things(verdict: Verdict, state: ChangeState) -> None:
    assert state_of(verdict) is state


def wrong_tries_allowed(lockout: LockoutPolicy | None) -> int:
    """How many wrong tries the typed name gets before its changes pause (counted as the service counts them)."""
    limit = name_limit(lockout)
    row = UserThrottle(user_id="change-name-x")
    tries = 0
    while paused_until(row, limit, NOW) is None:
        row = record_event(row, limit, NOW)
        tries += 1
    return tries


@pytest.mark.parametrize(("threshold", "allowed"), [(0, 6), (1, 1), (2, 1), (3, 2), (5, 4), (10, 6), (50, 6)])
def test_a_names_changes_pause_before_ads_lockout_threshold_is_reached(threshold: int, allowed: int) -> None:
    """AD counts each wrong current password in badPwdCount: the page stops one short of the threshold (a typo at a
    workstation may come on top), and never allows more than its own default where AD locks nobody out."""
    lockout = LockoutPolicy(threshold, timedelta(minutes=30)) if threshold else None
    assert wrong_tries_allowed(lockout) == allowed
    if threshold > 1:
        assert allowed < threshold


def test_the_names_window_spans_ads_observation_window_up_to_an_hour() -> None:
    assert name_limit(LockoutPolicy(5, timedelta(minutes=30))).window == timedelta(minutes=30)
    assert name_limit(LockoutPolicy(5, timedelta(minutes=1))).window == timedelta(minutes=15)
    assert name_limit(LockoutPolicy(5, timedelta(days=1))).window == timedelta(hours=1)  # the throttle's horizon


def test_the_strictest_live_agents_lockout_policy_counts() -> None:
    def beat(agent: str, threshold: int, window_s: int, ago: float = 5) -> Heartbeat:
        return Heartbeat(agent_id=agent, version="1", at=NOW - timedelta(seconds=ago), dcs_reached=["dc:636"],
                         dcs_configured=1, lockout_threshold=threshold, lockout_window_s=window_s)

    assert onprem.lockout_policy([], NOW) is None
    assert onprem.lockout_policy([beat("a", 0, 0)], NOW) is None  # no lockout in the domain
    policy = onprem.lockout_policy([beat("a", 10, 900), beat("b", 5, 1800), beat("c", 2, 60, ago=600)], NOW)
    assert policy == LockoutPolicy(5, timedelta(minutes=30))  # c is not live


def test_a_typed_name_is_counted_however_it_is_spelled_and_never_reaches_a_key_as_typed() -> None:
    key = password_change.name_key(" Kim.Contoso@Contoso.example ")
    assert key == password_change.name_key("kim.contoso@contoso.example")
    assert key.startswith("change-name-") and "kim" not in key
    assert password_change.address_key("198.51.100.7") != password_change.address_key("198.51.100.8")


def test_a_verdict_is_settled_once_and_a_dead_settler_is_taken_over_after_its_lease() -> None:
    request = ChangeRequest("c", "d", "u", "kim@contoso.example", ("n", "a"), NOW, NOW + timedelta(minutes=1))
    taken = password_change.settling(request, NOW)
    assert taken is not None and taken.settling_at == NOW
    assert password_change.settling(taken, NOW + timedelta(seconds=30)) is None  # another settles it now
    assert password_change.settling(taken, NOW + password_change.SETTLE_LEASE) is not None  # it died: take over
    done = password_change.settled(taken, ChangeState.DONE, sessions_revoked=True, applied_by="agent")
    assert done.settled and done.settling_at is None
    assert password_change.settling(done, NOW + timedelta(hours=1)) is None


def test_a_changes_secret_is_kept_only_as_an_hmac_bound_to_its_change() -> None:
    key = b"k" * 32
    digest = password_change.secret_digest(key, "c1", "s3cret")
    request = ChangeRequest("c1", digest, "u", "kim", ("n", "a"), NOW, NOW)
    assert password_change.secret_matches(request, key, "s3cret")
    assert not password_change.secret_matches(request, key, "other")
    assert password_change.secret_digest(key, "c2", "s3cret") != digest and "s3cret" not in digest
