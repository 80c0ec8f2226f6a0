"""What the helpdesk needs from the directory, storage, the throttle, the queue and the audit: nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from shared.adapters.audit_store import AuditPage, AuditQuery
from shared.adapters.graph import HelpdeskUser, UserPage
from shared.domain.audit import Actor, AuditEvent
from shared.domain.codes import Challenge, Channel
from shared.domain.helpdesk import ApprovalRequest, Verification
from shared.domain.helpdesk_links import ResetLink
from shared.domain.policy import Policy
from shared.services.password_targets.base import AccountUnlocker
from shared.services.reset.ports import ChallengeRows, Rows

T = TypeVar("T")

NoticeEvent = Literal["verified", "block-cleared", "unlocked", "reset-link-sent", "access-pass-link-sent"]


class HelpdeskDirectory(Protocol):
    async def search_users(self, text: str, cursor: str | None, page_size: int) -> UserPage: ...

    async def helpdesk_user(self, user_id: str) -> HelpdeskUser | None: ...

    async def directory_roles(self, user_id: str) -> list[str]: ...

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]: ...


class VerificationRows(Rows[Verification], Protocol):
    @property
    def challenges(self) -> ChallengeRows: ...

    async def link(self, verification_id: str) -> ResetLink | None: ...

    async def change_link(self, verification_id: str,
                          rule: Callable[[ResetLink | None], tuple[T, ResetLink | None]]) -> tuple[T, ResetLink | None]: ...

    async def add_approval(self, request: ApprovalRequest) -> None: ...

    async def approval(self, request_id: str) -> ApprovalRequest | None: ...

    async def change_approval(self, request_id: str, rule: Callable[[ApprovalRequest], tuple[T, ApprovalRequest]],
                              ) -> tuple[T, ApprovalRequest] | None: ...

    async def pending_approvals(self, now: datetime, limit: int = ...) -> list[ApprovalRequest]: ...


class HelpdeskThrottle(Protocol):
    async def helpdesk_paused(self, user_id: str, agent_id: str) -> None: ...

    async def count_helpdesk_send(self, user_id: str, agent: Actor, client_ip: str | None) -> None: ...

    async def record_helpdesk_failure(self, user_id: str, agent: Actor, client_ip: str | None) -> None: ...

    async def spend_budgets(self, channel: Channel, client_ip: str | None) -> None: ...

    async def blocked_until(self, user_id: str) -> datetime | None: ...

    async def clear(self, user_id: str) -> None: ...


class HelpdeskQueue(Protocol):
    async def verification_code(self, challenge: Challenge, message_id: str,
                                store: Literal["registration", "reset", "helpdesk"] = ...) -> None: ...

    async def helpdesk_notice(self, verification_id: str, user_id: str, event: NoticeEvent, at: datetime,
                              message_id: str) -> None: ...

    async def helpdesk_link(self, verification_id: str, message_id: str) -> None: ...

    async def helpdesk_confirm(self, verification_id: str, message_id: str) -> None: ...


class Unlockers(Protocol):
    """The directories that can unlock an account without a new password (shared/services/password_targets)."""

    def unlocker(self, name: str) -> AccountUnlocker | None: ...


class PolicySource(Protocol):
    async def get(self) -> Policy: ...


class AuditWriter(Protocol):
    async def write(self, event: AuditEvent) -> None: ...


class AuditReader(Protocol):
    async def query(self, query: AuditQuery, page_size: int, continuation: str | None = ...) -> AuditPage: ...
