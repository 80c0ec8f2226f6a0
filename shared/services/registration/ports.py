"""What registration needs from storage, the directory, the throttle and the queue: nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from shared.domain.audit import Actor, AuditEvent
from shared.domain.codes import Challenge, Channel
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import Refusal
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from shared.domain.totp import PendingSetup

T = TypeVar("T")


class CodeChallenges(Protocol):
    """A registration session's code challenge rows, changed under their ETag."""

    async def create(self, challenge: Challenge) -> None: ...

    async def in_partition(self, partition: str) -> list[Challenge]: ...

    async def change(self, partition: str, row: str,
                     rule: Callable[[Challenge], tuple[T, Challenge]]) -> tuple[T, Challenge] | None: ...


class SecurityInfoRows(Protocol):
    """The user's summary and method rows, written together under the summary's ETag."""

    async def summary(self, user_id: str) -> SecurityInfoSummary: ...

    async def methods(self, user_id: str) -> list[RegisteredMethod]: ...

    async def save(self, summary: SecurityInfoSummary, put: list[RegisteredMethod] | None = None,
                   delete: list[Method] | None = None) -> SecurityInfoSummary: ...


class PendingSetups(Protocol):
    """The user's one pending authenticator app setup."""

    async def put_pending_setup(self, setup: PendingSetup) -> None: ...

    async def pending_setup(self, user_id: str) -> PendingSetup | None: ...

    async def take_pending_setup(self, setup: PendingSetup) -> bool: ...


class AdminDirectory(Protocol):
    """What registration asks the directory: a user's roles (admins, A12), the organisation (its name and verified
    domains: the work addresses an alternate email must not be) and where the user is (the phone country)."""

    async def directory_roles(self, user_id: str) -> Any: ...

    async def organization(self) -> Any: ...

    async def usage_location(self, user_id: str) -> str | None: ...


class ResetStanding(Protocol):
    """Whether the service can reset this user's password at all, whatever they register (the reset's rules)."""

    async def standing(self, user_id: str, policy: Policy) -> Refusal | None: ...


class RegistrationThrottle(Protocol):
    """The SSPR throttle (shared/services/throttle.py) as registration uses it."""

    async def ensure_not_blocked(self, user_id: str) -> None: ...

    async def admit_send(self, user_id: str, channel: Channel, client_ip: str | None, actor: Actor) -> None: ...

    async def record_failure(self, user_id: str, actor: Actor, client_ip: str | None) -> None: ...


class CodeQueue(Protocol):
    async def verification_code(self, challenge: Challenge, message_id: str,
                                store: Literal["registration", "reset"] = ...) -> None: ...


class AuditWriter(Protocol):
    async def write(self, event: AuditEvent) -> None: ...
