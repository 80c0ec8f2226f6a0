"""Sign-in use cases: the hook's claims for one user, queueing streamed sign-ins, and the registration reminder.

The hook reads only Table Storage (the user's summary and Enablement row, concurrently) and the cached policy,
never Graph, within a fixed time budget. Any fault of ours (storage down or slow, a stored row we cannot read,
no policy) answers with no claims and one ERROR line, so the user's sign-in goes on (security.md F7).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from shared.adapters.enablement_store import EnablementStore
from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain.enablement import is_enabled
from shared.domain.security_info import SecurityInfoSummary
from shared.domain.signin import (
    NOTIFICATIONS_QUEUE,
    REGISTRATION_REMINDER_KIND,
    SIGNIN_EVENTS_QUEUE,
    prompt_claims,
    registration_prompt,
    reminder_due,
)
from shared.errors import PreconditionFailed, SsprError
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.signin")

Clock = Callable[[], datetime]

# Entra waits 1000 ms by default for the whole call (and fails the sign-in after it); storage gets this share.
HOOK_STORAGE_BUDGET_SECONDS = 0.5


class SignInHook:
    """The claims Entra adds to a user's token at sign-in."""

    def __init__(self, security_info: SecurityInfoStore, enablement: EnablementStore, policies: PolicyCache,
                 registration_url: str, clock: Clock, budget_seconds: float = HOOK_STORAGE_BUDGET_SECONDS) -> None:
        self._security_info = security_info
        self._enablement = enablement
        self._policies = policies
        self._registration_url = registration_url
        self._clock = clock
        self._budget = budget_seconds

    async def claims_for(self, user_id: str) -> dict[str, str]:
        """The user's registration claims, or none at all when we cannot tell (never raises)."""
        try:
            async with asyncio.timeout(self._budget):
                return await self._decide(user_id)
        except TimeoutError:
            log.error("sign-in hook: no claims for user %s: storage did not answer within %.0f ms",
                      user_id, self._budget * 1000)
        except Exception as exc:  # noqa: BLE001 - F7: whatever broke on our side, the sign-in goes on
            log.error("sign-in hook: no claims for user %s: %s: %s", user_id, type(exc).__name__, exc)
        return {}

    async def _decide(self, user_id: str) -> dict[str, str]:
        summary, row, policy = await asyncio.gather(
            self._security_info.summary(user_id), self._enablement.get_enablement(user_id), self._policies.get()
        )
        now = self._clock()
        prompt = registration_prompt(summary, is_enabled(row), policy, now)
        if prompt.record_first_prompt:
            await self._record_first_prompt(summary, now)
        return prompt_claims(prompt, self._registration_url)

    async def _record_first_prompt(self, summary: SecurityInfoSummary, now: datetime) -> None:
        """Start the user's skip allowance: an ETag'd write of the summary alone (no method rows touched)."""
        try:
            await self._security_info.save(replace(summary, first_prompted_at=now))
        except PreconditionFailed:
            pass  # a concurrent sign-in or registration changed the summary first; its state stands
        except SsprError as exc:
            # The answer stands; the allowance starts at the next sign-in that can write.
            log.warning("sign-in hook: first prompt of user %s not recorded: %s", summary.user_id, exc)


class SignInEventIntake:
    """Turns a batch of streamed sign-ins into one queue message per distinct user (ids only)."""

    def __init__(self, queues: MessageQueues) -> None:
        self._queues = queues

    async def enqueue(self, user_ids: Iterable[str]) -> int:
        distinct = list(dict.fromkeys(u.lower() for u in user_ids))
        await asyncio.gather(*(self._queues.send(SIGNIN_EVENTS_QUEUE, {"userId": u}) for u in distinct))
        return len(distinct)


class RegistrationReminders:
    """After a sign-in: queue a registration reminder mail if one is due, at most once per period per user."""

    def __init__(self, security_info: SecurityInfoStore, enablement: EnablementStore, policies: PolicyCache,
                 reminders: ReminderStore, queues: MessageQueues, period: timedelta, clock: Clock,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._security_info = security_info
        self._enablement = enablement
        self._policies = policies
        self._reminders = reminders
        self._queues = queues
        self._period = period
        self._clock = clock
        self._new_id = new_id

    async def after_sign_in(self, user_id: str) -> bool:
        """True when this call queued a reminder. Safe to repeat: a redelivered or concurrent message finds the
        slot taken and does nothing. Storage faults raise, so the queue retries the message."""
        user_id = user_id.lower()
        summary, row, policy, slot = await asyncio.gather(
            self._security_info.summary(user_id), self._enablement.get_enablement(user_id), self._policies.get(),
            self._reminders.registration_slot(user_id),
        )
        now = self._clock()
        if not reminder_due(summary, is_enabled(row), policy, slot.sent_at if slot else None, self._period, now):
            return False
        message_id = self._new_id()
        etag = await self._reminders.claim_registration_slot(user_id, slot, now, message_id)
        if etag is None:
            return False  # another worker claimed this period's reminder between our read and our write
        try:
            await self._queues.send(NOTIFICATIONS_QUEUE,
                                    {"kind": REGISTRATION_REMINDER_KIND, "id": message_id, "userId": user_id})
        except SsprError:
            await self._reminders.release_registration_slot(user_id, etag, slot)  # let the retry claim it again
            raise
        log.info("registration reminder %s queued for user %s", message_id, user_id)
        return True
