"""The throttle every code flow shares (security.md G1, G2): per-user blocks and per-channel send budgets, audited.

Registration and reset ask it before a code goes out and tell it of every failed verification; a successful
reset clears the user's counters. The counters live in `ThrottleStore`; the rules are `shared/domain/throttling.py`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from shared.adapters.audit_store import AuditStore
from shared.adapters.throttle_store import ThrottleStore
from shared.domain import throttling
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.codes import Channel
from shared.domain.throttling import UserThrottle
from shared.errors import BlockedFromSspr, ChannelPaused, TooManyRequests
from shared.helpdesk_errors import HelpdeskPaused

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
        await self.admit(throttling.FLOW_START_BUDGETS, client_ip)

    async def admit(self, budgets: tuple[throttling.Budget, ...], client_ip: str | None) -> None:
        """Count one action against its per-IP and global `budgets`; TooManyRequests over one of them."""
        now = self._clock()
        for budget in budgets:
            if not throttling.within_budget(await self._store.spend(budget, client_ip, now), budget):
                log.warning("budget %s/%s used up", budget.channel, budget.scope)
                raise TooManyRequests(f"{budget.channel} budget {budget.scope} used up")

    async def record_event(self, key: str, limit: throttling.SlidingLimit) -> None:
        """One more event `limit` counts under `key` (a hashed key the caller built, never typed input)."""
        now = self._clock()
        await self._store.change_user(key, lambda t: throttling.record_event(t, limit, now))

    async def paused_until(self, key: str, limit: throttling.SlidingLimit) -> datetime | None:
        """When what `limit` counts under `key` may be tried again; None when it may now."""
        return throttling.paused_until(await self._store.user(key), limit, self._clock())

    async def forget(self, key: str) -> None:
        """The events counted under `key` are over (a success after them); no row is written when none were."""
        if (await self._store.user(key)).failures:
            await self._store.change_user(key, throttling.cleared)

    # ---- the helpdesk's own rows (HELPDESK_LIMITS) ---------------------------------------------------------------

    async def helpdesk_paused(self, user_id: str, agent_id: str) -> None:
        """HelpdeskPaused when the helpdesk's verification of this caller, or this agent, is paused now."""
        now = self._clock()
        for whose, key in (("caller", throttling.helpdesk_caller_key(user_id)),
                           ("agent", throttling.helpdesk_agent_key(agent_id))):
            until = throttling.blocked_until(await self._store.user(key), now)
            if until is not None:
                raise HelpdeskPaused(whose, until)

    async def count_helpdesk_send(self, user_id: str, agent: Actor, client_ip: str | None) -> None:
        """A code the helpdesk sends: counted for the caller and the agent; HelpdeskPaused when either is (now)
        over its limit. Nothing counts against the user's self-service row (G5)."""
        await self.helpdesk_paused(user_id, agent.id)
        now = self._clock()
        for whose, key, limits in self._helpdesk_rows(user_id, agent.id):
            before, after = await self._store.change_user(key, partial(throttling.record_helpdesk_send, now=now,
                                                                       limits=limits))
            await self._helpdesk_paused_now(before, after, whose, user_id, agent, client_ip, "code sends")

    async def record_helpdesk_failure(self, user_id: str, agent: Actor, client_ip: str | None) -> None:
        """A wrong code or app code read back to the helpdesk: counted for the caller and the agent."""
        now = self._clock()
        for whose, key, limits in self._helpdesk_rows(user_id, agent.id):
            before, after = await self._store.change_user(key, partial(throttling.record_helpdesk_failure, now=now,
                                                                       limits=limits))
            await self._helpdesk_paused_now(before, after, whose, user_id, agent, client_ip, "failed verifications",
                                            raise_error=False)

    @staticmethod
    def _helpdesk_rows(user_id: str, agent_id: str) -> list[tuple[str, str, throttling.HelpdeskLimits]]:
        return [("caller", throttling.helpdesk_caller_key(user_id), throttling.HELPDESK_CALLER),
                ("agent", throttling.helpdesk_agent_key(agent_id), throttling.HELPDESK_AGENT)]

    async def _helpdesk_paused_now(self, before: UserThrottle, after: UserThrottle, whose: str, user_id: str,
                                   agent: Actor, client_ip: str | None, reason: str, raise_error: bool = True) -> None:
        now = self._clock()
        if after.blocked_until is None or not throttling.is_blocked(after, now):
            return
        if not throttling.is_blocked(before, now):
            await self._audit.write(AuditEvent(
                time=now, activity=Activity.HELPDESK_PAUSED, service=AuditService.SSPR, actor=agent,
                outcome=Outcome.FAILURE, target_user_id=user_id, client_ip=client_ip,
                reason=f"too many {reason} for the {whose}",
                details={"pausedFor": whose, "pausedUntil": after.blocked_until.isoformat()}))
        if raise_error:
            raise HelpdeskPaused(whose, after.blocked_until)

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
