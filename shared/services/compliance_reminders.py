"""The registration reminders a compliance run queues for the users of one sweep page, counted once per run.

Reminders follow the sign-in path's rules (shared/domain/signin.py: due at most once per period, a deterministic
message id queued before the period's slot is claimed); the claim names the run, so a redelivered page neither
queues a reminder twice nor forgets to count one it queued.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.run_store import KeyRange
from shared.domain.compliance import Run, UserCompliance, shard_range
from shared.domain.policy import Policy
from shared.domain.security_info import SecurityInfoSummary
from shared.domain.signin import (
    NOTIFICATIONS_QUEUE,
    REGISTRATION_REMINDER_KIND,
    reminder_due,
    reminder_message_id,
)

REMINDER_CONCURRENCY = 16


class ComplianceReminders:
    """Queues a sweep page's reminders: `slots` claims a user's period, `messages` carries the reminder."""

    def __init__(self, slots: ReminderStore, messages: MessageQueues, period: timedelta) -> None:
        self._slots = slots
        self._messages = messages
        self._reminder_period = period

    async def page(self, run: Run, policy: Policy, due: list[UserCompliance],
                   summaries: dict[str, SecurityInfoSummary], after: str | None, last: str | None,
                   index: int, now: datetime) -> int:
        """Queue the reminders of a page (at most once per period per user, REMINDER_AT_MOST_ONCE_PER_PERIOD) and
        count those that this run queued, including on an earlier delivery of the same page.

        Like the sign-in path (shared/services/signin.py) the message goes first, under its deterministic id, and
        the period is claimed after; the claim also names this run, so a redelivery - after a crash between the
        claim and the checkpoint, or beside a concurrent delivery that won the claim - still counts the reminder it
        finds claimed by this run, and never queues a second one: `remindersSent` is the reminders queued."""
        if not due:
            return 0
        lo, hi = shard_range(index)
        slots = await self._slots.registration_slots_in(KeyRange(after=after, lo=lo, last=last, hi=hi))
        gate = asyncio.Semaphore(REMINDER_CONCURRENCY)

        async def remind(user: UserCompliance) -> bool:
            slot = slots.get(user.user_id)
            if slot is not None and slot.claimed_by == run.id:
                return True  # queued by this run on an earlier delivery of this page
            summary = summaries.get(user.user_id) or SecurityInfoSummary(user.user_id)
            if not reminder_due(summary, user.enabled, policy, slot.sent_at if slot else None,
                                self._reminder_period, now):
                return False
            message_id = reminder_message_id(user.user_id, slot.message_id if slot else None)
            async with gate:
                await self._messages.send(NOTIFICATIONS_QUEUE, {"kind": REGISTRATION_REMINDER_KIND, "id": message_id,
                                                                "userId": user.user_id})
                if await self._slots.claim_registration_slot(user.user_id, slot, now, message_id,
                                                                      claimed_by=run.id):
                    return True
                won = await self._slots.registration_slot(user.user_id)  # someone claimed it first
                return won is not None and won.claimed_by == run.id

        return sum(await asyncio.gather(*(remind(u) for u in due)))
