"""What the agents' heartbeats say: which agents are live, whom they can serve, and the admin's view of them."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from shared.domain import onprem
from shared.domain.clock import Clock
from shared.domain.onprem import Coverage, OnPremAccount
from shared.domain.onprem_jobs import Heartbeat

ROSTER_TTL = 15.0  # seconds a process reuses the heartbeats it read (a reset's resolution reads them)


class HeartbeatReader(Protocol):
    async def heartbeats(self) -> list[Heartbeat]: ...


class AgentView(BaseModel):
    """One agent as the admin page shows it."""

    agentId: str
    version: str
    lastHeartbeat: datetime
    live: bool
    dcsReached: list[str]
    dcsConfigured: int
    jobsApplied: int
    jobsRefused: int
    jobsFailed: int
    allowedOus: list[str]
    policyHints: bool
    holdsServiceKey: bool | None  # whether it can open what the service seals (None: no key configured)
    expiryScannedAt: datetime | None = None  # its last complete password-expiry report (synced users' AD expiry)
    expiryAccounts: int = 0


class AgentsView(BaseModel):
    agents: list[AgentView]
    live: int
    serviceKeyId: str | None


class AgentRoster:
    def __init__(self, store: HeartbeatReader, clock: Clock, service_key_id: str | None) -> None:
        self._store = store
        self._clock = clock
        self._key_id = service_key_id
        self._beats: list[Heartbeat] = []
        self._read_at = -ROSTER_TTL

    async def heartbeats(self) -> list[Heartbeat]:
        if time.monotonic() - self._read_at >= ROSTER_TTL:
            self._beats = await self._store.heartbeats()
            self._read_at = time.monotonic()
        return self._beats

    async def coverage(self, writeback: bool, account: OnPremAccount | None) -> Coverage:
        """Served from the roster this process read; a refusal only from a fresh one (an agent that beat "no DC"
        during a short DC outage, or started a moment ago, must not keep users out for ROSTER_TTL more)."""
        beats = await self.heartbeats() if writeback else []
        verdict = onprem.coverage(writeback, beats, account, self._clock())
        if verdict in (Coverage.NO_LIVE_AGENT, Coverage.OUTSIDE_AGENT_OUS) and not self._fresh():
            self._read_at = -ROSTER_TTL
            verdict = onprem.coverage(writeback, await self.heartbeats(), account, self._clock())
        return verdict

    def _fresh(self) -> bool:
        return time.monotonic() - self._read_at < 1.0

    async def lockout_policy(self) -> onprem.LockoutPolicy | None:
        """The domain's account lockout, as the live agents report it (the strictest of them)."""
        return onprem.lockout_policy(await self.heartbeats(), self._clock())

    async def live(self) -> int:
        now = self._clock()
        return sum(onprem.is_live(b, now) for b in await self.heartbeats())

    async def view(self) -> AgentsView:
        """Fresh from storage (an admin looking wants now, not 15 s ago), newest heartbeat first."""
        self._read_at = -ROSTER_TTL
        now = self._clock()
        beats = sorted(await self.heartbeats(), key=lambda b: b.at, reverse=True)
        agents = [AgentView(
            agentId=b.agent_id, version=b.version, lastHeartbeat=b.at, live=onprem.is_live(b, now),
            dcsReached=b.dcs_reached, dcsConfigured=b.dcs_configured, jobsApplied=b.jobs_applied,
            jobsRefused=b.jobs_refused, jobsFailed=b.jobs_failed, allowedOus=b.allowed_ous,
            policyHints=b.policy_hints, holdsServiceKey=None if self._key_id is None else self._key_id in b.key_ids,
            expiryScannedAt=b.expiry_scanned_at, expiryAccounts=b.expiry_accounts,
        ) for b in beats]
        return AgentsView(agents=agents, live=sum(a.live for a in agents), serviceKeyId=self._key_id)
