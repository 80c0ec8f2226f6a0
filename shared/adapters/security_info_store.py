"""Security info in Table Storage: one partition per user, a summary row and one row per registered method.

A method change and its summary change are one single-partition transaction guarded by the summary's ETag,
so the summary the sign-in hook reads never disagrees with the method rows (security.md F3).

Lifetime: summary and method rows live until the user removes them. A `pending-*` row (an authenticator app setup
not yet confirmed) is dead once past its `expiresAt` (confirmation is refused then); `purge_expired` deletes
those (security.md E4), under the ETag read so a setup restarted meanwhile stays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.etag_retry import LostRace, retry_lost_races
from shared.adapters.run_store import KeyRange
from shared.adapters.storage import StorageClients, purge_where
from shared.adapters.storage_errors import storage_errors
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from shared.domain.totp import PendingSetup
from shared.errors import PreconditionFailed, StorageUnavailable

TABLE = "SecurityInfo"
SUMMARY_ROW = "summary"
METHOD_ROW_PREFIX = "method-"
PENDING_ROW_PREFIX = "pending-"
PENDING_APP_ROW = PENDING_ROW_PREFIX + "authenticatorApp"  # outside the method- range: methods() never lists it
ENTRA_ROW = "entra"  # the methods last read from Entra (shared/domain/entra_methods.py); methods() never lists it


def _summary_entity(summary: SecurityInfoSummary) -> dict[str, Any]:
    return {
        "PartitionKey": summary.user_id,
        "RowKey": SUMMARY_ROW,
        "methods": ",".join(sorted(m.value for m in summary.methods)),
        "methodCount": len(summary.methods),
        "lastConfirmedAt": summary.last_confirmed_at,
        "firstPromptedAt": summary.first_prompted_at,
        "isAdmin": summary.is_admin,
        "entraMethods": ",".join(sorted(m.value for m in summary.entra_methods)),
    }


def _summary_from(entity: dict[str, Any]) -> SecurityInfoSummary:
    methods = frozenset(Method(m) for m in str(entity.get("methods") or "").split(",") if m)
    return SecurityInfoSummary(
        user_id=entity["PartitionKey"],
        methods=methods,
        last_confirmed_at=entity.get("lastConfirmedAt"),
        first_prompted_at=entity.get("firstPromptedAt"),
        is_admin=bool(entity.get("isAdmin", False)),
        entra_methods=frozenset(Method(m) for m in str(entity.get("entraMethods") or "").split(",") if m),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


def _method_entity(user_id: str, method: RegisteredMethod) -> dict[str, Any]:
    return {
        "PartitionKey": user_id,
        "RowKey": METHOD_ROW_PREFIX + method.kind.value,
        "kind": method.kind.value,
        "registeredAt": method.registered_at,
        "contact": method.contact,
        "secret": method.secret,
        "lastUsedStep": method.last_used_step,
    }


def _method_from(entity: dict[str, Any]) -> RegisteredMethod:
    return RegisteredMethod(
        kind=Method(entity["kind"]),
        registered_at=entity["registeredAt"],
        contact=entity.get("contact"),
        secret=entity.get("secret"),
        last_used_step=entity.get("lastUsedStep"),
    )


@dataclass(frozen=True)
class SecurityInfoStore:
    """Reads and changes one user's security info; every change names the summary ETag it read."""

    storage: StorageClients

    async def summary(self, user_id: str) -> SecurityInfoSummary:
        """One point read; a user who never registered gets an empty summary (etag None)."""
        table = await self.storage.table_ready(TABLE)
        try:
            entity = await table.get_entity(user_id, SUMMARY_ROW)
        except ResourceNotFoundError:
            return SecurityInfoSummary(user_id=user_id)
        except AzureError as exc:
            raise StorageUnavailable(f"security info read failed: {type(exc).__name__}") from None
        return _summary_from(entity)

    async def methods(self, user_id: str) -> list[RegisteredMethod]:
        table = await self.storage.table_ready(TABLE)
        try:
            rows = table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": user_id, "lo": METHOD_ROW_PREFIX, "hi": METHOD_ROW_PREFIX + "~"},
            )
            return [_method_from(e) async for e in rows]
        except AzureError as exc:
            raise StorageUnavailable(f"security info read failed: {type(exc).__name__}") from None

    async def save(self, summary: SecurityInfoSummary, put: list[RegisteredMethod] | None = None,
                   delete: list[Method] | None = None) -> SecurityInfoSummary:
        """Write the summary and method changes atomically; 412 (`PreconditionFailed`) if the summary changed
        since it was read. Returns the summary with its new ETag."""
        operations: list[tuple[Any, ...]] = []
        entity = _summary_entity(summary)
        if summary.etag is None:
            operations.append(("create", entity))
        else:
            operations.append(("update", entity, {"mode": UpdateMode.REPLACE, "etag": summary.etag,
                                                  "match_condition": MatchConditions.IfNotModified}))
        for method in put or []:
            operations.append(("upsert", _method_entity(summary.user_id, method), {"mode": UpdateMode.REPLACE}))
        for kind in delete or []:
            operations.append(("delete", {"PartitionKey": summary.user_id, "RowKey": METHOD_ROW_PREFIX + kind.value}))
        table = await self.storage.table_ready(TABLE)
        try:
            await table.submit_transaction(operations)
        except TableTransactionError as exc:
            if exc.status_code in (409, 412):  # created concurrently, or changed since read
                raise PreconditionFailed("security info changed concurrently") from None
            if exc.status_code == 404:  # deleting a method row that is not there
                raise PreconditionFailed("security info changed concurrently") from None
            raise StorageUnavailable(f"security info write failed: {exc.status_code}") from None
        except AzureError as exc:
            raise StorageUnavailable(f"security info write failed: {type(exc).__name__}") from None
        return await self.summary(summary.user_id)

    # ---- methods registered in Entra: the last read, and their kinds on the summary ------------------------

    async def entra_methods(self, user_id: str) -> list[RegisteredMethod]:
        """The methods last read from the user's Entra account (none if never read)."""
        table = await self.storage.table_ready(TABLE)
        with storage_errors("entra methods read"):
            try:
                entity = await table.get_entity(user_id, ENTRA_ROW)
            except ResourceNotFoundError:
                return []
        return [RegisteredMethod(Method(m["kind"]), entity["readAt"], contact=m["contact"], secret="entra")
                for m in json.loads(entity.get("methods") or "[]")]

    async def save_entra_methods(self, user_id: str, methods: list[RegisteredMethod], read_at: datetime) -> None:
        """Keep what Entra says now: its kinds on the summary (which the sign-in hook reads, written under the
        summary's ETag, created for a user who registered nothing here), then the contacts on the `entra` row. A
        failure between the two is mended by the next read, which writes both again."""
        table = await self.storage.table_ready(TABLE)
        kinds = frozenset(m.kind for m in methods)
        row = {"PartitionKey": user_id, "RowKey": ENTRA_ROW, "readAt": read_at,
               "methods": json.dumps([{"kind": m.kind.value, "contact": m.contact} for m in methods])}

        async def attempt() -> None:
            summary = await self.summary(user_id)
            if summary.entra_methods == kinds and summary.etag is not None:
                await table.upsert_entity(row, mode=UpdateMode.REPLACE)
                return
            try:
                await self.save(replace(summary, entra_methods=kinds), put=[])
            except PreconditionFailed:
                raise LostRace from None
            with storage_errors("entra methods write"):
                await table.upsert_entity(row, mode=UpdateMode.REPLACE)

        await retry_lost_races(attempt, f"entra methods of {user_id}")

    # ---- authenticator app: the pending setup and the replay-safe last used step (TOTP) -------------------

    async def advance_last_used_step(self, user_id: str, kind: Method, step: int) -> bool:
        """Record `step` as the method's last used TOTP step if it is after the stored one; False if it is not
        (already used, or a later step was used meanwhile) or the method is gone. A read-then-write under the
        row's ETag, retried on 412 with backoff: of parallel submissions of one code exactly one gets True (A10)."""
        table = await self.storage.table_ready(TABLE)

        async def attempt() -> bool:
            try:
                entity = await table.get_entity(user_id, METHOD_ROW_PREFIX + kind.value)
            except ResourceNotFoundError:
                return False
            except AzureError as exc:
                raise StorageUnavailable(f"security info read failed: {type(exc).__name__}") from None
            last = entity.get("lastUsedStep")
            if last is not None and step <= int(last):
                return False
            try:
                await table.update_entity({"PartitionKey": user_id, "RowKey": entity["RowKey"], "lastUsedStep": step},
                                          mode=UpdateMode.MERGE, etag=entity.metadata["etag"],
                                          match_condition=MatchConditions.IfNotModified)
                return True
            except ResourceModifiedError:
                raise LostRace from None  # another submission wrote first: read its step and judge again
            except ResourceNotFoundError:
                return False  # the method was removed meanwhile
            except AzureError as exc:
                raise StorageUnavailable(f"security info write failed: {type(exc).__name__}") from None

        return await retry_lost_races(attempt, f"TOTP step of {user_id}")

    async def put_pending_setup(self, setup: PendingSetup) -> None:
        """Store the user's one pending authenticator app setup, replacing an earlier one."""
        table = await self.storage.table_ready(TABLE)
        entity = {"PartitionKey": setup.user_id, "RowKey": PENDING_APP_ROW, "setupId": setup.setup_id,
                  "secret": setup.sealed_seed, "createdAt": setup.created_at, "expiresAt": setup.expires_at}
        try:
            await table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise StorageUnavailable(f"security info write failed: {type(exc).__name__}") from None

    async def pending_setup(self, user_id: str) -> PendingSetup | None:
        table = await self.storage.table_ready(TABLE)
        try:
            e = await table.get_entity(user_id, PENDING_APP_ROW)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageUnavailable(f"security info read failed: {type(exc).__name__}") from None
        return PendingSetup(user_id=user_id, setup_id=e["setupId"], sealed_seed=e["secret"],
                            created_at=e["createdAt"], expires_at=e["expiresAt"], etag=e.metadata["etag"])

    async def take_pending_setup(self, setup: PendingSetup) -> bool:
        """Delete the pending setup if it is still the one read (ETag); False if another request took or
        replaced it first, so one confirmation wins."""
        table = await self.storage.table_ready(TABLE)
        delete = ("delete", {"PartitionKey": setup.user_id, "RowKey": PENDING_APP_ROW},
                  {"etag": setup.etag, "match_condition": MatchConditions.IfNotModified})
        try:
            # A transaction, because delete_entity alone reports "already deleted" (404) as success.
            await table.submit_transaction([delete])
        except TableTransactionError as exc:
            if exc.status_code in (404, 412):
                return False
            raise StorageUnavailable(f"security info write failed: {exc.status_code}") from None
        except AzureError as exc:
            raise StorageUnavailable(f"security info write failed: {type(exc).__name__}") from None
        return True

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` pending setups that expired before `cutoff`; the count deleted. Idempotent."""
        table = await self.storage.table_ready(TABLE)
        return await purge_where(table, "RowKey ge @lo and RowKey lt @hi and expiresAt lt @cutoff",
                                 {"lo": PENDING_ROW_PREFIX, "hi": PENDING_ROW_PREFIX + "~", "cutoff": cutoff}, limit,
                                 "security info")

    async def summaries_in(self, users: KeyRange, wanted: set[str]) -> dict[str, SecurityInfoSummary]:
        """The summaries of the users in `wanted` whose ids are in `users`: one partition-range scan reading the
        summary columns only (a sweep's read); summaries of other users in the range are read past, never kept."""
        table = await self.storage.table_ready(TABLE)
        clauses, params = users.clauses("PartitionKey")
        found: dict[str, SecurityInfoSummary] = {}
        with storage_errors("security info read"):
            rows = table.query_entities(" and ".join([*clauses, "RowKey eq @summary"]),
                                        parameters={**params, "summary": SUMMARY_ROW}, select=SUMMARY_COLUMNS,
                                        results_per_page=1000)
            async for e in rows:
                if e["PartitionKey"] in wanted:
                    found[e["PartitionKey"]] = _summary_from(e)
        return found


SUMMARY_COLUMNS = ["PartitionKey", "methods", "lastConfirmedAt", "firstPromptedAt", "isAdmin",
                   "entraMethods"]  # what a sweep reads
