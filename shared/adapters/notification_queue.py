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
from shared.domain.notifications import (
    ChallengeRef,
    HelpdeskConfirm,
    HelpdeskDigest,
    HelpdeskLink,
    HelpdeskNotice,
    PasswordResetNotice,
    SessionRevocation,
    VerificationCode,
    new_message_id,
)


@dataclass(frozen=True)
class NotificationQueue:
    """Puts notification requests on `sspr-notifications` (ids only)."""

    storage: StorageClients

    async def verification_code(self, challenge: Challenge, message_id: str,
                                store: Literal["registration", "reset", "helpdesk"] = "registration") -> None:
        message = VerificationCode(
            kind="verification-code", id=message_id,
            challenge=ChallengeRef(partition=challenge.partition, row=challenge.row, store=store),
        )
        await self._send(message)

    async def password_reset(self, user_id: str, reset_at: datetime, administrator: bool,
                             message_id: str | None = None, action: Literal["reset", "unlock", "change"] = "reset") -> None:
        """`message_id`: the same id for the same change, so a notice queued twice is mailed once."""
        await self._send(PasswordResetNotice(kind="password-reset", id=message_id or new_message_id(), userId=user_id,
                                             resetAt=reset_at.isoformat(), administrator=administrator,
                                             action=action))

    async def access_pass_issued(self, user_id: str, issued_at: datetime, administrator: bool) -> None:
        """A reset ended with a Temporary Access Pass: the notice says when, never the pass (I3)."""
        await self._send(PasswordResetNotice(kind="password-reset", id=new_message_id(), userId=user_id,
                                             resetAt=issued_at.isoformat(), administrator=administrator,
                                             action="accessPass"))

    async def revoke_sessions(self, user_id: str, target: str) -> None:
        await self._send(SessionRevocation(kind="revoke-sessions", id=new_message_id(), userId=user_id, target=target))

    async def helpdesk_notice(self, verification_id: str, user_id: str,
                              event: Literal["verified", "block-cleared", "unlocked", "reset-link-sent",
                                             "access-pass-link-sent"],
                              at: datetime, message_id: str) -> None:
        await self._send(HelpdeskNotice(kind="helpdesk-notice", id=message_id, verificationId=verification_id,
                                        userId=user_id, event=event, at=at.isoformat()))

    async def helpdesk_link(self, verification_id: str, message_id: str) -> None:
        await self._send(HelpdeskLink(kind="helpdesk-link", id=message_id, verificationId=verification_id))

    async def helpdesk_confirm(self, verification_id: str, message_id: str) -> None:
        await self._send(HelpdeskConfirm(kind="helpdesk-confirm", id=message_id, verificationId=verification_id))

    async def helpdesk_digest(self, day: str, message_id: str) -> None:
        await self._send(HelpdeskDigest(kind="helpdesk-digest", id=message_id, day=day))

    async def _send(self, message: BaseModel) -> None:
        queue = await self.storage.queue_ready(queues.NOTIFICATIONS)
        with storage_errors("notification enqueue"):
            await queue.send_message(message.model_dump_json())
