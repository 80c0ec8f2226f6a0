"""Registration reminders: mail the user a link to register security info, once per queue message."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.adapters.mail import MailLedger, mail_texts
from shared.domain.clock import Clock
from shared.domain.notifications import RegistrationReminder
from shared.services.notifications.bodies import reminder_mail
from shared.services.notifications.branded import Mailer
from shared.services.notifications.once import mail_once
from shared.services.notifications.recipients import Contacts, directory_addresses, language_of

log = logging.getLogger("sspr.notifications")


@dataclass(frozen=True)
class ReminderMails:
    mail: Mailer
    contacts: Contacts
    ledger: MailLedger
    register_url: str
    clock: Clock

    async def send(self, message: RegistrationReminder) -> bool:
        """True when this call sent the reminder (or found no address to send it to)."""
        sent, _ = await mail_once(self.ledger, self.clock, message.id, "registration reminder",
                                  lambda: self._send(message))
        return sent

    async def _send(self, message: RegistrationReminder) -> None:
        contact = await self.contacts.user_contact(message.userId)
        recipients = list(dict.fromkeys(directory_addresses(contact)))
        if not recipients:
            log.info("registration reminder %s: user %s has no mail address", message.id, message.userId)
            return
        language = language_of(contact)
        texts = mail_texts(language)
        await self.mail.send(recipients, texts["reminder.subject"],
                             reminder_mail(texts, contact.display_name, self.register_url), language)
