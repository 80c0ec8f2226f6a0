"""The notifications worker: parse a queue message and hand it to the one use case of its kind.

Invalid messages raise `InvalidNotification` before any side effect, so they end in the poison queue (D5, F2).
"""

from __future__ import annotations

from shared.domain.notifications import PasswordResetNotice, VerificationCode, parse_notification
from shared.services.notifications.code_delivery import CodeDelivery
from shared.services.notifications.notices import ResetNotices
from shared.services.notifications.reminders import ReminderMails


class NotificationService:
    def __init__(self, codes: CodeDelivery, notices: ResetNotices, reminders: ReminderMails) -> None:
        self.codes = codes
        self.notices = notices
        self.reminders = reminders

    async def handle(self, body: str) -> None:
        message = parse_notification(body)
        if isinstance(message, VerificationCode):
            await self.codes.send(message)
        elif isinstance(message, PasswordResetNotice):
            await self.notices.send(message)
        else:
            await self.reminders.send(message)
