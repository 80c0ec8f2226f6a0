"""The notifications worker: parse a queue message and hand it to the one use case of its kind.

Invalid messages raise `InvalidNotification` before any side effect, so they end in the poison queue (D5, F2).
A password-expiry reminder reaching a worker built without its use case (tests' hosts) fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.notifications import (
    HelpdeskConfirm,
    HelpdeskDigest,
    HelpdeskLink,
    HelpdeskNotice,
    InvalidNotification,
    PasswordExpiryReminder,
    PasswordResetNotice,
    RegistrationReminder,
    SessionRevocation,
    VerificationCode,
    parse_notification,
)
from shared.services.notifications.code_delivery import CodeDelivery
from shared.services.notifications.expiry import ExpiryReminderMails
from shared.services.notifications.helpdesk import HelpdeskConfirms, HelpdeskDigests, HelpdeskLinks, HelpdeskNotices
from shared.services.notifications.notices import ResetNotices
from shared.services.notifications.reminders import ReminderMails
from shared.services.notifications.revocations import SessionRevocations


@dataclass(frozen=True)
class NotificationService:
    codes: CodeDelivery
    notices: ResetNotices
    reminders: ReminderMails
    revocations: SessionRevocations | None = None
    expiry: ExpiryReminderMails | None = None
    helpdesk: tuple[HelpdeskNotices, HelpdeskLinks, HelpdeskConfirms, HelpdeskDigests] | None = None

    async def handle(self, body: str) -> None:
        message = parse_notification(body)
        if isinstance(message, VerificationCode):
            await self.codes.send(message)
        elif isinstance(message, PasswordResetNotice):
            await self.notices.send(message)
        elif isinstance(message, RegistrationReminder):
            await self.reminders.send(message)
        elif isinstance(message, PasswordExpiryReminder):
            if self.expiry is None:
                raise InvalidNotification("this worker does not send password expiry reminders")
            await self.expiry.send(message)
        elif isinstance(message, HelpdeskNotice | HelpdeskLink | HelpdeskConfirm | HelpdeskDigest):
            await self._helpdesk(message)
        elif isinstance(message, SessionRevocation) and self.revocations is not None:
            await self.revocations.revoke(message)
        else:  # a worker built without password targets: the message stays for the queue's next delivery
            raise RuntimeError(f"no handler for a {message.kind} message here")

    async def _helpdesk(self, message: HelpdeskNotice | HelpdeskLink | HelpdeskConfirm | HelpdeskDigest) -> None:
        if self.helpdesk is None:
            raise InvalidNotification("this worker does not send the helpdesk's mails")
        notices, links, confirms, digests = self.helpdesk
        if isinstance(message, HelpdeskNotice):
            await notices.send(message)
        elif isinstance(message, HelpdeskLink):
            await links.send(message)
        elif isinstance(message, HelpdeskConfirm):
            await confirms.send(message)
        else:
            await digests.send(message)
