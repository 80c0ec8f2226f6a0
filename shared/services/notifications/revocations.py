"""Ending a user's sign-in sessions after a reset, when Graph could not end them during it (security.md B4, F6).

The reset queued a `SessionRevocation` (ids only); this ends the sessions at the user's password target. A failure
raises, so the queue delivers the message again (host.json: every `visibilityTimeout`, 5 times) and then rests it
in the poison queue, where an operator replays it (docs/operations.md). Revoking twice is harmless: idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.domain.notifications import SessionRevocation
from shared.services.password_targets.base import PasswordTargets

log = logging.getLogger("sspr.notifications")


@dataclass(frozen=True)
class SessionRevocations:
    targets: PasswordTargets

    async def revoke(self, message: SessionRevocation) -> None:
        await self.targets.get(message.target).revoke_sessions(message.userId)
        log.info("sessions of user %s revoked after a reset (message %s)", message.userId, message.id)
