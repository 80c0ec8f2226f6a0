"""One-time verification codes: the challenge state machine, its rules, and the contacts codes are sent to.

A challenge is one code-verification attempt of one flow (partition) and one method (row), e.g. a registration
session of an email address, or a reset flow and its SMS step. Its counters are named state and each rule
is a small function that reads like the policy text (security.md A1-A9):

    (no code) --issue_code--> ACTIVE --right code--> USED (final)
                                |  \\--wrong code x5--> LOCKED (final; every later submission is refused)
                                |--issue_code (resend): new code, old one invalid, failures kept
                                \\--ttl passes--> EXPIRED (a resend makes it ACTIVE again)

Every wrong submission counts, also those past the lock and those racing each other: `failed_attempts` is the
exact number of wrong answers (F3), the lock is `failed_attempts >= MAX_FAILED_ATTEMPTS`. A submission to a used,
expired or code-less challenge is refused without counting (there is nothing to guess).

Codes are never stored: only HMAC-SHA256(key, partition|row|code) (A2), so a code of flow X or method M fails in
flow Y or method N (A7), and comparison is constant-time (A3). Delivery state (which queued message may send the
current code, and whether it went out) lives on the challenge so the notifications worker is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from shared.domain.policy import EMAIL, MAX_EMAIL_LENGTH, Codes, Method

MIN_CODE_LENGTH = 6
MAX_FAILED_ATTEMPTS = 5
# A worker that claimed a send and went silent this long is presumed crashed; another may send a new code.
SENDING_LEASE = timedelta(minutes=2)
FailureCounts = tuple[tuple[Method, int], ...]  # wrong answers per method, sorted by method


def count_failure(failures: FailureCounts, method: Method) -> tuple[FailureCounts, bool]:
    """`failures` with one more wrong answer to `method`, and whether that one reached MAX_FAILED_ATTEMPTS (A9)."""
    counts = dict(failures)
    counts[method] = counts.get(method, 0) + 1
    return tuple(sorted(counts.items())), counts[method] >= MAX_FAILED_ATTEMPTS


class Channel(StrEnum):
    """How a code travels to its owner; each has its own lifetime in the policy (A4)."""

    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"


CHANNEL_OF_METHOD = {Method.EMAIL: Channel.EMAIL, Method.MOBILE_PHONE: Channel.SMS, Method.OFFICE_PHONE: Channel.VOICE}


class Delivery(StrEnum):
    """Where the current code's delivery stands: asked of the worker, being sent, or sent."""

    REQUESTED = "requested"
    SENDING = "sending"
    DELIVERED = "delivered"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"  # wrong code, still open
    LOCKED = "locked"  # this answer (or an earlier one) reached the limit
    EXPIRED = "expired"  # no live code (expired, or never sent)
    USED = "used"


@dataclass(frozen=True)
class Challenge:
    """One code-verification attempt; `contact` is where the code goes (not a secret: the user typed it)."""

    partition: str
    row: str
    user_id: str
    method: Method
    channel: Channel
    contact: str
    created_at: datetime
    code_digest: str | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    send_count: int = 0
    failed_attempts: int = 0
    used_at: datetime | None = None
    message_id: str | None = None  # the queued message allowed to send the current code
    delivery: Delivery = Delivery.REQUESTED
    delivery_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)


# ---- the rules --------------------------------------------------------------------------------------------


def code_length(policy_codes: Codes) -> int:
    """8 digits by default, never fewer than 6 whatever the policy says (A1)."""
    return max(MIN_CODE_LENGTH, policy_codes.length)


def code_ttl(policy_codes: Codes, channel: Channel) -> timedelta:
    """How long a code of this channel lives (A4; the policy's ranges cap it at 10 min SMS/voice, 15 email)."""
    minutes = {
        Channel.EMAIL: policy_codes.email_ttl_minutes,
        Channel.SMS: policy_codes.sms_ttl_minutes,
        Channel.VOICE: policy_codes.voice_ttl_minutes,
    }[channel]
    return timedelta(minutes=minutes)


def new_code(length: int) -> str:
    """A code from the CSPRNG, leading zeros kept (A1)."""
    return f"{secrets.randbelow(10 ** length):0{length}d}"


def code_digest(key: bytes, partition: str, row: str, code: str) -> str:
    """HMAC-SHA256 over flow, method and code: the only form a code is ever stored in (A2, A7)."""
    return hmac.new(key, f"{partition}|{row}|{code}".encode(), hashlib.sha256).hexdigest()


def is_used(challenge: Challenge) -> bool:
    return challenge.used_at is not None


def is_locked(challenge: Challenge) -> bool:
    """5 wrong answers lock the challenge; the right code after that is refused (A9)."""
    return challenge.failed_attempts >= MAX_FAILED_ATTEMPTS


def expired(challenge: Challenge, now: datetime) -> bool:
    return challenge.expires_at is None or now >= challenge.expires_at


def is_final(challenge: Challenge) -> bool:
    return is_used(challenge) or is_locked(challenge)


def request_delivery(challenge: Challenge, message_id: str, now: datetime) -> Challenge:
    """A new send was asked for: only the message `message_id` may now deliver a code to this challenge."""
    return replace(challenge, message_id=message_id, delivery=Delivery.REQUESTED, delivery_at=now)


def should_send(challenge: Challenge, message_id: str, now: datetime) -> bool:
    """Whether the worker holding `message_id` should (re)issue and send a code now.

    A superseded message (a resend came after it), a delivered one, or one another worker is sending right now
    sends nothing: a redelivered message never sends a second, different code. Only a send claimed by a worker
    that went silent for `SENDING_LEASE` is taken over.
    """
    if is_final(challenge) or challenge.message_id != message_id:
        return False
    if challenge.delivery is Delivery.DELIVERED:
        return False
    if challenge.delivery is Delivery.SENDING:
        return challenge.delivery_at is None or now - challenge.delivery_at >= SENDING_LEASE
    return True


def issue_code(challenge: Challenge, digest: str, now: datetime, ttl: timedelta) -> Challenge:
    """A new code replaces the previous one (which stops working) and never resets the failure counter (A8)."""
    return replace(
        challenge, code_digest=digest, sent_at=now, expires_at=now + ttl, send_count=challenge.send_count + 1,
        delivery=Delivery.SENDING, delivery_at=now,
    )


def mark_delivered(challenge: Challenge, now: datetime) -> Challenge:
    return replace(challenge, delivery=Delivery.DELIVERED, delivery_at=now)


def mark_send_failed(challenge: Challenge, now: datetime) -> Challenge:
    """The send failed: the queue's retry of the same message may issue (a new code) and send again."""
    return replace(challenge, code_digest=None, expires_at=None, delivery=Delivery.REQUESTED, delivery_at=now)


def record_invalid_attempt(challenge: Challenge) -> Challenge:
    return replace(challenge, failed_attempts=challenge.failed_attempts + 1)


def record_success(challenge: Challenge, now: datetime) -> Challenge:
    """A code works once (A6): the challenge is used up."""
    return replace(challenge, used_at=now, code_digest=None)


def submit(challenge: Challenge, code: str, key: bytes, now: datetime) -> tuple[Verdict, Challenge]:
    """Judge one submitted code; returns the verdict and the challenge to store (unchanged when nothing counts)."""
    if is_used(challenge):
        return Verdict.USED, challenge
    if is_locked(challenge):
        return Verdict.LOCKED, record_invalid_attempt(challenge)
    if challenge.code_digest is None or expired(challenge, now):
        return Verdict.EXPIRED, challenge
    submitted = code_digest(key, challenge.partition, challenge.row, code)
    if hmac.compare_digest(submitted, challenge.code_digest):
        return Verdict.ACCEPTED, record_success(challenge, now)
    failed = record_invalid_attempt(challenge)
    return (Verdict.LOCKED if is_locked(failed) else Verdict.WRONG), failed


# ---- where codes go: contacts ----------------------------------------------------------------------------

MAX_PHONE_INPUT = 32
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# An office line can be any line a person answers; premium-rate, pager, voicemail or shared-cost numbers are not.
OFFICE_TYPES = frozenset({
    PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.MOBILE, PhoneNumberType.VOIP,
    PhoneNumberType.UAN, PhoneNumberType.PERSONAL_NUMBER,
})
REGION = re.compile(r"^[A-Z]{2}$")


class ContactError(ValueError):
    """A contact cannot receive codes; the message says why (English), `code` names its plain words for a person
    (web/i18n/fields.<lang>.json) and `values` fill them."""

    def __init__(self, message: str, code: str = "contact.invalid", **values: str | int) -> None:
        super().__init__(message)
        self.code = code
        self.values = values


# What an address may hold, so that what is stored, compared and shown (masked) is what a person reads: the local
# part a dot-atom of ASCII (RFC 5322 atext; no quoted local part), the domain ASCII labels whose punycode decodes.
# Invisible (format, Cf), line and paragraph separators and control characters are refused with a message of
# their own; so is every other character outside ASCII (lookalikes such as the Kelvin sign among them).
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp"})


def normalise_email(address: str) -> str:
    """Trimmed, domain lower-cased; refused when it is no plausible address (RFC 5321 lengths) or holds what
    Entra would not store: a quoted local part, invisible or direction-changing characters, non-ASCII."""
    text = address.strip()
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in text):
        raise ContactError("contains an invisible, line-break or direction-changing character", "contact.invisible")
    if text.startswith('"') or '"@' in text:
        raise ContactError("may not have a quoted part before the @", "email.quoted")
    if not text.isascii():
        raise ContactError("may hold only ASCII letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } ~ -",
                           "email.notAscii")
    if len(text) > MAX_EMAIL_LENGTH or not EMAIL.match(text):
        raise ContactError("is not an email address such as name@example.com", "email.invalid")
    local, _, domain = text.rpartition("@")
    if not _DOT_ATOM.match(local) or not all(_label_decodes(label) for label in domain.split(".")):
        raise ContactError("is not an email address such as name@example.com", "email.invalid")
    return f"{local}@{domain.lower()}"


def _label_decodes(label: str) -> bool:
    """An ASCII DNS label; a punycode one (xn--) must decode (an A-label of a valid U-label)."""
    if not label.lower().startswith("xn--"):
        return True
    try:
        label.encode("ascii").decode("idna")
    except UnicodeError:
        return False
    return True


def normalise_phone(number: str, method: Method, default_region: str | None = None) -> str:
    """The number in E.164, refused when invalid or of a type that cannot receive this method's code. Invisible,
    direction-changing, control and line or paragraph separator characters are refused as in an address; digits
    of other scripts and the fullwidth plus are folded by libphonenumber (what is stored is E.164 ASCII)."""
    if len(number) > MAX_PHONE_INPUT:
        raise ContactError(f"must be at most {MAX_PHONE_INPUT} characters", "phone.tooLong", max=MAX_PHONE_INPUT)
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in number):
        raise ContactError("contains an invisible, line-break or direction-changing character", "contact.invisible")
    region = default_region.upper() if default_region else None
    if region is not None and not REGION.match(region):
        raise ContactError("defaultRegion must be a two-letter country code such as SE or US", "phone.region")
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException:
        if not number.strip().startswith("+") and region is None:
            raise ContactError("needs the country code (such as +46 or +1), or give defaultRegion",
                               "phone.needsCountry") from None
        raise ContactError("is not a phone number", "phone.invalid") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ContactError("is not a valid phone number for its country", "phone.invalidForCountry")
    kind = phonenumbers.number_type(parsed)
    if method is Method.MOBILE_PHONE and kind not in MOBILE_TYPES:
        raise ContactError("is not a mobile number: codes for mobile phone come by SMS", "phone.notMobile")
    if method is Method.OFFICE_PHONE and kind not in OFFICE_TYPES:
        raise ContactError("is not a number a person answers (premium-rate, pager and similar numbers are refused)",
                           "phone.notAnswered")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_work_address(address: str, work_domains: Iterable[str]) -> bool:
    """Whether `address` is at one of the organisation's domains (or a subdomain): no alternate email, which is
    there for when the person cannot sign in to work."""
    domain = address.rpartition("@")[2].lower()
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in work_domains if d)


def mask_contact(contact: str | None) -> str | None:
    """What may be shown or logged of a contact (E2): n***@example.com, +46******67."""
    if not contact:
        return contact
    if "@" in contact:
        local, _, domain = contact.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if contact.startswith("+") and len(contact) > 6:
        return contact[:3] + "*" * (len(contact) - 5) + contact[-2:]
    return "***"
