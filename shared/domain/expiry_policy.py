"""The policy's password-expiry part: whether users are reminded before their password expires, when and how.

Decisions (a reader of the API finds them here):
- `enabled` is off by default: deploying the service must not start mailing anyone. The daily run still judges
  every user, so an admin sees who expires when before turning reminders on.
- `stages`: the days before expiry at which a reminder goes out (default 14, 7, 3 and 1, the stages peers such as
  ADSelfService Plus and LTB ship). 1-5 distinct whole days, each 1-90; stored largest first.
- `sms`: a short text to the user's mobile phone beside the mail (costs money, so off by default).
- `cloudPolicyForSyncedUsers`: mirrors the tenant's `CloudPasswordPolicyForPasswordSyncedUsersEnabled` (the
  MSOnline name: EnforceCloudPasswordPolicyForPasswordSyncedUsers). When it is on, Entra's expiration policy also
  applies to users synchronised from Active Directory (those whose passwordPolicies does not say
  DisablePasswordExpiration). The service cannot read the feature itself: the Learn page of
  onPremisesDirectorySynchronization-get lists no application permission for it, so the admin states it here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

from shared.domain.policy_rules import Rule

STAGE_MIN_DAYS, STAGE_MAX_DAYS = 1, 90
MAX_STAGES = 5
DEFAULT_STAGES = (14, 7, 3, 1)

EXPIRY_STAGES_RANGE = Rule(
    "EXPIRY_STAGES_RANGE", "expiryReminders.stages",
    f"must be 1 to {MAX_STAGES} whole days before expiry, each {STAGE_MIN_DAYS}-{STAGE_MAX_DAYS}",
)
EXPIRY_STAGES_UNIQUE = Rule("EXPIRY_STAGES_UNIQUE", "expiryReminders.stages", "must not name the same day twice")


def _stages(values: tuple[int, ...]) -> tuple[int, ...]:
    if not 1 <= len(values) <= MAX_STAGES or not all(STAGE_MIN_DAYS <= v <= STAGE_MAX_DAYS for v in values):
        raise EXPIRY_STAGES_RANGE.violated()
    if len(set(values)) != len(values):
        raise EXPIRY_STAGES_UNIQUE.violated()
    return tuple(sorted(values, reverse=True))


class ExpiryReminders(BaseModel):
    """Reminders before a password expires (module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)

    enabled: StrictBool = False
    # Lax only on the container, so a JSON array becomes an immutable tuple; items stay strict integers.
    stages: Annotated[tuple[StrictInt, ...], Field(strict=False), AfterValidator(_stages)] = DEFAULT_STAGES
    sms: StrictBool = False
    cloud_policy_for_synced_users: StrictBool = False


DEFAULT_EXPIRY_DOCUMENT = {"enabled": False, "stages": list(DEFAULT_STAGES), "sms": False,
                           "cloudPolicyForSyncedUsers": False}
