"""The on-premises AD target: a synced user's new password (or unlock) goes to Active Directory through the agent.

Graph cannot set the password of a user mastered on premises, so the service seals the password to the agent's
key and queues a job naming the account by its SID (security.md H2, H5); the agent inside the network applies
it over LDAPS and writes AD's verdict. The request waits for the verdict a few seconds (`OnPremJobs.wait`); a
job no agent took by then is cancelled and never applies (the person is told nothing changed); a job an agent
took is pending, and the flow asks `outcome` again. Password hash sync then carries the new password to Entra;
sessions are revoked in Entra through Graph, as for a cloud user.
"""

from __future__ import annotations

from typing import Protocol

from shared.domain import onprem
from shared.domain.onprem import Meaning
from shared.domain.onprem_jobs import JobKind, JobResult
from shared.onprem_errors import OnPremCannotChange, OnPremUnavailable, OnPremUnconfirmed
from shared.services.onprem.jobs import JobLost, JobTicket, OnPremJobs
from shared.services.password_targets.base import (
    COMPLEXITY,
    HISTORY,
    MINIMUM_AGE,
    ONPREM_AD,
    Applied,
    Change,
    ChangePending,
    PasswordRefused,
    TargetFailed,
)

RULES = {"complexity": COMPLEXITY, "history": HISTORY, "minimum-age": MINIMUM_AGE, "policy": COMPLEXITY}


class SessionRevoker(Protocol):
    async def revoke_sessions(self, user_id: str) -> None: ...


class OnPremAdTarget:
    """A PasswordTarget and an AccountUnlocker, through the on-premises agent."""

    name = ONPREM_AD

    def __init__(self, jobs: OnPremJobs, graph: SessionRevoker) -> None:
        self._jobs = jobs
        self._graph = graph

    async def set_password(self, change: Change, password: str) -> Applied:
        return await self._run(change, JobKind.RESET, password)

    async def unlock(self, change: Change) -> Applied:
        return await self._run(change, JobKind.UNLOCK)

    async def outcome(self, change: Change) -> Applied:
        try:
            result = await self._jobs.look(_ticket(change))
        except JobLost:
            raise TargetFailed("onprem-unconfirmed", OnPremUnconfirmed("an agent took the job and fell silent")) \
                from None
        return _judged(result)

    async def revoke_sessions(self, user_id: str) -> None:
        await self._graph.revoke_sessions(user_id)

    async def _run(self, change: Change, kind: JobKind, password: str | None = None) -> Applied:
        account = change.on_premises
        if account is None or not self._jobs.configured:  # resolution refused such users already
            raise TargetFailed("onprem-not-configured", OnPremUnavailable("no SID or no agent key"))
        ticket = _ticket(change)
        await self._jobs.send(ticket, kind, account.sid, password)
        return _judged(await self._jobs.wait_for(ticket))


def _ticket(change: Change) -> JobTicket:
    return JobTicket(change.attempt_id, change.expires_at)


def _judged(result: JobResult | None) -> Applied:
    """AD's verdict in the target's words: applied, refused by AD's rule, not here, or nothing changed."""
    if result is None:
        raise ChangePending()
    meaning = onprem.meaning(result.verdict)
    reason = f"onprem-{result.verdict.value}"
    if meaning is Meaning.DONE:
        return Applied(f"on-premises agent {result.agent_id}")
    if meaning is Meaning.REFUSED:
        raise PasswordRefused(RULES[onprem.REFUSED_RULES[result.verdict]])
    if meaning is Meaning.NOT_HERE:
        raise TargetFailed(reason, OnPremCannotChange(f"AD: {result.verdict.value}"))
    raise TargetFailed(reason, OnPremUnavailable(f"AD: {result.verdict.value}, nothing changed"))
