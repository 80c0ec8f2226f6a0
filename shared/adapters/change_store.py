"""Self-service password changes in Table Storage ("PasswordChanges"): one row per change that reached the agent.

PartitionKey = the change id (a GUID), RowKey = "change". The row holds who (user id, the typed name), the job's
expiry, the state and the outcome; the change's secret only as an HMAC, never a password (both went to the agent
sealed, security.md H2). Every change of the row is a read-decide-write under its ETag (`change`).

Purge (E4): a row serves its page and its agent's result for the job's lifetime at most; `purge_expired` deletes rows
created before a cutoff (a day, shared/domain/password_change.py REQUEST_RETENTION).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from azure.data.tables import TableEntity

from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.storage import StorageClients, create_row, purge_where, read_row
from shared.domain.password_change import ChangeRequest, ChangeState

TABLE = "PasswordChanges"
ROW = "change"
T = TypeVar("T")


def _entity(r: ChangeRequest) -> dict[str, Any]:
    return {
        "PartitionKey": r.change_id, "RowKey": ROW, "secretDigest": r.secret_digest, "userId": r.user_id,
        "username": r.username, "throttleKeys": ",".join(r.throttle_keys), "createdAt": r.created_at,
        "expiresAt": r.expires_at, "clientIp": r.client_ip, "state": r.state.value, "rule": r.rule,
        "settlingAt": r.settling_at, "sessionsRevoked": r.sessions_revoked, "appliedBy": r.applied_by,
    }


def _request(e: TableEntity) -> tuple[ChangeRequest, str]:
    name_key, _, address_key = str(e.get("throttleKeys") or ",").partition(",")
    settling = e.get("settlingAt")
    revoked = e.get("sessionsRevoked")
    request = ChangeRequest(
        change_id=str(e["PartitionKey"]), secret_digest=str(e["secretDigest"]), user_id=str(e["userId"]),
        username=str(e.get("username") or ""), throttle_keys=(name_key, address_key), created_at=e["createdAt"],
        expires_at=e["expiresAt"], client_ip=e.get("clientIp"), state=ChangeState(str(e["state"])),
        rule=e.get("rule"), settling_at=settling if isinstance(settling, datetime) else None,
        sessions_revoked=revoked if isinstance(revoked, bool) else None, applied_by=e.get("appliedBy"),
    )
    return request, str(e.metadata["etag"])


class ChangeStore:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def create(self, request: ChangeRequest) -> None:
        await create_row(await self._storage.table_ready(TABLE), _entity(request), "password change")

    async def get(self, change_id: str) -> ChangeRequest | None:
        found = await self._read(change_id)
        return found[0] if found else None

    async def change(self, change_id: str,
                     rule: Callable[[ChangeRequest], tuple[T, ChangeRequest]]) -> tuple[T, ChangeRequest] | None:
        """Apply `rule` to the stored row under its ETag, re-reading when another writer won; None if it is gone.
        An unchanged row is not written."""
        table = await self._storage.table_ready(TABLE)

        async def attempt() -> tuple[T, ChangeRequest] | None:
            found = await self._read(change_id)
            if found is None:
                return None
            current, etag = found
            result, updated = rule(current)
            if updated != current:
                await write_if_unchanged(table, _entity(updated), etag, "password change")
            return result, updated

        return await retry_lost_races(attempt, f"password change {change_id}")

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` rows of changes made before `cutoff`; idempotent."""
        table = await self._storage.table_ready(TABLE)
        return await purge_where(table, "createdAt lt @cutoff", {"cutoff": cutoff}, limit, "password change")

    async def _read(self, change_id: str) -> tuple[ChangeRequest, str] | None:
        found = await read_row(await self._storage.table_ready(TABLE), change_id, ROW, "password change")
        return None if found is None else _request(found)
