"""Abuse limits (security.md G1, G2): sliding per-user limits with a 24 h block, fixed-window send budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain import throttling
from shared.domain.codes import Channel
from shared.domain.throttling import UserThrottle

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_eleventh_send_in_ten_minutes_blocks_for_24_hours() -> None:
    t = UserThrottle("u")
    for i in range(10):
        t = throttling.record_send(t, NOW + timedelta(seconds=i))
    assert not throttling.is_blocked(t, NOW + timedelta(seconds=10))
    t = throttling.record_send(t, NOW + timedelta(seconds=10))
    assert throttling.is_blocked(t, NOW + timedelta(seconds=10))
    assert throttling.is_blocked(t, NOW + timedelta(hours=24, seconds=9))
    assert not throttling.is_blocked(t, NOW + timedelta(hours=24, seconds=10))


def test_sends_spread_over_more_than_ten_minutes_do_not_block() -> None:
    t = UserThrottle("u")
    for i in range(30):
        t = throttling.record_send(t, NOW + timedelta(minutes=i))  # one a minute: at most 10 in any window
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=30))


def test_the_sixth_failed_verification_in_an_hour_blocks() -> None:
    t = UserThrottle("u")
    for i in range(5):
        t = throttling.record_failed_verification(t, NOW + timedelta(minutes=i))
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=5))
    t = throttling.record_failed_verification(t, NOW + timedelta(minutes=59))
    assert throttling.is_blocked(t, NOW + timedelta(minutes=59))


def test_old_failures_fall_out_of_the_window() -> None:
    t = UserThrottle("u")
    for i in range(5):
        t = throttling.record_failed_verification(t, NOW + timedelta(minutes=i))
    t = throttling.record_failed_verification(t, NOW + timedelta(minutes=61))
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=61)) and len(t.failures) == 4  # minutes 2, 3, 4, 61


def test_a_block_is_not_extended_by_the_attempts_it_refuses() -> None:
    t = UserThrottle("u")
    for _ in range(11):
        t = throttling.record_send(t, NOW)
    until = t.blocked_until
    t = throttling.record_send(t, NOW + timedelta(hours=1))
    assert t.blocked_until == until


def test_clearing_removes_counters_and_block() -> None:
    t = UserThrottle("u")
    for _ in range(11):
        t = throttling.record_send(t, NOW)
    assert throttling.cleared(t) == UserThrottle("u")


def test_each_channel_has_an_ip_and_a_global_budget_and_sms_is_tighter_than_mail() -> None:
    for channel in Channel:
        scopes = {b.scope for b in throttling.budgets_for(channel)}
        assert scopes == {"ip", "global"}
    sms = {b.scope: b.max_sends for b in throttling.budgets_for(Channel.SMS)}
    mail = {b.scope: b.max_sends for b in throttling.budgets_for(Channel.EMAIL)}
    assert sms["ip"] < mail["ip"] and sms["global"] < mail["global"]


def test_budget_windows_are_fixed_and_aligned() -> None:
    hour = timedelta(hours=1)
    assert throttling.window_start(NOW + timedelta(minutes=59), hour) == NOW
    assert throttling.window_start(NOW + timedelta(minutes=60), hour) == NOW + hour
    budget = throttling.budgets_for(Channel.SMS)[0]
    assert throttling.within_budget(budget.max_sends, budget) and not throttling.within_budget(budget.max_sends + 1, budget)


def test_G1_the_fifth_failed_flow_in_24_hours_blocks_and_a_reset_clears_it() -> None:
    t = UserThrottle("u")
    for hour in range(4):  # an hour apart: the failed-verification limit (1 h) never triggers
        t = throttling.record_failed_flow(t, NOW + timedelta(hours=hour * 5))
    assert not throttling.is_blocked(t, NOW + timedelta(hours=20))
    t = throttling.record_failed_flow(t, NOW + timedelta(hours=20))
    assert throttling.is_blocked(t, NOW + timedelta(hours=20))
    assert throttling.cleared(t).failed_flows == () and not throttling.is_blocked(throttling.cleared(t), NOW)


def test_failed_flows_older_than_24_hours_do_not_count() -> None:
    t = UserThrottle("u")
    for day in range(10):
        t = throttling.record_failed_flow(t, NOW + timedelta(hours=day * 7))  # at most 4 in any 24 hours
    assert not throttling.is_blocked(t, NOW + timedelta(hours=63))
