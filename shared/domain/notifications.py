"""The messages of queue `notifications`: ids only, never a code, validated before any side effect (D5, F2)."""

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
    # Which table holds the challenge: a registration session's, or a reset flow's partition.
    store: Literal["registration", "reset"] = "registration"


class VerificationCode(_Message):
    kind: Literal["verification-code"]
    id: Guid
    challenge: ChallengeRef


class RegistrationReminder(_Message):
    kind: Literal["registration-reminder"]
    id: Guid
    userId: Guid


class PasswordResetNotice(_Message):
    """A user's password was reset here: tell them on every address they have, and the Global Administrators
    when the user is an administrator and the policy says so (security.md B4)."""

    kind: Literal["password-reset"]
    id: Guid
    userId: Guid
    resetAt: Annotated[str, Field(max_length=40, pattern=r"^\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})$")]
    administrator: bool


class _Envelope(_Message):
    message: Annotated[VerificationCode | RegistrationReminder | PasswordResetNotice, Field(discriminator="kind")]


Notification = VerificationCode | RegistrationReminder | PasswordResetNotice


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
