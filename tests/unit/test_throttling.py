"""Abuse limits (security.md G1, G2): sliding per-user limits with a 24 h block, fixed-window send budgets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain import throttling
from shared.domain.codes import Channel
from shared.domain.throttling import UserThrottle

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def recorded(record: Callable[[UserThrottle, datetime], UserThrottle], times: Iterable[datetime]) -> UserThrottle:
    """A new user's counters after `record` at each of `times`."""
    t = UserThrottle("u")
    for at in times:
        t = record(t, at)
    return t


def test_the_eleventh_send_in_ten_minutes_blocks_for_24_hours() -> None:
    t = recorded(throttling.record_send, [NOW + timedelta(seconds=i) for i in range(10)])
    assert not throttling.is_blocked(t, NOW + timedelta(seconds=10))
    t = throttling.record_send(t, NOW + timedelta(seconds=10))
    assert throttling.is_blocked(t, NOW + timedelta(seconds=10))
    assert throttling.is_blocked(t, NOW + timedelta(hours=24, seconds=9))
    assert not throttling.is_blocked(t, NOW + timedelta(hours=24, seconds=10))


def test_sends_spread_over_more_than_ten_minutes_do_not_block() -> None:
    # one a minute: at most 10 in any window
    t = recorded(throttling.record_send, [NOW + timedelta(minutes=i) for i in range(30)])
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=30))


def test_the_sixth_failed_verification_in_an_hour_blocks() -> None:
    t = recorded(throttling.record_failed_verification, [NOW + timedelta(minutes=i) for i in range(5)])
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=5))
    t = throttling.record_failed_verification(t, NOW + timedelta(minutes=59))
    assert throttling.is_blocked(t, NOW + timedelta(minutes=59))


def test_old_failures_fall_out_of_the_window() -> None:
    t = recorded(throttling.record_failed_verification, [NOW + timedelta(minutes=i) for i in range(5)])
    t = throttling.record_failed_verification(t, NOW + timedelta(minutes=61))
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=61)) and len(t.failures) == 4  # minutes 2, 3, 4, 61


def test_a_block_is_not_extended_by_the_attempts_it_refuses() -> None:
    t = recorded(throttling.record_send, [NOW] * 11)
    until = t.blocked_until
    t = throttling.record_send(t, NOW + timedelta(hours=1))
    assert t.blocked_until == until


def test_clearing_removes_counters_and_block() -> None:
    t = recorded(throttling.record_send, [NOW] * 11)
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
    # an hour apart: the failed-verification limit (1 h) never triggers
    t = recorded(throttling.record_failed_flow, [NOW + timedelta(hours=hour * 5) for hour in range(4)])
    assert not throttling.is_blocked(t, NOW + timedelta(hours=20))
    t = throttling.record_failed_flow(t, NOW + timedelta(hours=20))
    assert throttling.is_blocked(t, NOW + timedelta(hours=20))
    assert throttling.cleared(t).failed_flows == () and not throttling.is_blocked(throttling.cleared(t), NOW)


def test_failed_flows_older_than_24_hours_do_not_count() -> None:
    # at most 4 in any 24 hours
    t = recorded(throttling.record_failed_flow, [NOW + timedelta(hours=day * 7) for day in range(10)])
    assert not throttling.is_blocked(t, NOW + timedelta(hours=63))


# ---- C7, G5: wrong app codes count for the user name typed, never against the user ---------------------------


def test_C7_the_fifth_wrong_app_code_for_a_user_name_pauses_app_codes_until_the_oldest_is_an_hour_old() -> None:
    t = UserThrottle(throttling.username_key("casey@contoso.example"))
    for i in range(4):
        t = throttling.record_app_guess(t, NOW + timedelta(minutes=i))
    assert throttling.app_codes_paused_until(t, NOW + timedelta(minutes=4)) is None
    t = throttling.record_app_guess(t, NOW + timedelta(minutes=4))
    assert throttling.app_codes_paused_until(t, NOW + timedelta(minutes=5)) == NOW + timedelta(hours=1)
    assert throttling.app_codes_paused_until(t, NOW + timedelta(hours=1)) is None  # the first fell out
    assert not throttling.is_blocked(t, NOW + timedelta(minutes=5))  # a pause of app codes, not a block


def test_C7_a_user_names_key_is_the_same_whatever_its_case_and_spaces_and_never_holds_the_name() -> None:
    key = throttling.username_key("Casey@Contoso.example ")
    assert key == throttling.username_key("casey@contoso.example")
    assert key != throttling.username_key("casey2@contoso.example")
    assert key.startswith("name-") and "casey" not in key and len(key) == 45


def test_G1_blocked_until_is_the_blocks_end_only_while_it_lasts() -> None:
    t = recorded(throttling.record_failed_verification, [NOW + timedelta(seconds=i) for i in range(6)])
    assert throttling.blocked_until(t, NOW + timedelta(seconds=6)) == NOW + timedelta(seconds=5, hours=24)
    assert throttling.blocked_until(t, NOW + timedelta(hours=25)) is None


def test_E4_a_row_is_forgettable_only_once_it_judges_like_no_row() -> None:
    fresh = UserThrottle("u")
    assert throttling.forgettable(fresh, NOW)
    cases = {  # each kind of event, just inside and just outside the window it counts for
        "sends": (timedelta(minutes=10), throttling.record_send),
        "failures": (timedelta(hours=1), throttling.record_failed_verification),
        "app guesses": (timedelta(hours=1), throttling.record_app_guess),
        "failed flows": (timedelta(hours=24), throttling.record_failed_flow),
    }
    for what, (window, record) in cases.items():
        t = record(fresh, NOW)
        assert not throttling.forgettable(t, NOW + window - timedelta(seconds=1)), what
        assert throttling.forgettable(t, NOW + window), what
    blocked = replace(fresh, blocked_until=NOW + timedelta(hours=24))
    assert not throttling.forgettable(blocked, NOW + timedelta(hours=23)) and throttling.forgettable(
        blocked, NOW + timedelta(hours=24))
    # What the purge keeps still counts: four failed flows 20 hours ago and a fifth now block the user.
    four = fresh
    for minute in range(4):
        four = throttling.record_failed_flow(four, NOW + timedelta(minutes=minute * 70))
    later = NOW + timedelta(hours=20)
    assert not throttling.forgettable(four, later)
    assert throttling.is_blocked(throttling.record_failed_flow(four, later), later)
