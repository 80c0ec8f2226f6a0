"""The report a job keeps of its runs in Table Storage (compliance, password expiry): the run row's common columns,
the per-user rows (written in batches, paged for the admin view) and their retention.

Per-user rows: PartitionKey = "<runId>-<shard>", RowKey = user id, so a run's rows are the partition range
["<runId>-", "<runId>-~"), written as upserts in single-partition transactions of up to 100 (a redelivered page
rewrites the same rows). Filters are fixed column names; every value is a parameter.

Retention (`purge_runs`, run by the maintenance timer): a finished run's totals are kept `Retention.totals`; its
per-user rows only while it is among the newest `Retention.kept_runs` runs, after which the run says `rowsPurged`.
Never the lock's run, nor a run still going; at most `Retention.row_limit` rows a purge. A run's rows go before
the flag saying so, and its partition before its index row, so a purge cut short is finished by the next one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure.data.tables import TableEntity

from shared.adapters.etag_retry import LostRace
from shared.adapters.run_store import RUN_ROW, RunTable, upsert_batches
from shared.adapters.storage import StorageClients, delete_rows
from shared.adapters.storage_errors import storage_errors
from shared.domain.compliance_report import encode_continuation
from shared.domain.runs import TERMINAL, ReportedRun, RunState

R = TypeVar("R", bound=ReportedRun)

WRITE_PARALLELISM = 8  # transactions in flight per process


def run_columns(run: ReportedRun) -> dict[str, Any]:
    """The run row's columns every report-keeping job writes; the job adds its own."""
    return {
        "PartitionKey": run.id, "RowKey": RUN_ROW, "trigger": run.trigger, "requestedBy": run.requested_by,
        "createdAt": run.created_at, "updatedAt": run.updated_at, "sendReminders": run.send_reminders,
        "state": run.state.value, "startedAt": run.started_at, "completedAt": run.completed_at,
        "tally": json.dumps(run.tally.as_dict(), separators=(",", ":")), "transactions": run.transactions,
        "audited": run.audited, "errors": json.dumps(list(run.errors)), "rowsPurged": run.rows_purged,
    }


def run_fields(e: Mapping[str, Any], tally: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The run's common fields from its row (`run_columns`), its tally made by `tally` from the dict it was written
    from; `send_reminders` is the job's own (its default differs)."""
    return {
        "id": e["PartitionKey"], "trigger": e["trigger"], "requested_by": e["requestedBy"],
        "tally": tally(dict(json.loads(e.get("tally") or "{}"))),
        "created_at": e["createdAt"], "updated_at": e["updatedAt"], "state": RunState(e["state"]),
        "started_at": e.get("startedAt"), "completed_at": e.get("completedAt"),
        "transactions": int(e.get("transactions") or 0), "audited": bool(e.get("audited")),
        "errors": tuple(json.loads(e.get("errors") or "[]")), "rows_purged": bool(e.get("rowsPurged")),
    }


@dataclass(frozen=True)
class ReportPurge:
    runs: int  # whole runs deleted (older than the retention of totals)
    user_rows: int  # per-user rows deleted


@dataclass(frozen=True)
class Retention:
    totals: timedelta  # a finished run's totals: the history a trend is drawn from
    kept_runs: int  # the newest runs whose per-user rows are kept
    row_limit: int  # per-user rows deleted per purge


class ReportRows:
    """The per-user rows of one job's runs, in `tables` (the first is the one the admin view pages), kept as
    `retention` says."""

    def __init__(self, storage: StorageClients, tables: tuple[str, ...], job: str,
                 document: Callable[[TableEntity], dict[str, Any]], retention: Retention) -> None:
        self._storage = storage
        self._tables = tables
        self._job = job
        self._document = document
        self._retention = retention
        self._writes = asyncio.Semaphore(WRITE_PARALLELISM)

    async def write(self, entities: list[dict[str, Any]], table: str | None = None) -> int:
        """Upsert rows (of the first table unless named) in transactions of up to 100; the transaction count."""
        client = await self._storage.table_ready(table or self._tables[0])
        return await upsert_batches(client, entities, self._writes, self._job)

    async def page(self, run_id: str, clauses: list[str], params: dict[str, Any], page_size: int,
                   continuation: dict[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `page_size` of the run's rows matching `clauses` (read 1,000 at a time, the service's most per
        request) as the admin view shows them, and the continuation of the next page."""
        query = " and ".join(["PartitionKey ge @lo and PartitionKey lt @hi", *clauses])
        table = await self._storage.table_ready(self._tables[0])
        token: Any = continuation  # the SDK's continuation is the {PartitionKey, RowKey} dict it handed out
        rows: list[dict[str, Any]] = []
        with storage_errors(f"{self._job} report read"):
            pager: Any = table.query_entities(query, parameters={**params, **_run_range(run_id)},
                                              results_per_page=min(page_size, 1000)).by_page(continuation_token=token)
            async for page in pager:
                rows.extend([self._document(e) async for e in page])
                if len(rows) >= page_size:
                    break
            following = pager.continuation_token
        return rows, encode_continuation(run_id, following)

    async def purge(self, run_id: str, budget: int) -> tuple[int, bool]:
        """Delete up to `budget` of the run's rows, 1,000 read at a time; (deleted, all gone)."""
        deleted = 0
        for name in self._tables:
            table = await self._storage.table_ready(name)
            while True:
                chunk: list[TableEntity] = []
                with storage_errors(f"{self._job} purge"):
                    async for row in table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                                          parameters=_run_range(run_id),
                                                          select=["PartitionKey", "RowKey"], results_per_page=1000):
                        chunk.append(row)
                        if len(chunk) >= min(1000, budget - deleted):
                            break
                if not chunk:
                    break
                gone = await delete_rows(table, chunk)
                deleted += gone
                if gone < len(chunk) or deleted >= budget:  # a row changed meanwhile (never in a finished run)
                    return deleted, False
        return deleted, True

    async def purge_runs(self, runs: RunTable[R], now: datetime, run_limit: int) -> ReportPurge:
        """Apply the retention (module docstring) to the runs of `runs`, at most `run_limit` whole runs per call."""
        lock = await runs.read_lock()
        purged = deleted_rows = newer = 0
        async for entry, found in runs.index():
            if found is None:
                if str(entry.get("runId") or "") != lock.run_id:  # its run was purged by a purge cut short
                    await runs.delete_index_entry(entry)
                continue
            run, etag = found
            newer += 1
            if run.state not in TERMINAL:
                continue
            expired = (run.completed_at or run.updated_at) < now - self._retention.totals and run.id != lock.run_id
            if (expired or newer > self._retention.kept_runs) and not run.rows_purged:
                deleted, complete = await self.purge(run.id, self._retention.row_limit - deleted_rows)
                deleted_rows += deleted
                if not complete:
                    break  # the row budget is spent: the next purge goes on from here
                try:
                    await runs.update_run(run.rows_gone(), etag)
                except LostRace:
                    continue  # moved meanwhile: the next purge looks again
            if expired:
                await runs.delete_run(run.id)
                await runs.delete_index_entry(entry)
                purged += 1
                if purged >= run_limit:
                    break
        return ReportPurge(purged, deleted_rows)


def _run_range(run_id: str) -> dict[str, str]:
    return {"lo": f"{run_id}-", "hi": f"{run_id}-~"}
