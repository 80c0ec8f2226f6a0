"""The reminders a password-expiry run queues for one page of users, each stage at most once per password.

For a user whose stage is due (shared/domain/password_expiry.py `reminder_due`) the notification goes first, under
an id derived from the user, the password and the stage (`reminder_id`), and the stage is claimed after, in the
user's "expiry" row of table Reminders under its ETag, naming the run. So:
- a crash between the two, or a redelivered page, queues the same id again, and the notifications ledger mails it
  once (security.md F1);
- a redelivered page finds the stages its run claimed and counts them again without queueing anything new, so
  `reminders` counts what the run queued, once;
- two deliveries of a page at once both queue the same id; one claims, the other finds its run's claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared import queues
from shared.adapters.reminder_store import ExpirySlot, ExpirySlots, MessageQueues
from shared.domain.expiry_reminders import reminder_id
from shared.domain.notifications import PasswordExpiryReminder
from shared.domain.password_expiry import (
    PasswordExpiry,
    PasswordFacts,
    after_sending,
    due_stage,
    reminder_due,
    version_of,
)

REMINDER_CONCURRENCY = 16


@dataclass(frozen=True)
class DueUser:
    facts: PasswordFacts
    expiry: PasswordExpiry


@dataclass(frozen=True)
class Decision:
    """The stage a page's user is reminded of (`queue` False: this run queued it on an earlier delivery of the page,
    nothing is sent again), and the user's slot as read."""

    user: DueUser
    stage: int
    queue: bool
    slot: ExpirySlot | None


@dataclass(frozen=True)
class ExpiryReminderQueueing:
    """Queues a page's due reminders (module docstring): `slots` holds the stages sent, `messages` carries them.

    In two steps, so a page's rows (which name each user's stage) can be written while the reminders are queued:
    `decide` reads the slots of the users whose stage is due and decides, `queue` sends and claims."""

    slots: ExpirySlots
    messages: MessageQueues

    async def decide(self, run_id: str, users: Sequence[DueUser], stages: Sequence[int],
                     now: datetime) -> list[Decision]:
        gate = asyncio.Semaphore(REMINDER_CONCURRENCY)

        async def decide_one(user: DueUser) -> Decision | None:
            async with gate:
                slot = await self.slots.get(user.facts.user_id)
            mine = _claimed_by(slot, run_id, user.expiry.password_version)
            if mine is not None:
                return Decision(user, mine, False, slot)  # queued by this run on an earlier delivery of this page
            stage = reminder_due(user.expiry, stages, slot.sent if slot else None, now)
            return None if stage is None else Decision(user, stage, True, slot)

        due = [u for u in users if due_stage(u.expiry, stages, now) is not None]
        return [d for d in await asyncio.gather(*(decide_one(u) for u in due)) if d is not None]

    async def queue(self, run_id: str, decisions: Sequence[Decision], sms: bool, now: datetime) -> dict[str, int]:
        """Send and claim what `decide` decided; the stage this run queued for each user it reminded (now or on an
        earlier delivery of this page)."""
        gate = asyncio.Semaphore(REMINDER_CONCURRENCY)

        async def send(decision: Decision) -> tuple[str, int | None]:
            uid = decision.user.facts.user_id
            if not decision.queue:
                return uid, decision.stage
            async with gate:
                return uid, await self._send_and_claim(run_id, decision, sms, now)

        return {uid: stage for uid, stage in await asyncio.gather(*(send(d) for d in decisions)) if stage is not None}

    async def _send_and_claim(self, run_id: str, decision: Decision, sms: bool, now: datetime) -> int | None:
        facts, expiry, stage, slot = decision.user.facts, decision.user.expiry, decision.stage, decision.slot
        if expiry.password_version is None or expiry.expires_at is None:
            return None
        message = PasswordExpiryReminder(
            kind="password-expiry-reminder", id=reminder_id(facts.user_id, expiry.password_version, stage),
            userId=facts.user_id, stage=stage, expiresAt=version_of(expiry.expires_at),
            passwordVersion=expiry.password_version, synced=facts.synced, sms=sms,
            versionSource=expiry.version_source.value)
        await self.messages.send(queues.NOTIFICATIONS, message.model_dump())
        sent = after_sending(slot.sent if slot else None, expiry.password_version, stage)
        if await self.slots.claim(facts.user_id, slot, sent, run_id, now):
            return stage
        # another delivery of this page won the claim
        return _claimed_by(await self.slots.get(facts.user_id), run_id, expiry.password_version)


def _claimed_by(slot: ExpirySlot | None, run_id: str, password_version: str | None) -> int | None:
    """The stage `run_id` claimed for this password (a run claims at most one stage per user), or None."""
    if slot is None or slot.claimed_by != run_id or slot.sent.password_version != password_version \
            or not slot.sent.stages:
        return None
    return slot.sent.stages[-1]
