"""The Entra password target: PATCH passwordProfile and revokeSignInSessions through Microsoft Graph."""

from __future__ import annotations

from typing import Protocol

from shared.errors import Conflict, GraphError
from shared.services.password_targets.base import ENTRA, Applied, Change, PasswordRefused, TargetFailed

APPLIED = Applied("Microsoft Graph")


class PasswordGraph(Protocol):
    """What this target needs of the Graph adapter."""

    async def set_password(self, user_id: str, password: str) -> None: ...

    async def revoke_sessions(self, user_id: str) -> None: ...


class EntraTarget:
    name = ENTRA

    def __init__(self, graph: PasswordGraph) -> None:
        self._graph = graph

    async def set_password(self, change: Change, password: str) -> Applied:
        try:
            await self._graph.set_password(change.user_id, password)
        except GraphError as error:
            if error.status == 400:  # Graph's own complexity rules: the user may choose another password
                raise PasswordRefused() from None
            raise TargetFailed(f"directory-error-{error.status}", error) from None
        return APPLIED

    async def outcome(self, change: Change) -> Applied:
        # Graph answers in the request that sets the password: a change of Entra's is never left pending.
        raise TargetFailed("nothing-pending", Conflict("no password change of this flow is waiting"))

    async def revoke_sessions(self, user_id: str) -> None:
        await self._graph.revoke_sessions(user_id)
