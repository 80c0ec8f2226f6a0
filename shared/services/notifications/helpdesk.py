"""The helpdesk's mails, each once per queue message (the ledger, `outbox.Outbox.once`):

- HelpdeskNotices: the user hears of each verification and action on every address they have (registered and
  directory), with the time, the agent and what to do if it was not them.
- HelpdeskLinks: the one-time link is made here, its HMAC stored on the link row (LINK_BOUND), and mailed to the
  registered address on that row (LINK_ONLY_TO_REGISTERED). A retry after a failed or unknown send makes a new
  secret, so only the newest link works (like a code, A8).
- HelpdeskDigests: the day's helpdesk rows of the audit, mailed to the Global Administrators, once per day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from shared.adapters.audit_store import AuditPage, AuditQuery
from shared.adapters.mail import mail_texts
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain import helpdesk_links
from shared.domain.audit import Activity
from shared.domain.codes import mask_contact
from shared.domain.helpdesk import Verification
from shared.domain.helpdesk_links import LinkPurpose, ResetLink
from shared.domain.notifications import HelpdeskConfirm, HelpdeskDigest, HelpdeskLink, HelpdeskNotice
from shared.services.notifications.bodies import (
    help_line,
    helpdesk_confirm_mail,
    helpdesk_digest_mail,
    helpdesk_link_mail,
    helpdesk_notice_mail,
    mail_time,
)
from shared.services.notifications.outbox import OnceMail
from shared.services.notifications.recipients import contact_or_none, language_of, user_addresses
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")

HELPDESK_ACTIVITIES = (Activity.HELPDESK_VERIFICATION, Activity.HELPDESK_BLOCK_CLEARED, Activity.HELPDESK_UNLOCK,
                       Activity.HELPDESK_RESET_LINK, Activity.HELPDESK_ACCESS_PASS_LINK, Activity.HELPDESK_APPROVAL,
                       Activity.HELPDESK_PAUSED, Activity.RESET_HELPDESK_LINK)
DIGEST_ROWS = 500


class HelpdeskRows(Protocol):
    async def get(self, verification_id: str) -> Verification | None: ...

    async def link(self, verification_id: str) -> ResetLink | None: ...

    async def change_link(self, verification_id: str,
                          rule: Callable[[ResetLink | None], tuple[Any, ResetLink | None]]) -> tuple[Any, Any]: ...


class AuditReader(Protocol):
    async def query(self, query: AuditQuery, page_size: int, continuation: str | None = ...) -> AuditPage: ...


@dataclass(frozen=True)
class HelpdeskNotices(OnceMail[HelpdeskNotice]):
    what: ClassVar[str] = "helpdesk notice"

    policy: PolicyCache
    rows: HelpdeskRows
    security_info: SecurityInfoStore

    async def _send(self, message: HelpdeskNotice) -> None:
        policy = await self.policy.get()
        contact = await contact_or_none(self.out.contacts, message.userId)
        recipients = await user_addresses(message.userId, contact, self.security_info)
        if not recipients:
            log.warning("helpdesk notice %s: user %s has no address to tell", message.id, message.userId)
            return
        verification = await self.rows.get(message.verificationId)
        link = await self.rows.link(message.verificationId) if message.event.endswith("link-sent") else None
        language = language_of(contact)
        texts = mail_texts(language)
        agent = verification.agent_name if verification else "?"
        body = texts[f"helpdesk.{message.event}"].format(agent=agent, time=mail_time(message.at),
                                                        address=mask_contact(link.contact) if link else "")
        await self.out.mail.send(recipients, texts["helpdesk.subject"],
                                 helpdesk_notice_mail(texts, contact.display_name if contact else "", body,
                                                      help_line(texts, policy.helpdesk.url, policy.helpdesk.email)),
                                 language)


@dataclass(frozen=True)
class HelpdeskLinks(OnceMail[HelpdeskLink]):
    what: ClassVar[str] = "helpdesk link"

    rows: HelpdeskRows
    reset_page: str
    code_key: bytes

    async def _send(self, message: HelpdeskLink) -> None:
        secret = helpdesk_links.new_secret()
        digest = helpdesk_links.link_digest(self.code_key, message.verificationId, secret)
        now = self.out.clock()

        def issue(link: ResetLink | None) -> tuple[bool, ResetLink | None]:
            if link is None or not helpdesk_links.should_issue(link, message.id):
                return False, None
            return True, helpdesk_links.issued(link, digest, now)

        issued, link = await self.rows.change_link(message.verificationId, issue)
        if not issued or link is None:
            log.info("helpdesk link message %s: nothing to send (replaced, used or gone)", message.id)
            return
        contact = await contact_or_none(self.out.contacts, link.user_id)
        language = language_of(contact)
        texts = mail_texts(language)
        access_pass = link.purpose is LinkPurpose.ACCESS_PASS
        until = mail_time((link.expires_at or now).astimezone(UTC).isoformat())
        url = f"{self.reset_page}#link={helpdesk_links.token(link.verification_id, secret)}"
        try:
            await self.out.mail.send([link.contact], texts["helpdesk.link.accessPassSubject" if access_pass
                                                           else "helpdesk.link.subject"],
                                     helpdesk_link_mail(texts, contact.display_name if contact else "",
                                                        link.agent_name, url, until, access_pass), language)
        except Exception:
            await self.rows.change_link(message.verificationId, lambda current: (
                None, helpdesk_links.send_failed(current) if current and current.message_id == message.id else None))
            raise
        log.info("helpdesk link of verification %s sent to %s", link.verification_id, mask_contact(link.contact))


@dataclass(frozen=True)
class HelpdeskConfirms(OnceMail[HelpdeskConfirm]):
    """PASSKEY_ON_OWN_DEVICE: a link to the user's own reset page, where they confirm with a passkey. The link names
    the verification only: the passkey on the user's device is the proof."""

    what: ClassVar[str] = "helpdesk passkey confirmation"

    rows: HelpdeskRows
    security_info: SecurityInfoStore
    reset_page: str

    async def _send(self, message: HelpdeskConfirm) -> None:
        verification = await self.rows.get(message.verificationId)
        if verification is None:
            return
        contact = await contact_or_none(self.out.contacts, verification.user_id)
        recipients = await user_addresses(verification.user_id, contact, self.security_info)
        if not recipients:
            return
        language = language_of(contact)
        texts = mail_texts(language)
        url = f"{self.reset_page}#confirm={verification.verification_id}"
        await self.out.mail.send(recipients, texts["helpdesk.confirm.subject"],
                                 helpdesk_confirm_mail(texts, contact.display_name if contact else "",
                                                       verification.agent_name, url), language)


@dataclass(frozen=True)
class HelpdeskDigests(OnceMail[HelpdeskDigest]):
    what: ClassVar[str] = "helpdesk digest"

    audit: AuditReader

    async def _send(self, message: HelpdeskDigest) -> None:
        start = datetime.fromisoformat(message.day).replace(tzinfo=UTC)
        end = start + timedelta(days=1) - timedelta(milliseconds=1)
        rows: list[tuple[str, str, str, str, str]] = []
        for activity in HELPDESK_ACTIVITIES:
            page = await self.audit.query(AuditQuery(start, end, None, activity), DIGEST_ROWS)
            rows.extend((e.time.strftime("%H:%M:%S"), e.actor.display,
                         str(e.details.get("userPrincipalName") or e.details.get("username") or e.target_user_id or ""),
                         f"{e.activity.value}: {e.reason or ''}", e.outcome.value) for e in page.events)
        if not rows:
            log.info("helpdesk digest of %s: no helpdesk activity, nothing to send", message.day)
            return
        admins = await self.out.contacts.global_administrator_mails()
        if admins:
            texts = mail_texts("en")
            await self.out.mail.send(admins, texts["helpdesk.digest.subject"].format(day=message.day),
                                     helpdesk_digest_mail(texts, message.day, sorted(rows)))
