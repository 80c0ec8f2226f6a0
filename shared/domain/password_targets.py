"""The rule that chooses, per user, the directory a new password is written to (its password target)."""

from __future__ import annotations

from typing import Protocol

from shared.domain.policy import Policy

ENTRA = "entra"  # Microsoft Entra through Graph (shared/services/password_targets/entra.py)
ONPREM_AD = "onprem-ad"  # on-premises Active Directory through the agent (shared/services/password_targets/onprem_ad.py)


class DirectoryUser(Protocol):
    """What the rule reads about a user."""

    @property
    def synced(self) -> bool: ...


def target_for(user: DirectoryUser, policy: Policy) -> str | None:
    """The name of the target of this user's new password, or None when this service cannot set it.

    Graph cannot set the password of a user mastered on premises (PATCH passwordProfile fails on them), so a
    synced user's password goes to AD through the on-premises agent, when the policy turns writeback on; without
    it the user has no target and the flow refuses them (`synced-not-supported` / `synced-needs-premium`)."""
    if user.synced:
        return ONPREM_AD if policy.on_premises.writeback else None
    return ENTRA
