"""Password-expiry reminders: tell the user when their password expires and what to do, once per queue message.

The message names the password it is about (`passwordVersion`): Entra's lastPasswordChangeDateTime, or for a synced
user whose AD expiry the on-premises agents report, AD's pwdLastSet (`versionSource`). A user who changed it since
(as Graph, or the agents' latest report, says now), was disabled or deleted gets nothing. The mail goes to the
directory's work address and other mails and to the email the user registered for password reset, in the user's
language; with `sms` the run also asked for a short text to the registered mobile phone (else the directory's). No
link signs anyone in: the change link is Microsoft's change page for cloud users (the user signs in there) or this
service's change page for users synced from Active Directory (old and new password), and the reset link is this
service's reset page.

Once each: the mail and the text are two sends, each claimed in the mail ledger under its own key, so a text that
fails (and is retried by the queue) never mails the user again. A text is named for the SMS provider by the time it
was first tried (kept in the ledger, `MailLedger.first_attempt`): ACS recognises a repeat of a request only within
5 minutes of that time ("repeatable requests"), so a retry inside that window repeats it exactly and one after it
is a new request (ACS would refuse the old one as too old, 412, and could not tell whether it went out).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.adapters.graph import ExpiryContact
from shared.adapters.mail import mail_texts
from shared.adapters.phone import ACS_REPEATABILITY_WINDOW, PhoneSender, SendOnce, send_once
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain.codes import Channel, ContactError, mask_contact, normalise_phone
from shared.domain.notifications import PasswordExpiryReminder
from shared.domain.password_change import CLOUD_CHANGE_URL
from shared.domain.password_expiry import DAY, parse_instant
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod
from shared.i18n import language_of
from shared.services.notifications.bodies import expiry_mail, expiry_subject
from shared.services.notifications.outbox import Outbox

log = logging.getLogger("sspr.notifications")

Due = tuple[ExpiryContact, datetime, list[RegisteredMethod]]  # the user's contact, the expiry, registered methods


class OnPremVersions(Protocol):
    """The agents' latest report of an AD account (shared/services/onprem/expiry.py)."""

    async def password_version(self, sid: str) -> tuple[bool, str | None]: ...


@dataclass(frozen=True)
class ExpiryLinks:
    """Where a reminder sends the user: this service's change page (synced users) and reset page."""

    change_url: str
    reset_url: str
    cloud_change_url: str = CLOUD_CHANGE_URL


@dataclass(frozen=True)
class ExpiryReminderMails:
    out: Outbox
    phone: PhoneSender
    security_info: SecurityInfoStore
    links: ExpiryLinks
    on_premises: OnPremVersions | None = None

    async def send(self, message: PasswordExpiryReminder) -> bool:
        """True when this call handled the reminder's mail (sent it, or found it no longer due); the text, when the
        run asked for one, is sent once on its own."""
        sent, _ = await self.out.once(message.id, "password expiry reminder",
                                      lambda: self._when_due(message, self._mail))
        if message.sms and self.phone.can_send(Channel.SMS):
            await self.out.once(_text_key(message.id), "password expiry reminder text",
                                lambda: self._when_due(message, self._text))
        return sent

    async def _when_due(self, message: PasswordExpiryReminder,
                        send: Callable[[PasswordExpiryReminder, Due], Awaitable[None]]) -> None:
        due = await self._due(message)
        if due is not None:
            await send(message, due)

    async def _due(self, message: PasswordExpiryReminder) -> Due | None:
        """The user's contact, the expiry and the user's registered methods, while the reminder is still due; None
        (logged) otherwise."""
        contact = await self.out.contacts.expiry_contact(message.userId)
        if contact is None or not contact.account_enabled or not await self._same_password(message, contact):
            log.info("password expiry reminder %s: no longer due (user gone, disabled or password changed)",
                     message.id)
            return None
        expires = parse_instant(message.expiresAt)
        if expires is None or expires <= self.out.clock():
            log.info("password expiry reminder %s: the password has expired meanwhile", message.id)
            return None
        return contact, expires, await self.security_info.methods(message.userId)

    async def _same_password(self, message: PasswordExpiryReminder, contact: ExpiryContact) -> bool:
        if message.versionSource == "cloud":
            return contact.password_version == message.passwordVersion
        if self.on_premises is None or contact.on_premises_sid is None:
            return False
        reported, version = await self.on_premises.password_version(contact.on_premises_sid)
        return reported and version == message.passwordVersion

    async def _mail(self, message: PasswordExpiryReminder, due: Due) -> None:
        contact, expires, registered = due
        addresses = [m.contact for m in registered if m.kind is Method.EMAIL and m.contact]
        recipients = list(dict.fromkeys(a for a in (contact.mail, *contact.other_mails, *addresses) if a))
        language = language_of(contact.preferred_language)
        texts = mail_texts(language)
        days = max(1, math.ceil((expires - self.out.clock()) / DAY))
        if recipients:
            change = self.links.change_url if message.synced else self.links.cloud_change_url
            await self.out.mail.send(recipients, expiry_subject(texts, days),
                                     expiry_mail(texts, contact.display_name, contact.mail or "", _date(expires),
                                                 days, message.synced, change, self.links.reset_url), language)
        log.info("password expiry reminder %s (stage %d) mailed to %d address(es)", message.id, message.stage,
                 len(recipients))

    async def _text(self, message: PasswordExpiryReminder, due: Due) -> None:
        contact, expires, registered = due
        phones = [m.contact for m in registered if m.kind is Method.MOBILE_PHONE and m.contact]
        texted = phones[0] if phones else _e164(contact.mobile_phone)
        if not texted:
            return
        texts = mail_texts(language_of(contact.preferred_language))
        await self.phone.send(Channel.SMS, texted, texts["expiry.sms"].format(date=_date(expires)),
                              await self._once(message))
        log.info("password expiry reminder %s (stage %d) texted to %s", message.id, message.stage,
                 mask_contact(texted))

    async def _once(self, message: PasswordExpiryReminder) -> SendOnce:
        """The text's name for the provider: its first try's time (kept in the ledger while ACS can still tell a
        repeat, a fresh time after that) and a request id of that try, the same on every retry within it."""
        first = await self.out.ledger.first_attempt(_text_key(message.id), self.out.clock(), TEXT_REPEAT_WINDOW)
        return send_once(f"{message.id}/{first.strftime('%Y%m%dT%H%M%S%f')}", 1, first)


# Inside ACS's tracking window, with a minute's margin for the clocks of the two sides.
TEXT_REPEAT_WINDOW = ACS_REPEATABILITY_WINDOW - timedelta(minutes=1)


def _text_key(message_id: str) -> str:
    return f"{message_id}-sms"


def _date(expires: datetime) -> str:
    return expires.strftime("%Y-%m-%d %H:%M UTC")


def _e164(number: str | None) -> str | None:
    """The directory's mobilePhone ("+46 70 123 45 67") in E.164, or None when it is no mobile number with its
    country code (the directory does not say which country a bare number is in)."""
    if not number:
        return None
    try:
        return normalise_phone(number, Method.MOBILE_PHONE)
    except ContactError:
        return None
