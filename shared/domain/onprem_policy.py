"""The policy's on-premises part: whether users synced from Active Directory reset and unlock through the agent."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic.alias_generators import to_camel

from shared.domain.policy_rules import Rule, only_with

UNLOCK_NEEDS_WRITEBACK = Rule(
    "UNLOCK_NEEDS_WRITEBACK", "onPremises.unlockWithoutReset", "needs onPremises.writeback: the agent unlocks the account"
)


class OnPremises(BaseModel):
    """`writeback`: synced users reset their AD password through the on-premises agent (off: they are refused, as
    Entra refuses them without password writeback). `unlock_without_reset`: a locked-out synced user may unlock
    the account after proving who they are, without choosing a new password (Entra's "allow users to unlock
    accounts without resetting their password"); it needs `writeback`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)

    writeback: StrictBool = False
    unlock_without_reset: StrictBool = False

    _unlock_through_writeback = only_with("unlock_without_reset", "writeback", UNLOCK_NEEDS_WRITEBACK)
