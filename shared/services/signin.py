"""Sign-in use cases: the hook's claims for one user, queueing streamed sign-ins, and the registration reminder.

The hook reads only Table Storage (the user's summary and Enablement row, concurrently) and the cached policy,
never Graph, within a fixed time budget. Any fault of ours (storage down or slow, a stored row we cannot read,
no policy) answers with no claims and one ERROR line, so the user's sign-in goes on (security.md F7).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.adapters.enablement_store import EnablementStore
from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain.clock import Clock
from shared.domain.enablement import is_enabled
from shared.domain.security_info import SecurityInfoSummary
from shared.domain.signin import (
    NOTIFICATIONS_QUEUE,
    REGISTRATION_REMINDER_KIND,
    SIGNIN_EVENTS_QUEUE,
    prompt_claims,
    registration_prompt,
    reminder_due,
    reminder_message_id,
)
from shared.errors import PreconditionFailed, SsprError
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.signin")


# Entra waits 1000 ms by default for the whole call (and fails the sign-in after it). The whole answer (token check,
# including a signing-key fetch, and the decision) gets HOOK_DEADLINE_SECONDS; storage alone gets a share of it.
HOOK_DEADLINE_SECONDS = 0.7
HOOK_STORAGE_BUDGET_SECONDS = 0.5
# A batch of 5,000 users must not open 5,000 queue requests at once (sockets, Azurite, the storage account's limits).
SEND_CONCURRENCY = 16


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


@dataclass(frozen=True)
class SignInEventIntake:
    """Turns a batch of streamed sign-ins into one queue message per distinct user (ids only)."""

    queues: MessageQueues

    async def enqueue(self, user_ids: Iterable[str]) -> int:
        """Queue one message per distinct user, at most SEND_CONCURRENCY sends at a time. A failed send raises
        (the forwarder replays the batch; the reminder worker is idempotent) and stops the sends not yet made."""
        distinct = list(dict.fromkeys(u.lower() for u in user_ids))
        slots = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(user_id: str) -> None:
            async with slots:
                await self.queues.send(SIGNIN_EVENTS_QUEUE, {"userId": user_id})

        try:
            async with asyncio.TaskGroup() as group:
                for user_id in distinct:
                    group.create_task(send(user_id))
        except* SsprError as failed:
            raise failed.exceptions[0] from None
        return len(distinct)


@dataclass(frozen=True)
class RegistrationReminders:
    """After a sign-in: queue a registration reminder mail if one is due, at most once per period per user."""

    security_info: SecurityInfoStore
    enablement: EnablementStore
    policies: PolicyCache
    reminders: ReminderStore
    queues: MessageQueues
    period: timedelta
    clock: Clock

    async def after_sign_in(self, user_id: str) -> bool:
        """True when this call claimed the period's reminder. Storage faults raise, so the queue retries.

        The reminder is queued first and the period claimed after (F2), so a crash in between cannot lose the
        period's reminder: the retry queues it again under the same deterministic id, and the notifications worker's
        ledger (one row per message id) mails it once. Concurrent workers likewise queue copies of one id, and one
        of them claims the period; a sign-in after the claim finds the period taken and queues nothing."""
        user_id = user_id.lower()
        summary, row, policy, slot = await asyncio.gather(
            self.security_info.summary(user_id), self.enablement.get_enablement(user_id), self.policies.get(),
            self.reminders.registration_slot(user_id),
        )
        now = self.clock()
        if not reminder_due(summary, is_enabled(row), policy, slot.sent_at if slot else None, self.period, now):
            return False
        message_id = reminder_message_id(user_id, slot.message_id if slot else None)
        await self.queues.send(NOTIFICATIONS_QUEUE,
                                {"kind": REGISTRATION_REMINDER_KIND, "id": message_id, "userId": user_id})
        if not await self.reminders.claim_registration_slot(user_id, slot, now, message_id):
            # Another worker claimed the period between our read and our write; it queued this same id.
            log.info("registration reminder %s for user %s: period already claimed", message_id, user_id)
            return False
        log.info("registration reminder %s queued for user %s", message_id, user_id)
        return True
