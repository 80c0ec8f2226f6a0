"""The throttle every code flow shares (security.md G1, G2): per-user blocks and per-channel send budgets, audited.

Registration and reset ask it before a code goes out and tell it of every failed verification; a successful
reset clears the user's counters. The counters live in `ThrottleStore`; the rules are `shared/domain/throttling.py`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.adapters.audit_store import AuditStore
from shared.adapters.throttle_store import ThrottleStore
from shared.domain import throttling
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.codes import Channel
from shared.domain.throttling import UserThrottle
from shared.errors import BlockedFromSspr, ChannelPaused, TooManyRequests

log = logging.getLogger("sspr.throttle")


class ThrottleService:
    """Per-user blocks and per-channel send budgets, audited; `clear` is for a successful reset."""

    def __init__(self, store: ThrottleStore, audit: AuditStore, clock: Clock,
                 budgets: tuple[throttling.Budget, ...] = throttling.BUDGETS) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._budgets = budgets

    async def ensure_not_blocked(self, user_id: str) -> None:
        if throttling.is_blocked(await self._store.user(user_id), self._clock()):
            raise BlockedFromSspr(f"user {user_id} is blocked")

    async def admit_send(self, user_id: str, channel: Channel, client_ip: str | None, actor: Actor) -> None:
        """Count one code send; raises when the user is (now) blocked or the channel's budget is used up."""
        await self.count_user_send(user_id, client_ip, actor)
        await self.spend_budgets(channel, client_ip)

    async def count_user_send(self, user_id: str, client_ip: str | None, actor: Actor) -> None:
        """The user's side of a send (G1); BlockedFromSspr when the user is, or now becomes, blocked."""
        now = self._clock()
        await self.ensure_not_blocked(user_id)
        before, after = await self._store.change_user(user_id, lambda t: throttling.record_send(t, now))
        await self._refuse_if_blocked(before, after, actor, client_ip, "code sends")

    async def spend_budgets(self, channel: Channel, client_ip: str | None) -> None:
        """The channel's side of a send (G2): per-IP and global budgets; ChannelPaused when one is used up."""
        now = self._clock()
        for budget in throttling.budgets_for(channel, self._budgets):
            count = await self._store.spend(budget, client_ip, now)
            if not throttling.within_budget(count, budget):
                log.warning("send budget %s/%s of %s used up (%d)", channel, budget.scope, budget.window, count)
                raise ChannelPaused(channel)

    async def record_failure(self, user_id: str, actor: Actor, client_ip: str | None) -> None:
        now = self._clock()
        before, after = await self._store.change_user(user_id, lambda t: throttling.record_failed_verification(t, now))
        await self._refuse_if_blocked(before, after, actor, client_ip, "failed verifications", raise_error=False)

    async def clear(self, user_id: str) -> None:
        """A successful reset clears the user's counters and block (G1)."""
        await self._store.change_user(user_id, throttling.cleared)

    async def is_blocked(self, user_id: str) -> bool:
        return throttling.is_blocked(await self._store.user(user_id), self._clock())

    async def blocked_until(self, user_id: str) -> datetime | None:
        """The end of the user's block, or None when the user is not blocked (G1)."""
        return throttling.blocked_until(await self._store.user(user_id), self._clock())

    async def record_app_guess(self, username: str) -> None:
        """A wrong app code for a typed user name, whoever it names (USERNAME_APP_GUESSES)."""
        now = self._clock()
        await self._store.change_user(throttling.username_key(username),
                                      lambda t: throttling.record_app_guess(t, now))

    async def app_codes_paused_until(self, username: str) -> datetime | None:
        return throttling.app_codes_paused_until(await self._store.user(throttling.username_key(username)),
                                                 self._clock())

    async def record_failed_flow(self, user_id: str, actor: Actor, client_ip: str | None) -> None:
        """A reset flow locked by wrong answers (G1: the 5th in 24 hours blocks the user)."""
        now = self._clock()
        before, after = await self._store.change_user(user_id, lambda t: throttling.record_failed_flow(t, now))
        await self._refuse_if_blocked(before, after, actor, client_ip, "failed reset flows", raise_error=False)

    async def admit_flow_start(self, client_ip: str | None) -> None:
        """Count one anonymous reset start against the per-IP and global budgets; TooManyRequests over them."""
        now = self._clock()
        for budget in throttling.FLOW_START_BUDGETS:
            if not throttling.within_budget(await self._store.spend(budget, client_ip, now), budget):
                log.warning("reset start budget (%s) used up", budget.scope)
                raise TooManyRequests(f"flow start budget {budget.scope} used up")

    async def _refuse_if_blocked(self, before: UserThrottle, after: UserThrottle, actor: Actor,
                                 client_ip: str | None, reason: str, raise_error: bool = True) -> None:
        now = self._clock()
        if not throttling.is_blocked(after, now):
            return
        if not throttling.is_blocked(before, now):
            await self._audit.write(AuditEvent(
                time=now, activity=Activity.BLOCKED, service=AuditService.SSPR, actor=actor,
                outcome=Outcome.FAILURE, target_user_id=after.user_id, client_ip=client_ip,
                reason=f"too many {reason}", details={"blockedUntil": after.blocked_until.isoformat() if after.blocked_until else None},
            ))
        if raise_error:
            raise BlockedFromSspr(f"user {after.user_id} blocked: {reason}")
