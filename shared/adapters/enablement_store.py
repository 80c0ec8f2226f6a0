"""Enablement in Table Storage: one row per enabled user, and the runs that materialise them, with their shards.

Table "Enablement": PartitionKey = hash bucket of the user id (shared/domain/enablement.py), RowKey = user id,
so "is user X enabled?" is one point read and a page's rows go in single-partition transactions of up to 100.

Table "EnablementRuns", the run kit's layout (shared/adapters/run_store.py), one partition per run so a shard's
checkpoint is one transaction:
    (runId, "run")          the run: state, counters, generation
    (runId, "page-000042")  a Graph page: its cursor (the nextLink that reads it) and whether it is done
    (runId, "sweep-07")     the sweep of Enablement partition "07" and whether it is done
plus ("lock", "enablement") naming the latest run and the last generation (and, while a run is being started, when
it was reserved and which run it replaces, so a failed start can hand the lock back), and ("index", <newest first>) rows
to list the latest runs. Every change of a run row names its ETag, so a duplicate shard never counts twice.

Lifetime: user rows live as long as the scope holds them (a run's sweep, or the scope re-sync, removes them). A
finished run's partition and index row are bookkeeping: `purge_finished_runs` deletes those finished before a
cutoff, never the latest run (the lock's) nor the latest completed one (security.md E4).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity
from azure.data.tables.aio import TableClient

from shared import queues
from shared.adapters.etag_retry import LostRace, is_conflict, replace_if_unchanged
from shared.adapters.run_store import KeyRange, Lock, RunsFront, RunTable, ShardQueue, upsert_batches
from shared.adapters.storage import StorageClients, delete_rows
from shared.adapters.storage_errors import storage_errors
from shared.domain.enablement import (
    PARTITION_BUCKETS,
    TRANSACTION_LIMIT,
    EnabledUser,
    Run,
    is_guid,
    partition_for,
)
from shared.domain.policy import Scope
from shared.domain.runs import TERMINAL, RunState

USERS_TABLE = "Enablement"
RUNS_TABLE = "EnablementRuns"
QUEUE = queues.ENABLEMENT
LOCK_KEY = ("lock", "enablement")
# Transactions in flight per process: hides round trips without starving the event loop (measured: more does
# not help on Azurite, where the SDK's batch encoding is the cost).
WRITE_PARALLELISM = 8


@dataclass(frozen=True)
class Shard:
    """A page or sweep row of a run."""

    index: int
    done: bool
    cursor: str | None  # pages only: the URL that reads this page (None: the run's first request)
    etag: str


def _page_key(index: int) -> str:
    return f"page-{index:06d}"


def _sweep_key(bucket: int) -> str:
    return f"sweep-{bucket:02d}"


def _run_entity(run: Run) -> dict[str, Any]:
    return {
        "PartitionKey": run.id, "RowKey": "run", "scope": run.scope.value, "groupId": run.group_id,
        "includeGuests": run.include_guests, "generation": run.generation, "requestedBy": run.requested_by,
        "createdAt": run.created_at, "updatedAt": run.updated_at, "state": run.state.value,
        "startedAt": run.started_at, "completedAt": run.completed_at, "usersTotal": run.users_total,
        "usersProcessed": run.users_processed, "inScope": run.in_scope, "removed": run.removed,
        "previousRows": run.previous_rows, "pagesDone": run.pages_done, "pageCount": run.page_count,
        "sweepsDone": run.sweeps_done, "transactions": run.transactions, "audited": run.audited,
        "errors": json.dumps(list(run.errors)),
    }


def _run_from(entity: dict[str, Any]) -> Run:
    return Run(
        id=entity["PartitionKey"], scope=Scope(entity["scope"]), group_id=entity.get("groupId"),
        include_guests=bool(entity.get("includeGuests")), generation=int(entity["generation"]),
        requested_by=entity.get("requestedBy") or "", created_at=entity["createdAt"], updated_at=entity["updatedAt"],
        state=RunState(entity["state"]), started_at=entity.get("startedAt"), completed_at=entity.get("completedAt"),
        users_total=_int_or_none(entity.get("usersTotal")), users_processed=int(entity.get("usersProcessed") or 0),
        in_scope=int(entity.get("inScope") or 0), removed=int(entity.get("removed") or 0),
        previous_rows=_int_or_none(entity.get("previousRows")), pages_done=int(entity.get("pagesDone") or 0),
        page_count=_int_or_none(entity.get("pageCount")), sweeps_done=int(entity.get("sweepsDone") or 0),
        transactions=int(entity.get("transactions") or 0), audited=bool(entity.get("audited")),
        errors=tuple(json.loads(entity.get("errors") or "[]")),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _user_entity(user: EnabledUser) -> dict[str, Any]:
    return {
        "PartitionKey": user.partition, "RowKey": user.user_id, "scope": user.scope.value,
        "groupId": user.group_id, "userType": user.user_type, "generation": user.generation,
        "displayName": user.display_name, "userPrincipalName": user.user_principal_name,
    }


def _user_from(entity: dict[str, Any]) -> EnabledUser:
    return EnabledUser(user_id=str(entity["RowKey"]), user_type=str(entity.get("userType") or "Member"),
                       scope=Scope(entity["scope"]), group_id=entity.get("groupId"),
                       generation=int(entity.get("generation") or 0),
                       display_name=str(entity.get("displayName") or ""),
                       user_principal_name=str(entity.get("userPrincipalName") or ""))




class EnablementStore(RunsFront[Run]):
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self._writes = asyncio.Semaphore(WRITE_PARALLELISM)
        self.runs: RunTable[Run] = RunTable(storage, RUNS_TABLE, LOCK_KEY[1], _run_entity, _run_from)

    async def _users(self) -> TableClient:
        return await self._storage.table_ready(USERS_TABLE)

    # ---- the hot path ----------------------------------------------------------------------------------------

    async def get_enablement(self, user_id: str) -> dict[str, Any] | None:
        """The user's Enablement row (one point read), or None when SSPR is not enabled for them."""
        row = await self._point_read(user_id)
        return None if row is None else dict(row)

    # ---- user rows --------------------------------------------------------------------------------------------

    async def enabled_user_ids(self) -> AsyncIterator[tuple[str, str]]:
        """Every Enablement row as (partition, user id), streamed 1,000 a page, in partition then id order."""
        table = await self._users()
        with storage_errors("enablement rows read"):
            async for row in table.list_entities(select=["PartitionKey", "RowKey"], results_per_page=1000):
                yield str(row["PartitionKey"]), str(row["RowKey"])

    async def rows_in_range(self, bucket: str, ids: KeyRange, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` rows (id, scope and the user's names) of partition `bucket` with ids in `ids`, in id order,
        and whether more follow: a compliance sweep's read of the scope."""
        table = await self._users()
        clauses, params = ids.clauses("RowKey")
        with storage_errors("enablement read"):
            pager: Any = table.query_entities(" and ".join(["PartitionKey eq @pk", *clauses]),
                                              parameters={"pk": bucket, **params}, select=["RowKey", "scope", "displayName", "userPrincipalName"],
                                              results_per_page=limit).by_page()
            rows: list[dict[str, Any]] = []
            async for page in pager:
                rows = [dict(e) async for e in page]
                if rows:  # the service may answer an empty page with a continuation (a timeout): read on
                    break
            more = pager.continuation_token is not None
        return rows, more and bool(rows)

    async def write_users(self, users: list[EnabledUser]) -> int:
        """Upsert the rows, grouped by partition in transactions of up to 100; returns the transaction count."""
        return await upsert_batches(await self._users(), [_user_entity(u) for u in users], self._writes,
                                    "enablement")

    async def user_row(self, user_id: str) -> tuple[EnabledUser, str] | None:
        """The user's row as stored and its ETag (one point read), or None when there is none."""
        row = await self._point_read(user_id)
        if row is None:
            return None
        return _user_from(row), str(row.metadata["etag"])

    async def _point_read(self, user_id: str) -> TableEntity | None:
        if not is_guid(user_id):
            return None  # never a key built from something that is not a GUID (security.md D6)
        key = user_id.lower()
        table = await self._users()
        with storage_errors("enablement read"):
            try:
                return await table.get_entity(partition_for(key), key)
            except ResourceNotFoundError:
                return None

    async def put_user_if_unchanged(self, user: EnabledUser, etag: str | None) -> bool:
        """Create the row (etag None: there was none) or replace it if still at `etag`; False when someone else
        wrote or removed it since it was read (an enablement run: its row wins)."""
        table = await self._users()
        with storage_errors("enablement write"):
            try:
                if etag is None:
                    await table.create_entity(_user_entity(user))
                else:
                    await table.update_entity(_user_entity(user), **replace_if_unchanged(etag))
            except ResourceExistsError:
                return False
            except HttpResponseError as exc:
                if is_conflict(exc) or exc.status_code == 404:
                    return False
                raise
        return True

    async def delete_user_if_unchanged(self, user_id: str, etag: str) -> bool:
        """Delete the user's row if still at `etag`; False when it changed since it was read or is gone."""
        key = user_id.lower()
        table = await self._users()
        with storage_errors("enablement delete"):
            try:
                await table.delete_entity(partition_for(key), key, etag=etag,
                                          match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                return False
            except HttpResponseError as exc:
                if is_conflict(exc):
                    return False
                raise
        return True

    async def sweep_partition(self, bucket: int, generation: int) -> tuple[int, int]:
        """Delete the partition's rows older than `generation` (users who left the scope).

        Returns (rows deleted, transactions). Each delete names the ETag the query saw, so a row rewritten
        meanwhile stays; a batch that fails because a row is already gone (a repeated sweep) is retried row by row.
        """
        table = await self._users()
        removed = transactions = 0
        chunk: list[TableEntity] = []
        with storage_errors("enablement sweep"):
            rows = table.query_entities(
                "PartitionKey eq @pk and generation lt @gen", parameters={"pk": f"{bucket:02d}", "gen": generation},
                select=["PartitionKey", "RowKey"], results_per_page=1000,
            )
            async for row in rows:
                chunk.append(row)
                if len(chunk) == TRANSACTION_LIMIT:
                    removed += await self._delete(table, chunk)
                    transactions += 1
                    chunk = []
            if chunk:
                removed += await self._delete(table, chunk)
                transactions += 1
        return removed, transactions

    async def _delete(self, table: TableClient, rows: list[TableEntity]) -> int:
        """One partition's rows under the ETags read; a row already gone (a repeated sweep) or rewritten stays out
        of the count."""
        async with self._writes:
            return await delete_rows(table, rows)

    # ---- runs (the run kit's table, shared/adapters/run_store.py) -------------------------------------------------

    async def claim_lock(self, lock: Lock, run_id: str, generation: int, reserved_at: datetime | None = None) -> str:
        """Name `run_id` as the latest run, if nobody else claimed the lock since `lock` was read; the new ETag.

        With `reserved_at`, the lock also records the run it replaces, so `release_lock` can undo the claim.
        """
        columns: dict[str, Any] = {"runId": run_id, "generation": generation}
        if reserved_at is not None:
            columns.update(reservedAt=reserved_at, previousRunId=lock.run_id, previousGeneration=lock.generation)
        return await self.runs.write_lock(columns, lock.etag)

    async def release_lock(self, lock: Lock, etag: str) -> bool:
        """Give a reserved lock back to the run it replaced, unless it changed since `etag`; whether it did."""
        try:
            await self.runs.write_lock({"runId": lock.run_id, "generation": lock.generation}, etag)
        except LostRace:
            return False
        return True

    async def create_run(self, run: Run) -> None:
        """The run row and its first page (cursor: the run's initial request) in one transaction, plus an index row."""
        await self.runs.create_run(run, [{"RowKey": _page_key(0), "cursor": None, "done": False}])

    async def latest_completed_run(self, scan: int = 100) -> Run | None:
        return await self.runs.latest_completed(scan)

    async def get_page(self, run_id: str, index: int) -> Shard | None:
        return await self._shard(run_id, _page_key(index), index)

    async def get_sweep(self, run_id: str, bucket: int) -> Shard | None:
        return await self._shard(run_id, _sweep_key(bucket), bucket)

    async def _shard(self, run_id: str, row_key: str, index: int) -> Shard | None:
        entity = await self.runs.get_row(run_id, row_key)
        if entity is None:
            return None
        return Shard(index, bool(entity.get("done")), entity.get("cursor"), str(entity.metadata["etag"]))

    async def add_page(self, run_id: str, index: int, cursor: str) -> None:
        """The row of the next page with the cursor that reads it; kept as is if it exists already."""
        await self.runs.add_row(run_id, _page_key(index), {"cursor": cursor, "done": False})

    async def checkpoint_page(self, run: Run, run_etag: str, page: Shard, processed: int, written: int) -> None:
        """Mark the page done and store the run's new counters, atomically; creates the sweep rows with the last page."""
        rows: list[tuple[str, dict[str, Any], str | None]] = [
            (_page_key(page.index), {"cursor": page.cursor, "done": True, "processed": processed, "written": written},
             page.etag)]
        if run.pages_complete:
            rows += [(_sweep_key(b), {"done": False}, None) for b in range(PARTITION_BUCKETS)]
        await self.runs.checkpoint(run, run_etag, rows)

    async def checkpoint_sweep(self, run: Run, run_etag: str, sweep: Shard, removed: int) -> None:
        await self.runs.checkpoint(run, run_etag, [(_sweep_key(sweep.index), {"done": True, "removed": removed},
                                                    sweep.etag)])

    # ---- purge of finished runs (security.md E4) -----------------------------------------------------------------

    async def purge_finished_runs(self, cutoff: datetime, limit: int) -> int:
        """Delete the partitions and index rows of up to `limit` runs that finished before `cutoff`; the count.

        Kept whatever their age: the lock's run (the latest) and the newest completed run (the scope's source,
        what eligibility and the scope re-sync read). A run's rows go first and its index row last, so a purge
        cut short is finished by the next one.
        """
        lock = await self.read_lock()
        purged = 0
        kept_completed = False
        async for entry, found in self.runs.index():
            if found is not None:
                run = found[0]
                if run.state is RunState.COMPLETED and not kept_completed:
                    kept_completed = True  # the newest completed run: the index lists newest first
                    continue
                if run.id == lock.run_id or run.state not in TERMINAL:
                    continue
                if (run.completed_at or run.updated_at) >= cutoff:
                    continue
                await self.runs.delete_run(run.id)
            elif str(entry.get("runId") or "") == lock.run_id:
                continue  # reserved, its run row not written yet
            await self.runs.delete_index_entry(entry)
            purged += 1
            if purged >= limit:
                break
        return purged


class EnablementQueue(ShardQueue):
    """Shard messages of enablement runs (EnablementMessage) on queue `sspr-enablement`."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, QUEUE, "enablement")
