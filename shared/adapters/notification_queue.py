"""Puts notification requests on queue `notifications` (ids only; the worker makes and sends the code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from shared import queues
from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors
from shared.domain.codes import Challenge
from shared.domain.notifications import ChallengeRef, PasswordResetNotice, VerificationCode, new_message_id


@dataclass(frozen=True)
class NotificationQueue:
    """Puts notification requests on `sspr-notifications` (ids only)."""

    storage: StorageClients

    async def verification_code(self, challenge: Challenge, message_id: str,
                                store: Literal["registration", "reset"] = "registration") -> None:
        message = VerificationCode(
            kind="verification-code", id=message_id,
            challenge=ChallengeRef(partition=challenge.partition, row=challenge.row, store=store),
        )
        await self._send(message)

    async def password_reset(self, user_id: str, reset_at: datetime, administrator: bool) -> None:
        await self._send(PasswordResetNotice(kind="password-reset", id=new_message_id(), userId=user_id,
                                             resetAt=reset_at.isoformat(), administrator=administrator))

    async def _send(self, message: BaseModel) -> None:
        queue = await self.storage.queue_ready(queues.NOTIFICATIONS)
        with storage_errors("notification enqueue"):
            await queue.send_message(message.model_dump_json())
