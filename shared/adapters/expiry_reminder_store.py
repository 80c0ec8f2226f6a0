"""Password-expiry reminder runs in Table Storage: the runs and their page checkpoints, and one row per user.

Table "ExpiryRuns", the run kit's layout (shared/adapters/run_store.py), one partition per run so a page's
checkpoint and the run's counters are one transaction (ETags on both):
    (runId, "run")          the run: state, tally and the rules it judges by (JSON)
    (runId, "page-000042")  Graph page 42: the nextLink that reads it, whether it is done
plus ("lock", "expiry-reminders") naming the latest run (one run at a time) and ("index", <newest first>).

Table "ExpiryUsers": PartitionKey = "<runId>-<shard>" ("00".."15", the user id's first hex digit), RowKey = user
id: one row per directory user, written in single-partition transactions of up to 100 (upserts: a redelivered page
rewrites the same rows). The admin view filters on fixed columns (`state`, `daysLeft`); every value is a parameter.

Retention (`purge_expired`, run by the maintenance timer): a finished run's totals are kept RUN_RETENTION (90
days); its per-user rows only while it is among the newest ROWS_KEPT_RUNS runs, after which the run says
`rowsPurged`. Never the lock's run, nor a run still going.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared import queues
from shared.adapters.run_reports import ReportPurge, ReportRows, Retention, run_columns, run_fields
from shared.adapters.run_store import Lock, RunsFront, RunTable, ShardQueue
from shared.adapters.storage import StorageClients
from shared.domain.compliance import shard_key, sweep_shard
from shared.domain.expiry_reminders import Run, Tally
from shared.domain.password_expiry import ExpiryState, PasswordExpiry, PasswordFacts

RUNS_TABLE = "ExpiryRuns"
USERS_TABLE = "ExpiryUsers"
QUEUE = queues.EXPIRY_REMINDERS
JOB = "expiry-reminders"
RUN_RETENTION = timedelta(days=90)
ROWS_KEPT_RUNS = 7  # a week of daily runs
ROW_PURGE_LIMIT = 250_000


@dataclass(frozen=True)
class PageShard:
    index: int
    done: bool
    cursor: str | None  # the nextLink that reads this page (None: the run's first request)
    etag: str


@dataclass(frozen=True)
class ExpiryFilter:
    """Validated filters of the admin view: a state, and/or expiring within `within` days (as of the run)."""

    state: ExpiryState | None = None
    within: int | None = None


ExpiryPurge = ReportPurge


def _page_key(index: int) -> str:
    return f"page-{index:06d}"


def _run_entity(run: Run) -> dict[str, Any]:
    return {**run_columns(run), "rules": json.dumps(run.rules), "usersTotal": run.users_total,
            "pagesDone": run.pages_done, "pageCount": run.page_count}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _run_from(e: Mapping[str, Any]) -> Run:
    return Run(**run_fields(e, Tally.from_dict), rules=json.loads(e.get("rules") or "{}"),
               send_reminders=bool(e.get("sendReminders")), users_total=_int_or_none(e.get("usersTotal")),
               pages_done=int(e.get("pagesDone") or 0), page_count=_int_or_none(e.get("pageCount")))


def users_partition(run_id: str, user_id: str) -> str:
    return f"{run_id}-{shard_key(sweep_shard(user_id))}"


def user_entity(run_id: str, facts: PasswordFacts, expiry: PasswordExpiry, now: datetime,
                stage: int | None) -> dict[str, Any]:
    """The admin view's row of one user: who, their state, when the password expires and the reminder queued."""
    return {
        "PartitionKey": users_partition(run_id, facts.user_id), "RowKey": facts.user_id,
        "userPrincipalName": facts.user_principal_name, "state": expiry.state.value, "expiresAt": expiry.expires_at,
        "daysLeft": expiry.days_left(now), "source": expiry.source.value if expiry.source else None,
        "synced": facts.synced, "passwordChangedAt": facts.last_changed, "reminderStage": stage,
    }


def user_document(e: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the admin view shows it (JSON-ready)."""

    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else None

    return {"userId": e["RowKey"], "userPrincipalName": e.get("userPrincipalName") or "", "state": e["state"],
            "expiresAt": iso(e.get("expiresAt")), "daysLeft": _int_or_none(e.get("daysLeft")),
            "source": e.get("source"), "synced": bool(e.get("synced")),
            "passwordChangedAt": iso(e.get("passwordChangedAt")), "reminderStage": _int_or_none(e.get("reminderStage"))}


class ExpiryReminderStore(RunsFront[Run]):
    """Reads and writes the expiry tables; every change of a run or page row names its ETag."""

    def __init__(self, storage: StorageClients, rows_kept_runs: int = ROWS_KEPT_RUNS) -> None:
        self._rows = ReportRows(storage, (USERS_TABLE,), "expiry", user_document,
                                Retention(RUN_RETENTION, rows_kept_runs, ROW_PURGE_LIMIT))
        self.runs: RunTable[Run] = RunTable(storage, RUNS_TABLE, JOB, _run_entity, _run_from)

    # ---- lock, runs and pages (the run kit's table) ---------------------------------------------------------

    async def claim_lock(self, lock: Lock, run_id: str) -> None:
        await self.runs.write_lock({"runId": run_id}, lock.etag)

    async def create_run(self, run: Run) -> None:
        await self.runs.create_run(run, [{"RowKey": _page_key(0), "cursor": None, "done": False}])

    async def latest_completed_run(self, scan: int = 30) -> Run | None:
        return await self.runs.latest_completed(scan)

    async def get_page(self, run_id: str, index: int) -> PageShard | None:
        e = await self.runs.get_row(run_id, _page_key(index))
        if e is None:
            return None
        return PageShard(index, bool(e.get("done")), e.get("cursor"), str(e.metadata["etag"]))

    async def add_page(self, run_id: str, index: int, cursor: str) -> None:
        """The next page's row with the cursor that reads it; kept as it is if it exists already."""
        await self.runs.add_row(run_id, _page_key(index), {"cursor": cursor, "done": False})

    async def checkpoint_page(self, run: Run, run_etag: str, page: PageShard, tally: Tally) -> None:
        """Page done (with its own tally, for progress) + the run's new counters, atomically (ETags on both)."""
        columns = {"cursor": page.cursor, "done": True, "tally": json.dumps(tally.as_dict(), separators=(",", ":"))}
        await self.runs.checkpoint(run, run_etag, [(_page_key(page.index), columns, page.etag)])

    # ---- per-user rows --------------------------------------------------------------------------------------

    async def write_users(self, rows: list[dict[str, Any]]) -> int:
        """Upsert a page's per-user rows in transactions of up to 100 per partition; the transaction count."""
        return await self._rows.write(rows)

    async def user_rows(self, run_id: str, where: ExpiryFilter, page_size: int,
                        continuation: dict[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the run's rows matching `where` and the continuation of the next (compliance's paging)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if where.within is not None:
            clauses.append("state eq @expiring and daysLeft le @within")
            params.update(expiring=ExpiryState.EXPIRING.value, within=where.within)
        if where.state is not None:
            clauses.append("state eq @state")
            params["state"] = where.state.value
        return await self._rows.page(run_id, clauses, params, page_size, continuation)

    # ---- retention --------------------------------------------------------------------------------------------

    async def purge_expired(self, now: datetime, run_limit: int) -> ExpiryPurge:
        """Apply the retention (module docstring, shared/adapters/run_reports.py) to at most `run_limit` runs."""
        return await self._rows.purge_runs(self.runs, now, run_limit)


class ExpiryReminderQueue(ShardQueue):
    """Page messages of reminder runs (ExpiryReminderMessage) on queue `<prefix>-expiry-reminders`."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, QUEUE, JOB)
