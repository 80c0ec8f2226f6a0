"""The one-time link a helpdesk agent sends a verified caller: the user opens it and sets their own password on the
reset page (or, with issue 17's pass, gets a Temporary Access Pass shown once), and the agent never learns either.

LINK_SINGLE_USE: a link opens one reset flow, once; opening it again (or racing it) is refused.
LINK_SHORT_LIVED: it works LINK_LIFETIME after it was sent, then never.
LINK_BOUND: the secret is stored only as an HMAC over the verification id and the secret (like codes, A2), on a
row in that verification's partition that names the user; the flow it opens is that user's, whatever else is
typed. A new link of the same verification replaces the digest: the old link stops working.
LINK_ONLY_TO_REGISTERED: the link is made and mailed by the notifications worker to an address the user
registered (the queue message carries ids only), so only whoever reads that mailbox holds it: not the agent, not
the caller on the phone (unless they are the user), not a log or a table.

    (requested) --worker issues and mails--> sent --opened once within LINK_LIFETIME--> used
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.ids import is_guid

LINK_LIFETIME = timedelta(minutes=30)
LINK_ROW = "link"
LINK_SECRET_BYTES = 32
_SECRET = re.compile(r"[A-Za-z0-9_-]{40,64}")


class LinkPurpose(StrEnum):
    RESET = "reset"  # the reset page's password step
    ACCESS_PASS = "access-pass"  # the reset page hands the user a Temporary Access Pass (issue 17)


class LinkVerdict(StrEnum):
    OPENED = "opened"
    REFUSED = "refused"  # wrong, expired, used, replaced or never sent: one answer for all


@dataclass(frozen=True)
class ResetLink:
    verification_id: str
    user_id: str
    purpose: LinkPurpose
    contact: str  # the registered address the link goes to (not a secret: the user registered it)
    agent_name: str
    created_at: datetime
    message_id: str  # the queued message allowed to make and send this link
    secret_digest: str | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    used_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)


def new_secret() -> str:
    return secrets.token_urlsafe(LINK_SECRET_BYTES)


def link_digest(key: bytes, verification_id: str, secret: str) -> str:
    return hmac.new(key, f"helpdesk-link|{verification_id}|{secret}".encode(), hashlib.sha256).hexdigest()


def token(verification_id: str, secret: str) -> str:
    """What the link's fragment carries (`#link=<token>`): never sent to a server by the browser on the way in."""
    return f"{verification_id}.{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    verification_id, sep, secret = text.partition(".")
    if not sep or not is_guid(verification_id) or not _SECRET.fullmatch(secret):
        return None
    return verification_id.lower(), secret


def should_issue(link: ResetLink, message_id: str) -> bool:
    """Only the message the link names makes its secret (a newer link's message replaced it otherwise). The ledger
    sends each message's mail once; a retry after a crash between the secret and the mail makes a new secret, so
    only the newest link works."""
    return link.message_id == message_id and link.used_at is None


def issued(link: ResetLink, digest: str, now: datetime) -> ResetLink:
    return replace(link, secret_digest=digest, sent_at=now, expires_at=now + LINK_LIFETIME)


def send_failed(link: ResetLink) -> ResetLink:
    """The mail did not go: the queue's retry of the same message makes a new secret."""
    return replace(link, secret_digest=None, sent_at=None, expires_at=None)


def opened(link: ResetLink, key: bytes, secret: str, now: datetime) -> tuple[LinkVerdict, ResetLink]:
    if link.secret_digest is None or link.used_at is not None or link.expires_at is None or now >= link.expires_at:
        return LinkVerdict.REFUSED, link
    if not hmac.compare_digest(link_digest(key, link.verification_id, secret), link.secret_digest):
        return LinkVerdict.REFUSED, link
    return LinkVerdict.OPENED, replace(link, used_at=now, secret_digest=None)
