"""Sending a job to the on-premises agent and waiting for AD's verdict, within a bound (docs/onprem.md).

A job is sent with an expiry; the request that sent it waits up to `wait` for the agent's result in the ledger.
If no agent has claimed the job by then, the service cancels it (a ledger row the agent will respect), so it can
never apply later and the person is told that nothing changed. If an agent has claimed it, the change is under
way: the caller shows "pending" and looks again (`look`) until the result is there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.adapters.job_sealing import JobSealer
from shared.adapters.onprem_store import LedgerEntry
from shared.domain import onprem
from shared.domain.clock import Clock
from shared.domain.onprem_jobs import JobKind, JobResult, LedgerState, OnPremJob, Verdict

POLL_SECONDS = 0.2  # how often a waiting request reads the ledger row (one point read each)


class JobStore(Protocol):
    """What sending and waiting need of storage (shared/adapters/onprem_store.py)."""

    async def send(self, job: OnPremJob, time_to_live: timedelta) -> None: ...

    async def entry(self, job_id: str) -> LedgerEntry: ...

    async def cancel(self, job_id: str, expires_at: datetime) -> bool: ...


class JobLost(Exception):
    """An agent claimed the job long ago and no agent finished it: whether AD changed cannot be known here."""


@dataclass(frozen=True)
class JobTicket:
    """A job as the service keeps it while it waits: its id and when it stops being able to apply."""

    job_id: str
    expires_at: datetime


@dataclass(frozen=True)
class OnPremJobs:
    store: JobStore
    sealer: JobSealer | None
    clock: Clock
    wait: timedelta
    lifetime: timedelta

    @property
    def configured(self) -> bool:
        """Whether the service knows an agent key to seal passwords to (SSPR_ONPREM_AGENT_PUBLIC_KEY)."""
        return self.sealer is not None

    def ticket(self, job_id: str) -> JobTicket:
        return JobTicket(job_id, self.clock() + self.lifetime)

    async def send(self, ticket: JobTicket, kind: JobKind, sid: str, password: str | None = None,
                   current: str | None = None) -> None:
        """Seal the new password (and a change's `current` one) to the agent's key, each bound to this job, its
        expiry and its part, and queue the job."""
        sealed = old = None
        if password is not None or current is not None:
            if self.sealer is None:
                raise RuntimeError("no agent key configured")  # the policy refuses writeback without one
            if password is not None:
                sealed = self.sealer.seal(password, ticket.job_id, ticket.expires_at)
            if current is not None:
                old = self.sealer.seal(current, ticket.job_id, ticket.expires_at, "old")
        job = OnPremJob(job_id=ticket.job_id, kind=kind, object_sid=sid, expires_at=ticket.expires_at,
                        password=sealed, old_password=old)
        await self.store.send(job, ticket.expires_at - self.clock() + onprem.RESULT_GRACE)

    async def wait_for(self, ticket: JobTicket) -> JobResult | None:
        """The job's result within `wait`; a CANCELLED result when no agent took it (it never applies); None when
        an agent has it but has not finished (the caller looks again later)."""
        deadline = time.monotonic() + self.wait.total_seconds()
        while True:
            entry = await self.store.entry(ticket.job_id)
            if entry.result is not None:
                return entry.result
            if entry.state is LedgerState.CANCELLED:
                return self._cancelled(ticket)
            if time.monotonic() >= deadline:
                return await self._cancel_unclaimed(ticket, entry)
            await asyncio.sleep(POLL_SECONDS)

    async def look(self, ticket: JobTicket) -> JobResult | None:
        """One look at a job that was left pending: its result, CANCELLED if no agent ever took it (now cancelled),
        None while an agent works on it; JobLost when the agents gave it up without a word."""
        entry = await self.store.entry(ticket.job_id)
        if entry.result is not None:
            return entry.result
        if entry.state is LedgerState.CANCELLED:
            return self._cancelled(ticket)
        if entry.state is None and self.clock() >= ticket.expires_at:
            return await self._cancel_unclaimed(ticket, entry)
        if onprem.gave_up(ticket.expires_at, self.clock()):
            raise JobLost(ticket.job_id)
        return None

    async def _cancel_unclaimed(self, ticket: JobTicket, entry: LedgerEntry) -> JobResult | None:
        if entry.state is None and await self.store.cancel(ticket.job_id, ticket.expires_at):
            return self._cancelled(ticket)
        return None  # an agent claimed it: the change is under way

    def _cancelled(self, ticket: JobTicket) -> JobResult:
        return JobResult(job_id=ticket.job_id, verdict=Verdict.CANCELLED, rule="no agent took the job in time",
                         agent_id="service", finished_at=self.clock())
