"""Abuse limits on codes (security.md G1, G2): per-user blocks, and per-IP / global send budgets per channel.

Per user (G1, Entra's limits): more than 10 code sends in 10 minutes, or more than 5 failed verifications in
1 hour, blocks the user from SSPR for 24 hours; a successful reset clears it. These are sliding windows: the
user's row keeps the timestamps of the last events inside the window (a handful), so "11 sends in any 10
minutes" means exactly that, with no boundary effect.

Send budgets (G2, SMS and calls cost money): per client IP and globally, per channel, in fixed windows (one
counter per window start): budgets are large, so a timestamp list would not fit in a row, and a fixed window's
worst case (twice the budget across a window boundary) is an acceptable cost bound. Over budget, that channel
pauses for everyone it covers until the window ends; other channels keep working.

A block here is an SSPR block only: it never disables the directory account or touches its sign-in (G3).

What counts against whom (security.md C7, G5), by name:
- FLOW_LOCK (reset_flow.record_failure, codes.submit): 5 wrong answers to one method lock the flow, for a decoy
  and a real challenge alike, blocked user or not: the pattern a caller sees per flow is the same for everyone.
- USER_REAL_CHALLENGES: only the user's own real challenges count against the user: a code really sent to the
  contact they registered (CODE_SENDS), a wrong code on such a challenge (FAILED_VERIFICATIONS), a flow locked
  by those (FAILED_FLOWS), wrong security answers (asked only after a proven method). A decoy's failures (no
  code was ever sent) and wrong app codes never do, so a stranger who knows a user name but no registered
  contact cannot get the user blocked, and the counts a stranger can move are the same for nobody.
- USERNAME_APP_GUESSES: wrong authenticator app codes count against the typed user name (its normalised form,
  hashed), whoever it names: more than APP_CODE_GUESSES in an hour pause app codes for that name (other methods
  keep working), the same for nobody as for a real user.
- Per client address and globally: the send and start budgets below (G2).
- HELPDESK_LIMITS: the helpdesk's verification of a caller counts on rows of its own, with the same numbers per
  user as G1 (a code really sent, a wrong code or app code read back), and per agent (HELPDESK_AGENT). Its own rows,
  because the helpdesk is where a user blocked from SSPR goes (a self-service block must not stop the helpdesk),
  and because a stranger phoning the helpdesk must not get the user's self-service blocked (G5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.codes import Channel

BLOCK_DURATION = timedelta(hours=24)
# Timestamps kept per counter: enough to judge "more than N" with room for racing writers.
MAX_KEPT_EVENTS = 32


@dataclass(frozen=True)
class SlidingLimit:
    """More than `max_events` in any `window` crosses the limit."""

    name: str
    max_events: int
    window: timedelta


CODE_SENDS = SlidingLimit("codeSends", 10, timedelta(minutes=10))
FAILED_VERIFICATIONS = SlidingLimit("failedVerifications", 5, timedelta(hours=1))
# "5 failed flows in 24 h" blocks: the 5th reaches it (more than 4).
FAILED_FLOWS = SlidingLimit("failedFlows", 4, timedelta(hours=24))
# Wrong app codes for one typed user name: the 5th within an hour pauses app codes for that name until the
# oldest of them is an hour old (a 6-digit code then has 5 guesses an hour per name, whoever it names).
APP_CODE_GUESSES = SlidingLimit("appCodeGuesses", 4, timedelta(hours=1))


@dataclass(frozen=True)
class UserThrottle:
    """One user's recent code sends and failed verifications, and the end of their block if blocked."""

    user_id: str
    sends: tuple[datetime, ...] = ()
    failures: tuple[datetime, ...] = ()
    failed_flows: tuple[datetime, ...] = ()
    blocked_until: datetime | None = None
    etag: str | None = field(default=None, compare=False)


def is_blocked(throttle: UserThrottle, now: datetime) -> bool:
    return throttle.blocked_until is not None and now < throttle.blocked_until


def _recent(events: tuple[datetime, ...], limit: SlidingLimit, now: datetime) -> tuple[datetime, ...]:
    return tuple(e for e in events if now - e < limit.window)[-MAX_KEPT_EVENTS:]


def _crossed(events: tuple[datetime, ...], limit: SlidingLimit) -> bool:
    return len(events) > limit.max_events


def record_send(throttle: UserThrottle, now: datetime) -> UserThrottle:
    """A code send was asked for; the 11th within 10 minutes blocks the user."""
    sends = _recent((*throttle.sends, now), CODE_SENDS, now)
    updated = replace(throttle, sends=sends)
    return _block(updated, now) if _crossed(sends, CODE_SENDS) else updated


def record_failed_verification(throttle: UserThrottle, now: datetime) -> UserThrottle:
    """A wrong code; the 6th within an hour blocks the user."""
    failures = _recent((*throttle.failures, now), FAILED_VERIFICATIONS, now)
    updated = replace(throttle, failures=failures)
    return _block(updated, now) if _crossed(failures, FAILED_VERIFICATIONS) else updated


def record_failed_flow(throttle: UserThrottle, now: datetime) -> UserThrottle:
    """A reset flow locked by wrong answers; the 5th within 24 hours blocks the user."""
    flows = _recent((*throttle.failed_flows, now), FAILED_FLOWS, now)
    updated = replace(throttle, failed_flows=flows)
    return _block(updated, now) if _crossed(flows, FAILED_FLOWS) else updated


def _block(throttle: UserThrottle, now: datetime) -> UserThrottle:
    if is_blocked(throttle, now):
        return throttle  # a block is not extended by the attempts it refuses
    return replace(throttle, blocked_until=now + BLOCK_DURATION)


def blocked_until(throttle: UserThrottle, now: datetime) -> datetime | None:
    return throttle.blocked_until if is_blocked(throttle, now) else None


def forgettable(throttle: UserThrottle, now: datetime) -> bool:
    """Whether the row would judge exactly like no row (so the purge may delete it, E4): no block running and no
    event still inside the window of a limit it counts for (sends 10 minutes; failures 1 hour, failed
    verifications and app code guesses alike; failed flows 24 hours)."""
    live = ((throttle.sends, CODE_SENDS.window),
            (throttle.failures, max(FAILED_VERIFICATIONS.window, APP_CODE_GUESSES.window)),
            (throttle.failed_flows, FAILED_FLOWS.window))
    return not is_blocked(throttle, now) and not any(now - e < window for events, window in live for e in events)


def username_key(username: str) -> str:
    """The throttle key of a typed user name (USERNAME_APP_GUESSES): the same for a name that names nobody."""
    return "name-" + hashlib.sha256(username.strip().lower().encode()).hexdigest()[:40]


def record_event(throttle: UserThrottle, limit: SlidingLimit, now: datetime) -> UserThrottle:
    """One more event that `limit` counts (kept in the row's `failures`; the row's key says what it counts)."""
    return replace(throttle, failures=_recent((*throttle.failures, now), limit, now))


def paused_until(throttle: UserThrottle, limit: SlidingLimit, now: datetime) -> datetime | None:
    """When what `limit` counts may be tried again (the oldest event that crossed it then leaves the window), or
    None when it may now."""
    recent = _recent(throttle.failures, limit, now)
    if not _crossed(recent, limit):
        return None
    return recent[-(limit.max_events + 1)] + limit.window


def record_app_guess(throttle: UserThrottle, now: datetime) -> UserThrottle:
    """A wrong app code for this user name (kept in the row's `failures`)."""
    return record_event(throttle, APP_CODE_GUESSES, now)


def app_codes_paused_until(throttle: UserThrottle, now: datetime) -> datetime | None:
    """When app codes for this user name may be tried again, or None when they may now."""
    return paused_until(throttle, APP_CODE_GUESSES, now)


@dataclass(frozen=True)
class HelpdeskLimits:
    """HELPDESK_LIMITS: more sends or failed verifications than these pause the helpdesk for one row's subject."""

    sends: SlidingLimit
    failures: SlidingLimit
    pause: timedelta


HELPDESK_CALLER = HelpdeskLimits(CODE_SENDS, FAILED_VERIFICATIONS, BLOCK_DURATION)
# An agent serves many callers, so more sends; a rogue or stolen agent account is stopped within the hour.
HELPDESK_AGENT = HelpdeskLimits(SlidingLimit("agentCodeSends", 20, timedelta(minutes=10)),
                                SlidingLimit("agentFailedVerifications", 10, timedelta(hours=1)), timedelta(hours=1))


def helpdesk_caller_key(user_id: str) -> str:
    return f"helpdesk-{user_id.lower()}"


def helpdesk_agent_key(agent_id: str) -> str:
    return f"agent-{agent_id.lower()}"


def record_helpdesk_send(throttle: UserThrottle, now: datetime, limits: HelpdeskLimits) -> UserThrottle:
    sends = _recent((*throttle.sends, now), limits.sends, now)
    updated = replace(throttle, sends=sends)
    return _pause(updated, now, limits.pause) if _crossed(sends, limits.sends) else updated


def record_helpdesk_failure(throttle: UserThrottle, now: datetime, limits: HelpdeskLimits) -> UserThrottle:
    failures = _recent((*throttle.failures, now), limits.failures, now)
    updated = replace(throttle, failures=failures)
    return _pause(updated, now, limits.pause) if _crossed(failures, limits.failures) else updated


def _pause(throttle: UserThrottle, now: datetime, pause: timedelta) -> UserThrottle:
    return throttle if is_blocked(throttle, now) else replace(throttle, blocked_until=now + pause)


def cleared(throttle: UserThrottle) -> UserThrottle:
    """A successful reset clears the counters and the block (G1)."""
    return replace(throttle, sends=(), failures=(), failed_flows=(), blocked_until=None)


# ---- send budgets ---------------------------------------------------------------------------------------


class Allowance(StrEnum):
    """Budgeted actions that are not code sends."""

    FLOW_STARTS = "flow-starts"  # anonymous reset starts (each costs a table write and proof-of-work checking)
    PASSWORD_CHANGES = "password-changes"  # anonymous change tries (each costs a Graph read, maybe an agent's job)
    PASSWORD_CHECKS = "password-checks"  # the change page's live rule checks (a long password costs ~40 ms of CPU)


@dataclass(frozen=True)
class Budget:
    """At most `max_sends` codes over `channel` (or actions of an `Allowance`) per `window`, per client IP or for
    the whole service."""

    channel: Channel | Allowance
    scope: str  # "ip" | "global"
    max_sends: int
    window: timedelta


BUDGETS: tuple[Budget, ...] = (
    Budget(Channel.EMAIL, "ip", 60, timedelta(hours=1)),
    Budget(Channel.EMAIL, "global", 5000, timedelta(hours=1)),
    Budget(Channel.SMS, "ip", 20, timedelta(hours=1)),
    Budget(Channel.SMS, "global", 500, timedelta(hours=1)),
    Budget(Channel.VOICE, "ip", 10, timedelta(hours=1)),
    Budget(Channel.VOICE, "global", 200, timedelta(hours=1)),
)


# Reset starts: a person needs a handful; a shared office NAT a few hundred an hour.
FLOW_START_BUDGETS: tuple[Budget, ...] = (
    Budget(Allowance.FLOW_STARTS, "ip", 300, timedelta(hours=1)),
    Budget(Allowance.FLOW_STARTS, "global", 50_000, timedelta(hours=1)),
)


# Change tries, right or wrong: a person needs a few; an office NAT after a password expiry day a few hundred.
PASSWORD_CHANGE_BUDGETS: tuple[Budget, ...] = (
    Budget(Allowance.PASSWORD_CHANGES, "ip", 200, timedelta(hours=1)),
    Budget(Allowance.PASSWORD_CHANGES, "global", 20_000, timedelta(hours=1)),
)
# Live checks while typing (one per pause in the typing): a person makes a few dozen per change.
PASSWORD_CHECK_BUDGETS: tuple[Budget, ...] = (
    Budget(Allowance.PASSWORD_CHECKS, "ip", 600, timedelta(hours=1)),
    Budget(Allowance.PASSWORD_CHECKS, "global", 200_000, timedelta(hours=1)),
)


def budgets_for(channel: Channel | Allowance, budgets: tuple[Budget, ...] = BUDGETS) -> list[Budget]:
    return [b for b in budgets if b.channel is channel]


def window_start(now: datetime, window: timedelta) -> datetime:
    """The fixed window `now` falls in (windows start at multiples of `window` since the epoch)."""
    seconds = int(window.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


def within_budget(count_after_this_send: int, budget: Budget) -> bool:
    return count_after_this_send <= budget.max_sends


