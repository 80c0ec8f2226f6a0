"""Password reset notices (B4): mail the user, and for an administrator's reset the Global Administrators, once
per message. A notice carries the time of the reset, never the password."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.adapters.mail import MailLedger, MailSender, mail_texts
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain.clock import Clock
from shared.domain.notifications import PasswordResetNotice
from shared.services.notifications.bodies import admin_reset_mail, help_line, reset_mail
from shared.services.notifications.once import mail_once
from shared.services.notifications.recipients import (
    AdminContacts,
    contact_or_none,
    directory_addresses,
    language_of,
)
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")


@dataclass(frozen=True)
class ResetNotices:
    mail: MailSender
    contacts: AdminContacts
    ledger: MailLedger
    policy: PolicyCache
    clock: Clock
    security_info: SecurityInfoStore | None = None

    async def send(self, message: PasswordResetNotice) -> bool:
        """Mail every registered and directory address of the user (if the policy says so) and, for an
        administrator's reset, the Global Administrators; True when this call sent the notice."""
        sent, recipients = await mail_once(self.ledger, self.clock, message.id, "password reset notice",
                                           lambda: self._send(message))
        if sent:
            log.info("password reset notice %s sent to %d address(es)", message.id, recipients)
        return sent

    async def _send(self, message: PasswordResetNotice) -> int:
        """The notice's mails; how many user addresses it went to (or would have, if the policy allowed)."""
        policy = await self.policy.get()
        contact = await contact_or_none(self.contacts, message.userId)
        registered: list[str] = []
        if self.security_info is not None:
            registered = [m.contact for m in await self.security_info.methods(message.userId)
                          if m.kind.value == "email" and m.contact]
        recipients = list(dict.fromkeys([*registered, *directory_addresses(contact)]))
        texts = mail_texts(language_of(contact))
        when = message.resetAt.replace("T", " ")[:16] + " UTC"
        name = contact.display_name if contact else ""
        if policy.notify_users_on_reset and recipients:
            help_text = help_line(texts, policy.helpdesk.url, policy.helpdesk.email)
            await self.mail.send(recipients, texts["reset.subject"], reset_mail(texts, name, when, help_text))
        if message.administrator and policy.notify_admins_on_admin_reset:
            admins = [a for a in await self.contacts.global_administrator_mails() if a not in recipients]
            if admins:
                admin_texts = mail_texts("en")
                await self.mail.send(admins, admin_texts["reset.adminSubject"],
                                      admin_reset_mail(admin_texts, name or message.userId, when))
        return len(recipients)
