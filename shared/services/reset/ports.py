"""What the reset flow needs from storage, the directory, the throttle and the queue: nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from shared.adapters.graph import ResetUser
from shared.domain.audit import Actor, AuditEvent
from shared.domain.codes import Challenge, Channel
from shared.domain.onprem import Coverage, OnPremAccount
from shared.domain.reset_flow import ResetFlow
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary

T = TypeVar("T")
V = TypeVar("V")


class ChallengeRows(Protocol):
    """The flow's code challenges: one row per method, changed under its ETag."""

    async def get(self, partition: str, row: str) -> Challenge | None: ...

    async def create(self, challenge: Challenge) -> None: ...

    async def change(self, partition: str, row: str,
                     rule: Callable[[Challenge], tuple[T, Challenge]]) -> tuple[T, Challenge] | None: ...


class Rows(Protocol[V]):
    """Rows of one kind, each created once, read by its id, and changed under its ETag (None: the row is gone);
    the reset's flows, the change's requests, the helpdesk's verifications."""

    async def create(self, row: V) -> None: ...

    async def get(self, row_id: str) -> V | None: ...

    async def change(self, row_id: str, rule: Callable[[V], tuple[T, V]]) -> tuple[T, V] | None: ...


FlowRows = Rows[ResetFlow]


class ResetDirectory(Protocol):
    """What the flow reads of the directory: the user, their roles, and the tenant's facts."""

    async def reset_user(self, username: str) -> ResetUser | None: ...

    async def directory_roles(self, user_id: str) -> Any: ...

    async def organization(self) -> Any: ...

    async def subscriptions(self) -> Any: ...

    async def subscribed_skus(self) -> Any: ...


class SecurityInfoReader(Protocol):
    async def summary(self, user_id: str) -> SecurityInfoSummary: ...

    async def methods(self, user_id: str) -> list[RegisteredMethod]: ...


class EnablementReader(Protocol):
    async def get_enablement(self, user_id: str) -> dict[str, Any] | None: ...


class ProofOfWorkGate(Protocol):
    def challenge(self) -> dict[str, object]: ...

    async def spend(self, payload: str) -> None: ...


class Throttle(Protocol):
    """The SSPR throttle (shared/services/throttle.py) as the reset flow uses it."""

    async def admit_flow_start(self, client_ip: str | None) -> None: ...

    async def spend_budgets(self, channel: Channel, client_ip: str | None) -> None: ...

    async def count_user_send(self, user_id: str, client_ip: str | None, actor: Actor) -> None: ...

    async def is_blocked(self, user_id: str) -> bool: ...

    async def blocked_until(self, user_id: str) -> datetime | None: ...

    async def record_app_guess(self, username: str) -> None: ...

    async def app_codes_paused_until(self, username: str) -> datetime | None: ...

    async def record_failure(self, user_id: str, actor: Actor, client_ip: str | None) -> None: ...

    async def record_failed_flow(self, user_id: str, actor: Actor, client_ip: str | None) -> None: ...

    async def clear(self, user_id: str) -> None: ...


class ResetQueue(Protocol):
    """The notifications queue: a code to deliver, a reset (or unlock) to tell the user (and admins) about,
    sessions to end."""

    async def verification_code(self, challenge: Challenge, message_id: str, store: Literal["registration", "reset"] = ...) -> None: ...

    async def password_reset(self, user_id: str, reset_at: datetime, administrator: bool, message_id: str | None = ...,
                             action: Literal["reset", "unlock", "change"] = ...) -> None: ...

    async def revoke_sessions(self, user_id: str, target: str) -> None: ...


class AgentCoverage(Protocol):
    """Whether the on-premises agents can serve a synced user (shared/services/onprem/agents.py)."""

    async def coverage(self, writeback: bool, account: OnPremAccount | None) -> Coverage: ...


class AuditWriter(Protocol):
    async def write(self, event: AuditEvent) -> None: ...
