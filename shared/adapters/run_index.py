"""The newest-first index of a job's runs, kept in the job's runs table (shared/adapters/run_store.py).

One index row per run, in partition INDEX_PARTITION, keyed so that the newest run sorts first; "the latest N runs"
is then one partition query that stops after N, however many runs the table holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from azure.data.tables.aio import TableClient

from shared.adapters.storage_errors import storage_errors

INDEX_PARTITION = "index"
MAX_MILLIS = 10**13  # past year 2286

R = TypeVar("R")


def index_row(run_id: str, created_at: datetime) -> dict[str, Any]:
    """The index row of a run: its key sorts newer runs first."""
    millis = int(created_at.timestamp() * 1000)
    return {"PartitionKey": INDEX_PARTITION, "RowKey": f"{MAX_MILLIS - millis:013d}-{run_id}", "runId": run_id}


async def newest_run_ids(table: TableClient, what: str, page: int = 20) -> AsyncIterator[str]:
    """The run ids of `table`, newest first (the caller stops when it has enough)."""
    with storage_errors(f"{what} list"):
        async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION},
                                              select=["runId"], results_per_page=page):
            yield str(row["runId"])


async def newest_runs(table: TableClient, read: Callable[[str], Awaitable[tuple[R, str] | None]], limit: int,
                      what: str) -> list[R]:
    """The `limit` newest runs that `read` still finds (a run purged after its index row was read is skipped)."""
    runs: list[R] = []
    async for run_id in newest_run_ids(table, what, page=limit):
        found = await read(run_id)
        if found:
            runs.append(found[0])
        if len(runs) >= limit:
            break
    return runs
