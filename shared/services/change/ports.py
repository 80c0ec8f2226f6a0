"""What the change needs from storage, the directory, the agents, the throttle and the queues: nothing more."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from shared.adapters.graph import ResetUser
from shared.domain.audit import AuditEvent
from shared.domain.onprem import Coverage, LockoutPolicy, OnPremAccount
from shared.domain.onprem_jobs import JobKind, JobResult
from shared.domain.password_change import ChangeRequest
from shared.domain.throttling import Budget, SlidingLimit
from shared.services.onprem.jobs import JobTicket
from shared.services.reset.ports import Rows

T = TypeVar("T")


ChangeRows = Rows[ChangeRequest]


class ChangeDirectory(Protocol):
    async def reset_user(self, username: str) -> ResetUser | None: ...


class AgentsView(Protocol):
    async def coverage(self, writeback: bool, account: OnPremAccount | None) -> Coverage: ...

    async def live(self) -> int: ...


class Lockout(Protocol):
    """AD's account lockout as the live agents report it (shared/services/onprem/agents.py)."""

    async def lockout_policy(self) -> LockoutPolicy | None: ...


class AgentJobs(Protocol):
    """shared/services/onprem/jobs.py OnPremJobs, as a change uses it."""

    @property
    def configured(self) -> bool: ...

    @property
    def lifetime(self) -> timedelta: ...

    async def send(self, ticket: JobTicket, kind: JobKind, sid: str, password: str | None = None,
                   current: str | None = None) -> None: ...

    async def wait_for(self, ticket: JobTicket) -> JobResult | None: ...

    async def look(self, ticket: JobTicket) -> JobResult | None: ...


class ProofOfWorkGate(Protocol):
    def challenge(self) -> dict[str, object]: ...

    async def spend(self, payload: str) -> None: ...


class Throttle(Protocol):
    async def admit(self, budgets: tuple[Budget, ...], client_ip: str | None) -> None: ...

    async def record_event(self, key: str, limit: SlidingLimit) -> None: ...

    async def paused_until(self, key: str, limit: SlidingLimit) -> datetime | None: ...

    async def forget(self, key: str) -> None: ...


class TenantNames(Protocol):
    async def tenant_facts(self) -> Any: ...


class SessionRevoker(Protocol):
    async def revoke_sessions(self, user_id: str) -> None: ...


class ChangeQueue(Protocol):
    async def password_reset(self, user_id: str, reset_at: datetime, administrator: bool, message_id: str | None = ...,
                             action: Literal["reset", "unlock", "change"] = ...) -> None: ...

    async def revoke_sessions(self, user_id: str, target: str) -> None: ...


class NoticeAddresses(Protocol):
    async def masked_emails(self, user_id: str) -> list[str]: ...


class AuditWriter(Protocol):
    async def write(self, event: AuditEvent) -> None: ...
