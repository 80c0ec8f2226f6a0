"""Whom a change can serve: the global state (writeback on, an agent key, a live agent), then who a user name
names, decided the same way for everyone and answered the same way for everyone this service cannot change.

The global state says nothing about a user, so it is told plainly: the change is not offered here, or the
on-premises directory cannot be reached now. Per user, only a synced, enabled account whose SID Graph syncs and
whose OU a live agent serves gets a job; for any other name (nobody, a cloud account, a disabled or unserved one)
there is no account, and the caller tells it like a wrong current password (shared/domain/password_change.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.onprem import Coverage, OnPremAccount
from shared.domain.policy import Policy
from shared.onprem_errors import ChangeNotOffered, OnPremUnavailable
from shared.services.change.ports import AgentJobs, AgentsView, ChangeDirectory
from shared.services.reset.user import plausible_username


@dataclass(frozen=True)
class ChangeAccount:
    user_id: str
    account: OnPremAccount


class ChangeAccounts:
    def __init__(self, directory: ChangeDirectory, agents: AgentsView, jobs: AgentJobs) -> None:
        self._directory = directory
        self._agents = agents
        self._jobs = jobs

    async def ensure_offered(self, policy: Policy) -> None:
        """Writeback on and an agent key: else nobody can change here (ChangeNotOffered)."""
        if not policy.on_premises.writeback or not self._jobs.configured:
            raise ChangeNotOffered("on-premises writeback is off or no agent key is configured")

    async def ensure_reachable(self) -> None:
        """A live agent: else nothing can change now, for anyone (OnPremUnavailable)."""
        if not await self._agents.live():
            raise OnPremUnavailable("no live on-premises agent")

    async def find(self, username: str, policy: Policy) -> ChangeAccount | None:
        """The AD account a change of `username` goes to, or None (nobody, cloud, disabled, not served here)."""
        user = await self._directory.reset_user(username) if plausible_username(username) else None
        if user is None or not user.synced or not user.account_enabled or user.on_premises is None:
            return None
        served = await self._agents.coverage(policy.on_premises.writeback, user.on_premises)
        return ChangeAccount(user.id, user.on_premises) if served is Coverage.SERVED else None
