"""One job's runs table: its lock row, run rows, shard rows and newest-first index, each changed under its ETag.

Layout, the same for every job (enablement, compliance, and the next):
    ("lock", <job>)        the latest run (one run at a time), plus whatever the job keeps beside it
    (runId, "run")         the run: state, counters; one partition per run, so a shard's checkpoint and the run's
                           counters go in one transaction
    (runId, <shard key>)   one row per shard: its cursor or continuation and whether it is done
    ("index", <newest>)    one row per run, newest first (shared/adapters/run_index.py)

The job's store says how its run is written (`encode`, `decode`) and what its shard rows hold; this table does the
rest. A conditional write that loses to another writer raises `LostRace` (shared/adapters/etag_retry.py), so the
caller re-reads and decides again through `retry_lost_races`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient
from pydantic import BaseModel

from shared.adapters.etag_retry import replace_if_unchanged, submit_if_unchanged, write_if_unchanged
from shared.adapters.run_index import INDEX_PARTITION, index_row, newest_run_ids, newest_runs
from shared.adapters.storage import StorageClients, delete_rows
from shared.adapters.storage_errors import storage_errors
from shared.domain.ids import is_guid
from shared.domain.runs import RunState

LOCK_PARTITION = "lock"
RUN_ROW = "run"
TRANSACTION_LIMIT = 100  # entities per single-partition transaction (Azure Tables)


class StoredRun(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def state(self) -> RunState: ...


R = TypeVar("R", bound=StoredRun)


@dataclass(frozen=True)
class Lock:
    """The lock row as read: the latest run, and the extra columns a job keeps in it (enablement: a generation, a
    reservation being started and what it replaced)."""

    run_id: str | None
    generation: int
    etag: str | None  # None: the lock row does not exist yet
    reserved_at: datetime | None = None
    previous_run_id: str | None = None
    previous_generation: int = 0


@dataclass(frozen=True)
class KeyRange:
    """A range of keys a shard reads by scan: after `after` (else from `lo`), up to `last` (else before `hi`)."""

    after: str | None = None  # exclusive; wins over `lo`
    lo: str | None = None  # inclusive
    last: str | None = None  # inclusive; wins over `hi`
    hi: str | None = None  # exclusive

    def clauses(self, column: str) -> tuple[list[str], dict[str, str]]:
        """OData clauses on `column` (a fixed name; the values are parameters) and their parameters."""
        bounds = [(">", "after", self.after), (">=", "lo", None if self.after is not None else self.lo),
                  ("<=", "last", self.last), ("<", "hi", None if self.last is not None else self.hi)]
        operators = {">": "gt", ">=": "ge", "<=": "le", "<": "lt"}
        clauses = [f"{column} {operators[op]} @{name}" for op, name, value in bounds if value is not None]
        return clauses, {name: value for _, name, value in bounds if value is not None}


class RunTable(Generic[R]):
    """The runs table of one job (module docstring)."""

    def __init__(self, storage: StorageClients, table: str, job: str, encode: Callable[[R], dict[str, Any]],
                 decode: Callable[[TableEntity], R]) -> None:
        self._storage = storage
        self._name = table
        self._job = job
        self._encode = encode
        self._decode = decode

    async def table(self) -> TableClient:
        return await self._storage.table_ready(self._name)

    def entity(self, run: R) -> dict[str, Any]:
        return self._encode(run)

    # ---- the lock ------------------------------------------------------------------------------------------------

    async def read_lock(self) -> Lock:
        table = await self.table()
        with storage_errors(f"{self._job} lock read"):
            try:
                e = await table.get_entity(LOCK_PARTITION, self._job)
            except ResourceNotFoundError:
                return Lock(None, 0, None)
        return Lock(e.get("runId"), int(e.get("generation") or 0), str(e.metadata["etag"]), e.get("reservedAt"),
                    e.get("previousRunId"), int(e.get("previousGeneration") or 0))

    async def write_lock(self, columns: Mapping[str, Any], etag: str | None) -> str:
        """Write the lock row (`runId` and the job's columns) if unchanged since `etag`; its new ETag, or LostRace."""
        entity = {"PartitionKey": LOCK_PARTITION, "RowKey": self._job, **columns}
        return await write_if_unchanged(await self.table(), entity, etag, f"{self._job} lock")

    # ---- runs ------------------------------------------------------------------------------------------------------

    async def create_run(self, run: R, shard_rows: list[dict[str, Any]]) -> None:
        """The run row and its first shard rows in one transaction, then its index row."""
        table = await self.table()
        ops: list[Any] = [("create", self._encode(run))]
        ops += [("create", {"PartitionKey": run.id, **row}) for row in shard_rows]
        with storage_errors(f"{self._job} run create"):
            await table.submit_transaction(ops)
            await table.create_entity(index_row(run.id, run.created_at))

    async def get_run(self, run_id: str) -> tuple[R, str] | None:
        """The run and its ETag, or None (an id that is not a GUID names no run)."""
        if not is_guid(run_id):
            return None
        found = await self.get_row(run_id, RUN_ROW)
        return None if found is None else (self._decode(found), str(found.metadata["etag"]))

    async def update_run(self, run: R, etag: str) -> str:
        """Replace the run row if unchanged since `etag`; its new ETag, or LostRace."""
        return await write_if_unchanged(await self.table(), self._encode(run), etag, f"{self._job} run")

    async def latest_runs(self, limit: int) -> list[R]:
        return await newest_runs(await self.table(), self.get_run, limit, f"{self._job} run")

    async def newest_run_ids(self) -> AsyncIterator[str]:
        async for run_id in newest_run_ids(await self.table(), f"{self._job} run"):
            yield run_id

    async def latest_completed(self, scan: int) -> R | None:
        """The newest completed run among the latest `scan` runs (newest first, read one at a time), or None."""
        seen = 0
        async for run_id in self.newest_run_ids():
            found = await self.get_run(run_id)
            if found and found[0].state is RunState.COMPLETED:
                return found[0]
            seen += 1
            if seen >= scan:
                break
        return None

    # ---- shard rows and checkpoints -------------------------------------------------------------------------------

    async def get_row(self, run_id: str, key: str) -> TableEntity | None:
        table = await self.table()
        with storage_errors(f"{self._job} run read"):
            try:
                return await table.get_entity(run_id.lower(), key)
            except ResourceNotFoundError:
                return None

    async def rows_between(self, run_id: str, first: str, last: str) -> list[TableEntity]:
        """The run's rows with keys in [first, last): one partition query."""
        table = await self.table()
        with storage_errors(f"{self._job} shard read"):
            return [e async for e in table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": run_id, "lo": first, "hi": last})]

    async def add_row(self, run_id: str, key: str, columns: Mapping[str, Any]) -> None:
        """Create a shard row; kept as it is if it exists already (a redelivery adds it again)."""
        table = await self.table()
        with storage_errors(f"{self._job} shard write"):
            try:
                await table.create_entity({"PartitionKey": run_id, "RowKey": key, **columns})
            except ResourceExistsError:
                pass

    async def update_row(self, run_id: str, key: str, columns: Mapping[str, Any], etag: str) -> str:
        """Replace one shard row if unchanged since `etag`; its new ETag, or LostRace."""
        entity = {"PartitionKey": run_id, "RowKey": key, **columns}
        return await write_if_unchanged(await self.table(), entity, etag, f"{self._job} checkpoint")

    async def checkpoint(self, run: R, run_etag: str, shard_rows: Sequence[tuple[str, Mapping[str, Any], str | None]]
                         ) -> None:
        """The run's new row and its shard rows (key, columns, ETag read; None: upsert) in one transaction, all
        under the ETags read: LostRace, and nothing applied, if any changed meanwhile."""
        ops: list[Any] = [
            ("update", {"PartitionKey": run.id, "RowKey": key, **columns}, replace_if_unchanged(etag))
            if etag is not None else ("upsert", {"PartitionKey": run.id, "RowKey": key, **columns})
            for key, columns, etag in shard_rows
        ]
        ops.append(("update", self._encode(run), replace_if_unchanged(run_etag)))
        await submit_if_unchanged(await self.table(), ops, f"{self._job} checkpoint")

    # ---- purge ----------------------------------------------------------------------------------------------------

    async def index(self) -> AsyncIterator[tuple[TableEntity, tuple[R, str] | None]]:
        """Every index row, newest first, with its run and ETag (None: the run is gone, or not written yet)."""
        table = await self.table()
        with storage_errors(f"{self._job} purge"):
            async for entry in table.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION},
                                                    select=["PartitionKey", "RowKey", "runId"],
                                                    results_per_page=100):
                yield entry, await self.get_run(str(entry.get("runId") or ""))

    async def delete_run(self, run_id: str) -> None:
        """The run's partition: its shard rows first, its run row last, so a purge cut short is finished later."""
        table = await self.table()
        with storage_errors(f"{self._job} purge"):
            rows = [r async for r in table.query_entities("PartitionKey eq @pk", parameters={"pk": run_id},
                                                          select=["PartitionKey", "RowKey"], results_per_page=1000)]
            await delete_rows(table, [r for r in rows if r["RowKey"] != RUN_ROW])
            await delete_rows(table, [r for r in rows if r["RowKey"] == RUN_ROW])

    async def delete_index_entry(self, entry: TableEntity) -> None:
        table = await self.table()
        with storage_errors(f"{self._job} purge"):
            await delete_rows(table, [entry])


class RunsFront(Generic[R]):
    """What a job's store offers its service of its runs table, as the table does it (a mixin: `runs` is set by
    the store)."""

    runs: RunTable[R]

    async def read_lock(self) -> Lock:
        return await self.runs.read_lock()

    async def get_run(self, run_id: str) -> tuple[R, str] | None:
        return await self.runs.get_run(run_id)

    async def update_run(self, run: R, etag: str) -> str:
        return await self.runs.update_run(run, etag)

    async def latest_runs(self, limit: int) -> list[R]:
        return await self.runs.latest_runs(limit)


@dataclass(frozen=True)
class ShardQueue:
    """A job's shard messages on its queue (ids only; base64, as the queue trigger reads them)."""

    storage: StorageClients
    queue: str
    job: str

    async def send(self, message: BaseModel) -> None:
        with storage_errors(f"{self.job} enqueue"):
            await (await self.storage.queue_ready(self.queue)).send_message(message.model_dump_json())


async def upsert_batches(table: TableClient, entities: list[dict[str, Any]], gate: asyncio.Semaphore,
                         what: str) -> int:
    """Upsert a shard's rows, grouped by partition in transactions of up to 100, at most `gate` at once; the count
    of transactions. Upserts, so a redelivered shard rewrites the same rows."""
    by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entity in entities:
        by_partition[entity["PartitionKey"]].append(entity)
    batches = [
        [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in rows[i:i + TRANSACTION_LIMIT]]
        for rows in by_partition.values() for i in range(0, len(rows), TRANSACTION_LIMIT)
    ]

    async def submit(batch: list[Any]) -> None:
        async with gate:
            with storage_errors(f"{what} write"):
                await table.submit_transaction(batch)

    await asyncio.gather(*(submit(b) for b in batches))
    return len(batches)

