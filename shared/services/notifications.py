"""The notifications worker's use cases: verification codes and registration reminders, each idempotent.

Queue `sspr-notifications` carries ids only (never codes): the worker makes the code itself, stores its HMAC on
the challenge, then sends it. Idempotency (F1):
- verification-code: the challenge names the one message allowed to send its current code (`message_id`, set
  when the send is asked for) and that message's delivery state. A redelivered or concurrent copy finds it
  delivered or being sent and does nothing; a superseded message (a resend came later) does nothing; a failed
  send is marked so the queue's retry issues a fresh code. The one window where two codes can go out is a worker
  crash after the send and before "delivered" is stored: after `SENDING_LEASE` the retry sends a new code, and
  only the newest works.
- registration-reminder: a ledger row per message id is claimed before the mail and marked sent after; a failed
  mail releases the claim (only this worker's claim, by its ETag) and the original error goes to the queue.
Invalid messages raise `InvalidNotification` before any side effect, so they end in the poison queue (D5, F2).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared import i18n, queues
from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.graph import GraphGateway, UserContact
from shared.adapters.mail import MailLedger, MailSender, mail_texts
from shared.adapters.phone import PhoneSender, send_once
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain import codes
from shared.domain.codes import Challenge, Channel, mask_contact
from shared.domain.notifications import (
    PasswordResetNotice,
    RegistrationReminder,
    VerificationCode,
    parse_notification,
)
from shared.errors import SsprError, StorageUnavailable
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")

QUEUE = queues.NOTIFICATIONS
REMINDER_LEASE = timedelta(minutes=2)

Clock = Callable[[], datetime]


def language_of(contact: UserContact | None) -> str:
    return i18n.language_of(contact.preferred_language if contact else None)


def _spoken(code: str) -> str:
    return ", ".join(code)


class NotificationService:
    def __init__(self, challenges: ChallengeStore, mail: MailSender, phone: PhoneSender, graph: GraphGateway,
                 ledger: MailLedger, policy: PolicyCache, code_key: bytes, register_url: str, clock: Clock,
                 reset_challenges: ChallengeStore | None = None,
                 security_info: SecurityInfoStore | None = None) -> None:
        self._challenges = challenges
        self._reset_challenges = reset_challenges or challenges
        self._security_info = security_info
        self._mail = mail
        self._phone = phone
        self._graph = graph
        self._ledger = ledger
        self._policy = policy
        self._key = code_key
        self._register_url = register_url
        self._clock = clock

    async def handle(self, body: str) -> None:
        message = parse_notification(body)
        if isinstance(message, VerificationCode):
            await self.send_verification_code(message)
        elif isinstance(message, PasswordResetNotice):
            await self.send_password_reset_notice(message)
        else:
            await self.send_registration_reminder(message)

    # ---- verification codes ----------------------------------------------------------------------------

    async def send_verification_code(self, message: VerificationCode) -> bool:
        """Issue and send the challenge's code if this message may; True when a code went out."""
        ref = message.challenge
        policy = await self._policy.get()
        code = codes.new_code(codes.code_length(policy.codes))
        digest = codes.code_digest(self._key, ref.partition, ref.row, code)
        now = self._clock()

        def issue(challenge: Challenge) -> tuple[bool, Challenge]:
            if not codes.should_send(challenge, message.id, now):
                return False, challenge
            return True, codes.issue_code(challenge, digest, now, codes.code_ttl(policy.codes, challenge.channel))

        store = self._reset_challenges if ref.store == "reset" else self._challenges
        outcome = await store.change(ref.partition, ref.row, issue)
        if outcome is None or not outcome[0]:
            log.info("verification code message %s: nothing to send (delivered, superseded or gone)", message.id)
            return False
        challenge = outcome[1]
        minutes = int(codes.code_ttl(policy.codes, challenge.channel).total_seconds() // 60)
        try:
            await self._deliver(challenge, code, minutes, reset=ref.store == "reset")
        except Exception:
            await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_send_failed(c, self._clock())
                                                                            if c.message_id == message.id else c))
            raise
        await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_delivered(c, self._clock())
                                                                        if c.message_id == message.id else c))
        log.info("verification code of %s sent by %s to %s", challenge.method, challenge.channel,
                 mask_contact(challenge.contact))
        return True

    async def _deliver(self, challenge: Challenge, code: str, minutes: int, reset: bool = False) -> None:
        contact = await self._contact_or_none(challenge.user_id)
        texts = mail_texts(language_of(contact))
        if challenge.channel is Channel.EMAIL:
            name = contact.display_name if contact else ""
            intro = texts["code.resetIntro"] if reset else texts["code.intro"]
            await self._mail.send([challenge.contact], texts["code.subject"],
                                  _code_mail(texts, name, code, minutes, intro))
            return
        # This code's send, named the same on every retry of it (the provider drops a repeat, F1).
        once = send_once(challenge.message_id or "", challenge.send_count, challenge.sent_at or self._clock())
        if challenge.channel is Channel.SMS:
            await self._phone.send(Channel.SMS, challenge.contact, texts["code.sms"].format(code=code, minutes=minutes),
                                   once)
        else:
            await self._phone.send(Channel.VOICE, challenge.contact,
                                   texts["code.voice"].format(spokenCode=_spoken(code)), once)

    async def _contact_or_none(self, user_id: str) -> UserContact | None:
        try:
            return await self._graph.user_contact(user_id)
        except SsprError:
            return None  # the language and greeting are a nicety: the code still goes out, in English

    # ---- password reset notices (B4) ------------------------------------------------------------------------

    async def send_password_reset_notice(self, message: PasswordResetNotice) -> bool:
        """Mail the user (every registered and directory address) and, for an administrator's reset, the Global
        Administrators; once per message (ledger claim as for reminders). Never the password, only the time."""
        claim = await self._ledger.claim(message.id, self._clock(), REMINDER_LEASE)
        if claim is None:
            log.info("password reset notice %s already sent or being sent", message.id)
            return False
        try:
            policy = await self._policy.get()
            contact = await self._contact_or_none(message.userId)
            registered: list[str] = []
            if self._security_info is not None:
                registered = [m.contact for m in await self._security_info.methods(message.userId)
                              if m.kind.value == "email" and m.contact]
            directory = [a for a in ((contact.mail, *contact.other_mails) if contact else ()) if a]
            recipients = list(dict.fromkeys([*registered, *directory]))
            texts = mail_texts(language_of(contact))
            when = message.resetAt.replace("T", " ")[:16] + " UTC"
            help_line = _help_line(texts, policy.helpdesk.url, policy.helpdesk.email)
            name = contact.display_name if contact else ""
            if policy.notify_users_on_reset and recipients:
                await self._mail.send(recipients, texts["reset.subject"], _reset_mail(texts, name, when, help_line))
            if message.administrator and policy.notify_admins_on_admin_reset:
                admins = [a for a in await self._graph.global_administrator_mails() if a not in recipients]
                if admins:
                    admin_texts = mail_texts("en")
                    await self._mail.send(admins, admin_texts["reset.adminSubject"], _page([
                        html.escape(admin_texts["reset.adminBody"].format(name=name or message.userId, time=when)),
                    ]))
        except Exception:
            try:
                await self._ledger.release(message.id, claim)
            except StorageUnavailable as release_failed:
                log.warning("password reset notice %s: releasing its claim failed: %s", message.id, release_failed)
            raise
        await self._ledger.mark_sent(message.id, self._clock())
        log.info("password reset notice %s sent to %d address(es)", message.id, len(recipients))
        return True

    # ---- registration reminders --------------------------------------------------------------------------

    async def send_registration_reminder(self, message: RegistrationReminder) -> bool:
        claim = await self._ledger.claim(message.id, self._clock(), REMINDER_LEASE)
        if claim is None:
            log.info("registration reminder %s already sent or being sent", message.id)
            return False
        try:
            contact = await self._graph.user_contact(message.userId)
            recipients = list(dict.fromkeys(a for a in (contact.mail, *contact.other_mails) if a))
            if recipients:
                texts = mail_texts(language_of(contact))
                link = self._register_url
                await self._mail.send(recipients, texts["reminder.subject"],
                                      _reminder_mail(texts, contact.display_name, link))
            else:
                log.info("registration reminder %s: user %s has no mail address", message.id, message.userId)
        except Exception:
            try:
                await self._ledger.release(message.id, claim)
            except StorageUnavailable as release_failed:
                # The claim lapses after REMINDER_LEASE anyway; the send's error is the one the queue must see.
                log.warning("registration reminder %s: releasing its claim failed: %s", message.id, release_failed)
            raise
        await self._ledger.mark_sent(message.id, self._clock())
        return True


def _reset_mail(texts: dict[str, str], name: str, when: str, help_line: str) -> str:
    e = html.escape
    return _page([
        e(texts["reset.greeting"].format(name=name or "")),
        e(texts["reset.body"].format(time=when)),
        e(texts["reset.notMe"]),
        e(help_line),
    ])


def _page(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f'<!DOCTYPE html><html><body style="font-family:Segoe UI,Arial,sans-serif">{body}</body></html>'


def _code_mail(texts: dict[str, str], name: str, code: str, minutes: int, intro: str) -> str:
    e = html.escape
    return _page([
        e(texts["code.greeting"].format(name=name or "")),
        e(intro),
        f'<strong style="font-size:1.5em;letter-spacing:0.2em">{e(code)}</strong>',
        e(texts["code.expires"].format(minutes=minutes)),
        e(texts["code.ignore"]),
    ])


def _help_line(texts: dict[str, str], url: str | None, email: str | None) -> str:
    if url:
        return texts["reset.helpUrl"].format(url=url)
    if email:
        return texts["reset.helpEmail"].format(email=email)
    return texts["reset.helpDefault"]


def _reminder_mail(texts: dict[str, str], name: str, link: str) -> str:
    e = html.escape
    return _page([
        e(texts["reminder.greeting"].format(name=name or "")),
        e(texts["reminder.body"]),
        f'<a href="{e(link, quote=True)}">{e(texts["reminder.link"])}</a>',
        e(texts["reminder.footer"]),
    ])
