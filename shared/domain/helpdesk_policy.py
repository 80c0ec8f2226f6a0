"""The policy's helpdesk part: where the failure pages send people, and how the helpdesk treats privileged callers.

`url` / `email`: the helpdesk shown on the failure pages and in the mails (one or neither). `privilegedCallers`:
an action on a caller who holds a directory role or is in `protectedGroupId` waits for a second agent
("four-eyes", the default) or is refused ("refuse"); see shared/domain/helpdesk.py, PRIVILEGED_CALLERS.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from shared.domain.address_rules import EMAIL, MAX_EMAIL_LENGTH, MAX_URL_LENGTH
from shared.domain.ids import is_guid
from shared.domain.policy_rules import Rule

HELPDESK_URL_HTTPS = Rule(
    "HELPDESK_URL_HTTPS", "helpdesk.url", f"must be an absolute https URL of at most {MAX_URL_LENGTH} characters"
)
HELPDESK_EMAIL_ADDRESS = Rule(
    "HELPDESK_EMAIL_ADDRESS", "helpdesk.email", "must be an email address such as helpdesk@contoso.com"
)
HELPDESK_URL_OR_EMAIL = Rule("HELPDESK_URL_OR_EMAIL", "helpdesk.email", "give a helpdesk url or an email, not both")
PROTECTED_GROUP_IS_GUID = Rule(
    "PROTECTED_GROUP_IS_GUID", "helpdesk.protectedGroupId",
    "must be a group object id (GUID), such as 5d6e1c47-5b73-4d0e-9f1a-2c3b4d5e6f70, or null",
)


class PrivilegedCallers(StrEnum):
    """What the policy does with an action on a privileged caller (PRIVILEGED_CALLERS)."""

    FOUR_EYES = "four-eyes"
    REFUSE = "refuse"


class Helpdesk(BaseModel):
    """Where people who cannot reset are sent, and the helpdesk's rule for privileged callers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)

    url: str | None = None
    email: str | None = None
    privileged_callers: Annotated[PrivilegedCallers, Field(strict=False)] = PrivilegedCallers.FOUR_EYES
    protected_group_id: str | None = None

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if len(value) > MAX_URL_LENGTH or parts.scheme != "https" or not parts.hostname or " " in value:
            raise HELPDESK_URL_HTTPS.violated()
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if len(value) > MAX_EMAIL_LENGTH or not EMAIL.match(value):
            raise HELPDESK_EMAIL_ADDRESS.violated()
        if info.data.get("url") is not None:
            raise HELPDESK_URL_OR_EMAIL.violated()
        return value

    @field_validator("protected_group_id")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not is_guid(value):
            raise PROTECTED_GROUP_IS_GUID.violated()
        return value.lower() if value else None
