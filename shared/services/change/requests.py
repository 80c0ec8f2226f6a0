"""A change request's row as the service keeps it: a new one with its secret, opened by that secret, taken for
settling once, and settled; every change under the row's ETag (shared/adapters/change_store.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.domain import password_change
from shared.domain.clock import Clock
from shared.domain.ids import is_guid
from shared.domain.password_change import ChangeRequest, ChangeState
from shared.domain.reset_flow import normalise_username
from shared.errors import FlowNotFound
from shared.services.change.ports import ChangeRows
from shared.services.reset.state import open_by_secret


@dataclass(frozen=True)
class ChangeRequests:
    rows: ChangeRows
    key: bytes
    clock: Clock

    def now(self) -> datetime:
        return self.clock()

    async def new(self, user_id: str, username: str, throttle_keys: tuple[str, str], expires_at: datetime,
                  client_ip: str | None) -> tuple[ChangeRequest, str]:
        """A pending change for this user, stored, and the secret its page asks with (kept only as an HMAC)."""
        change_id = str(uuid.uuid4())
        secret = password_change.new_change_secret()
        request = ChangeRequest(change_id=change_id,
                                secret_digest=password_change.secret_digest(self.key, change_id, secret),
                                user_id=user_id, username=normalise_username(username), throttle_keys=throttle_keys,
                                created_at=self.clock(), expires_at=expires_at, client_ip=client_ip)
        await self.rows.create(request)
        return request, secret

    async def open(self, change_id: str, secret: str) -> ChangeRequest:
        """The change this secret opens; FlowNotFound for an unknown id or a wrong secret (one answer)."""
        return await open_by_secret(self.rows, change_id, secret,
                                    lambda r: password_change.secret_matches(r, self.key, secret), "change")

    async def read(self, change_id: str) -> ChangeRequest | None:
        """The change by id alone, for the service's own use (the agent's result), never a caller's."""
        return await self.rows.get(change_id.lower()) if is_guid(change_id) else None

    async def settling(self, request: ChangeRequest) -> ChangeRequest | None:
        """Take the request to settle its verdict; None when it is settled or being settled by another."""
        now = self.clock()

        def taken(r: ChangeRequest) -> tuple[bool, ChangeRequest]:
            claimed = password_change.settling(r, now)
            return (True, claimed) if claimed is not None else (False, r)

        outcome = await self.rows.change(request.change_id, taken)
        return outcome[1] if outcome is not None and outcome[0] else None

    async def settled(self, request: ChangeRequest, state: ChangeState, rule: str | None = None,
                      sessions_revoked: bool | None = None, applied_by: str | None = None) -> ChangeRequest:
        outcome = await self.rows.change(request.change_id, lambda r: (None, password_change.settled(
            r, state, rule, sessions_revoked, applied_by)))
        if outcome is None:
            raise FlowNotFound("the change vanished")
        return outcome[1]
