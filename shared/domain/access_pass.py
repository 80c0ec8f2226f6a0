"""Recovering into passwordless: the Temporary Access Pass a verified reset may end with (security.md I3).

PASS_WITHIN_TENANT_POLICY: our policy asks for a lifetime and one-time use; the tenant's TAP policy (Entra's
authentication methods policy) bounds them. The lifetime is brought within the tenant's minimum and maximum, and
a tenant that allows one-time passes only gets one; a tenant with TAP off, or whose policy does not target the
user, gets no pass. PASS_ONCE_PER_FLOW: a flow yields at most one pass - instead of the new password (the flow
ends with it), or right after the new password while the flow lives - claimed on the flow's row under its ETag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.recovery_policy import TAP_MAXIMUM_MINUTES, TAP_MINIMUM_MINUTES, TemporaryAccessPass

AFTER_PASSWORD_WINDOW = timedelta(minutes=10)  # a pass after the new password: asked for soon after, or never


@dataclass(frozen=True)
class TenantPassPolicy:
    """The tenant's TAP policy as Graph reads it (temporaryAccessPassAuthenticationMethodConfiguration)."""

    enabled: bool
    minimum_minutes: int
    maximum_minutes: int
    usable_once_only: bool
    all_users: bool
    group_ids: tuple[str, ...] = ()
    excluded_group_ids: tuple[str, ...] = ()

    def targets(self, member_of: set[str]) -> bool:
        """Whether a user in groups `member_of` may get a pass: targeted (everyone, or a group) and not excluded."""
        included = self.all_users or bool(member_of & {g.lower() for g in self.group_ids})
        return included and not member_of & {g.lower() for g in self.excluded_group_ids}


@dataclass(frozen=True)
class PassTerms:
    lifetime_minutes: int
    usable_once: bool


def pass_terms(ours: TemporaryAccessPass, tenant: TenantPassPolicy) -> PassTerms | None:
    """PASS_WITHIN_TENANT_POLICY: what to ask Entra for, or None when the tenant has TAP off."""
    if not tenant.enabled:
        return None
    low = max(TAP_MINIMUM_MINUTES, tenant.minimum_minutes)
    high = min(TAP_MAXIMUM_MINUTES, tenant.maximum_minutes)
    return PassTerms(lifetime_minutes=min(max(ours.lifetime_minutes, low), high),
                     usable_once=ours.one_time_use or tenant.usable_once_only)


def after_password_open(completed_at: datetime | None, now: datetime) -> bool:
    return completed_at is not None and now < completed_at + AFTER_PASSWORD_WINDOW
