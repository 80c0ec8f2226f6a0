"""Password reset notices (B4): mail the user, and for an administrator's reset the Global Administrators, once
per message. A notice carries the time of the reset, never the password."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.adapters.mail import mail_texts
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain.notifications import PasswordResetNotice
from shared.services.notifications.bodies import admin_reset_mail, help_line, mail_time, reset_mail
from shared.services.notifications.outbox import Outbox
from shared.services.notifications.recipients import contact_or_none, language_of, user_addresses
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")


@dataclass(frozen=True)
class ResetNotices:
    out: Outbox
    policy: PolicyCache
    security_info: SecurityInfoStore | None = None

    async def send(self, message: PasswordResetNotice) -> bool:
        """Mail every registered and directory address of the user (if the policy says so) and, for an
        administrator's reset, the Global Administrators; True when this call sent the notice."""
        sent, recipients = await self.out.once(message.id, "password reset notice", lambda: self._send(message))
        if sent:
            log.info("password reset notice %s sent to %d address(es)", message.id, recipients)
        return sent

    async def _send(self, message: PasswordResetNotice) -> int:
        """The notice's mails; how many user addresses it went to (or would have, if the policy allowed)."""
        policy = await self.policy.get()
        contact = await contact_or_none(self.out.contacts, message.userId)
        recipients = await user_addresses(message.userId, contact, self.security_info)
        language = language_of(contact)
        texts = mail_texts(language)
        when = mail_time(message.resetAt)
        name = contact.display_name if contact else ""
        # A Temporary Access Pass is always told (I3): like a password, it lets whoever holds it in.
        if (policy.notify_users_on_reset or message.action == "accessPass") and recipients:
            help_text = help_line(texts, policy.helpdesk.url, policy.helpdesk.email)
            await self.out.mail.send(recipients, texts[f"{message.action}.subject"],
                                     reset_mail(texts, name, when, help_text, message.action), language)
        if message.administrator and policy.notify_admins_on_admin_reset and message.action != "unlock":
            admins = [a for a in await self.out.contacts.global_administrator_mails() if a not in recipients]
            if admins:
                admin_texts = mail_texts("en")
                await self.out.mail.send(admins, admin_texts[f"{message.action}.adminSubject"],
                                         admin_reset_mail(admin_texts, name or message.userId, when, message.action))
        return len(recipients)
