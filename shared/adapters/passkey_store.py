"""Passkeys in the SecurityInfo table: the user's pending registration, and the sign counter kept on each use.

The passkeys themselves are the user's `method-passkey` row (shared/domain/passkeys.py says what it holds), saved
with the summary like every method. Two things change outside that save:
- `pending-passkey`: the open registration's challenge and user handle, one per user, dead after `expiresAt`
  (purged with the other `pending-` rows, security.md E4); taken under its ETag, so one completion wins.
- the counter and backup flags of a passkey after a reset used it: a read-decide-write of the method row under
  its ETag, so of parallel uses exactly one moves the counter past a value (a clone loses, I1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.security_info_store import METHOD_ROW_PREFIX, PENDING_ROW_PREFIX, TABLE
from shared.adapters.storage import StorageClients, read_row
from shared.adapters.storage_errors import storage_errors
from shared.domain import passkeys
from shared.domain.passkeys import UserPasskeys
from shared.domain.policy import Method

PENDING_PASSKEY_ROW = PENDING_ROW_PREFIX + "passkey"
PASSKEY_ROW = METHOD_ROW_PREFIX + Method.PASSKEY.value


@dataclass(frozen=True)
class PendingPasskey:
    user_id: str
    setup_id: str
    challenge: str  # base64url
    handle: str  # the user handle the new credential is created under
    expires_at: datetime
    etag: str | None = None


@dataclass(frozen=True)
class PasskeyStore:
    storage: StorageClients

    async def put_pending(self, pending: PendingPasskey, created_at: datetime) -> None:
        table = await self.storage.table_ready(TABLE)
        with storage_errors("pending passkey write"):
            await table.upsert_entity({"PartitionKey": pending.user_id, "RowKey": PENDING_PASSKEY_ROW,
                                       "setupId": pending.setup_id, "challenge": pending.challenge,
                                       "handle": pending.handle, "createdAt": created_at,
                                       "expiresAt": pending.expires_at}, mode=UpdateMode.REPLACE)

    async def pending(self, user_id: str) -> PendingPasskey | None:
        e = await read_row(await self.storage.table_ready(TABLE), user_id, PENDING_PASSKEY_ROW, "pending passkey")
        if e is None:
            return None
        return PendingPasskey(user_id=user_id, setup_id=e["setupId"], challenge=e["challenge"], handle=e["handle"],
                              expires_at=e["expiresAt"], etag=e.metadata["etag"])

    async def take_pending(self, pending: PendingPasskey) -> bool:
        """Delete the pending registration if it is still the one read; False if another request took it."""
        table = await self.storage.table_ready(TABLE)
        delete = ("delete", {"PartitionKey": pending.user_id, "RowKey": PENDING_PASSKEY_ROW},
                  {"etag": pending.etag, "match_condition": MatchConditions.IfNotModified})
        with storage_errors("pending passkey take"):
            try:
                await table.submit_transaction([delete])  # a transaction: a plain delete calls 404 a success
            except TableTransactionError as exc:
                if exc.status_code in (404, 412):
                    return False
                raise
        return True

    async def change_passkeys(self, user_id: str, rule: Callable[[UserPasskeys], UserPasskeys]) -> bool:
        """Apply `rule` to the user's passkeys under the method row's ETag (re-read on a lost race); False when the
        user has no passkeys. `rule` may raise to refuse: nothing is written then."""
        table = await self.storage.table_ready(TABLE)

        async def attempt() -> bool:
            with storage_errors("passkey read"):
                try:
                    entity = await table.get_entity(user_id, PASSKEY_ROW)
                except ResourceNotFoundError:
                    return False
            keys = passkeys.decode(entity.get("secret"))
            if keys is None:
                return False
            changed = {**entity, "secret": passkeys.encode(rule(keys))}
            await write_if_unchanged(table, changed, entity.metadata["etag"], "passkey")
            return True

        return await retry_lost_races(attempt, f"passkeys of {user_id}")
