"""The messages of queue `notifications`: ids only, never a code, validated before any side effect (D5, F2).

Codes to deliver, reminders, and what follows a reset: its notice, and the end of the user's sessions when Graph
could not end them during the reset."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.domain.ids import is_guid

KEY_PATTERN = r"^[A-Za-z0-9._-]{1,80}$"  # table keys we issue; nothing else reaches a key


def _guid(text: str) -> str:
    if not is_guid(text):
        raise ValueError("not a GUID")
    return text


Guid = Annotated[str, AfterValidator(_guid)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ChallengeRef(_Message):
    partition: Annotated[str, Field(pattern=KEY_PATTERN)]
    row: Annotated[str, Field(pattern=KEY_PATTERN)]
    # Which table holds the challenge: a registration session's, a reset flow's or a helpdesk verification's.
    store: Literal["registration", "reset", "helpdesk"] = "registration"


class VerificationCode(_Message):
    kind: Literal["verification-code"]
    id: Guid
    challenge: ChallengeRef


class RegistrationReminder(_Message):
    kind: Literal["registration-reminder"]
    id: Guid
    userId: Guid


class PasswordResetNotice(_Message):
    """A user's password was reset here - or a reset ended with a Temporary Access Pass (`action`): tell them on
    every address they have, and the Global Administrators when the user is an administrator and the policy says
    so (security.md B4, I3). Never the password nor the pass."""

    kind: Literal["password-reset"]
    id: Guid
    userId: Guid
    resetAt: Annotated[str, Field(max_length=40, pattern=r"^\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})$")]
    administrator: bool
    # unlock: the account was unlocked, its password unchanged; accessPass: the reset ended with a Temporary Access
    # Pass (the notice says when, never the pass); change: the user changed it on the change page
    action: Literal["reset", "unlock", "accessPass", "change"] = "reset"


class SessionRevocation(_Message):
    """A user's password was reset but their sign-in sessions could not be ended at once: end them now at the
    user's password target, retried by the queue until it works (security.md B4, F6)."""

    kind: Literal["revoke-sessions"]
    id: Guid
    userId: Guid
    target: Annotated[str, Field(pattern=KEY_PATTERN)]


INSTANT = r"^\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})$"


class PasswordExpiryReminder(_Message):
    """A user's password expires `stage` days from now or sooner: tell them when and what to do, by mail and (when
    the run says `sms`) by text. `passwordVersion` names the password the reminder is about: a user who changed it
    since is not reminded (shared/domain/password_expiry.py)."""

    kind: Literal["password-expiry-reminder"]
    id: Guid
    userId: Guid
    stage: Annotated[int, Field(ge=1, le=90)]
    expiresAt: Annotated[str, Field(max_length=40, pattern=INSTANT)]
    passwordVersion: Annotated[str, Field(max_length=40, pattern=INSTANT)]
    synced: bool
    sms: bool
    # Whose clock `passwordVersion` is: Entra's lastPasswordChangeDateTime, or AD's pwdLastSet as the on-premises
    # agents report it (a synced user whose AD expiry is known).
    versionSource: Literal["cloud", "onPremises"] = "cloud"


class HelpdeskNotice(_Message):
    """The helpdesk verified the user, or acted for them: tell them on every address they have, with the time
    and the agent, and what to do if it was not them (shared/services/notifications/helpdesk.py)."""

    kind: Literal["helpdesk-notice"]
    id: Guid
    verificationId: Guid
    userId: Guid
    event: Literal["verified", "block-cleared", "unlocked", "reset-link-sent", "access-pass-link-sent"]
    at: Annotated[str, Field(max_length=40, pattern=INSTANT)]


class HelpdeskLink(_Message):
    """Make the one-time link of a helpdesk verification and mail it to the registered address on its row: the
    message names the verification, never the link (shared/domain/helpdesk_links.py)."""

    kind: Literal["helpdesk-link"]
    id: Guid
    verificationId: Guid


class HelpdeskConfirm(_Message):
    """Ask the user to confirm with a passkey on their own device: a mail to their registered address with a link
    to their reset page (shared/domain/helpdesk.py, PASSKEY_ON_OWN_DEVICE)."""

    kind: Literal["helpdesk-confirm"]
    id: Guid
    verificationId: Guid


class HelpdeskDigest(_Message):
    """The day's helpdesk verifications and actions, mailed to the Global Administrators once."""

    kind: Literal["helpdesk-digest"]
    id: Guid
    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class _Envelope(_Message):
    message: Annotated[VerificationCode | RegistrationReminder | PasswordResetNotice | SessionRevocation
                       | PasswordExpiryReminder | HelpdeskNotice | HelpdeskLink | HelpdeskConfirm | HelpdeskDigest,
                       Field(discriminator="kind")]


Notification = (VerificationCode | RegistrationReminder | PasswordResetNotice | SessionRevocation
                | PasswordExpiryReminder | HelpdeskNotice | HelpdeskLink | HelpdeskConfirm | HelpdeskDigest)


class InvalidNotification(ValueError):
    """A queue message that is not a notification this worker knows: it goes to poison untouched."""


def parse_notification(body: str) -> Notification:
    try:
        return _Envelope.model_validate({"message": json.loads(body)}).message
    except (json.JSONDecodeError, ValidationError) as exc:
        # The message text is not logged: it is untrusted input of any size.
        raise InvalidNotification(f"not a notification message: {type(exc).__name__}") from None


def new_message_id() -> str:
    return str(uuid.uuid4())
