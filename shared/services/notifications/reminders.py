"""Registration reminders: mail the user a link to register security info, once per queue message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from shared.adapters.mail import mail_texts
from shared.domain.notifications import RegistrationReminder
from shared.services.notifications.bodies import reminder_mail
from shared.services.notifications.outbox import OnceMail
from shared.services.notifications.recipients import directory_addresses, language_of

log = logging.getLogger("sspr.notifications")


@dataclass(frozen=True)
class ReminderMails(OnceMail[RegistrationReminder]):
    what: ClassVar[str] = "registration reminder"

    register_url: str

    async def _send(self, message: RegistrationReminder) -> None:
        contact = await self.out.contacts.user_contact(message.userId)
        recipients = list(dict.fromkeys(directory_addresses(contact)))
        if not recipients:
            log.info("registration reminder %s: user %s has no mail address", message.id, message.userId)
            return
        language = language_of(contact)
        texts = mail_texts(language)
        await self.out.mail.send(recipients, texts["reminder.subject"],
                                 reminder_mail(texts, contact.display_name, self.register_url), language)
