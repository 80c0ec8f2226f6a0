"""Whether the helpdesk may send a caller a link to a Temporary Access Pass (issue 17's pass, made by Graph): the
tenant's TAP policy must be on and target the user. The pass itself is made only when the user opens the link on
their own reset page and is shown there once (security.md I3): the agent never sees it, no mail carries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.domain.access_pass import TenantPassPolicy
from shared.errors import GraphError


class TenantPasses(Protocol):
    async def access_pass_policy(self) -> TenantPassPolicy: ...

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]: ...


@dataclass(frozen=True)
class TenantAccessPass:
    directory: TenantPasses

    async def unavailable(self, user_id: str) -> str | None:
        """None when the tenant's TAP policy is on and targets the user; else the reason the page words."""
        try:
            tenant = await self.directory.access_pass_policy()
        except GraphError as refused:  # the service was not granted the TAP permissions (grant_permissions flag)
            if refused.status in (401, 403):
                return "access-pass-not-set-up"
            raise
        if not tenant.enabled:
            return "access-pass-off"
        groups = [*tenant.group_ids, *tenant.excluded_group_ids][:20]  # checkMemberGroups takes 20 ids at most
        member_of = {g.lower() for g in await self.directory.check_member_groups(user_id, groups)} if groups else set()
        return None if tenant.targets(member_of) else "access-pass-not-targeted"
