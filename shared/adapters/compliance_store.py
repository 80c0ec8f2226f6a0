"""Compliance runs in Table Storage: the runs and their shard checkpoints, the per-user rows, Entra's facts.

Table "ComplianceRuns", the run kit's layout (shared/adapters/run_store.py), one partition per run so a shard's final checkpoint and the run's counters are one
transaction (ETags on both):
    (runId, "run")        the run: state, tally (JSON), Entra comparison state
    (runId, "shard-07")   sweep shard 7 (user ids "7.."): the last id of its pages done, the tally of those pages
    (runId, "entra")      Entra's userRegistrationDetails: the nextLink of the next page
plus ("lock", "compliance") naming the latest run (one run at a time) and ("index", <newest first>) to list runs.

Table "ComplianceUsers": PartitionKey = "<runId>-<shard>" ("00".."15", the user id's sweep shard), RowKey = user id:
one row per user in scope, written in single-partition transactions of up to 100 (upserts: a redelivered page
rewrites the same rows). Filterable columns are fixed names (`m_<method>`, `r_<reason>`), never built from input.
Table "ComplianceEntra": the same keys, Entra's facts of each user, written by the entra shard before any sweep
shard runs, read back a page's key range at a time.

A sweep page reads by key ranges only, through the owning stores' public scans: its shard's id range from each of
the 16 Enablement partitions (`EnablementStore.rows_in_range`, at most SWEEP_PER_PARTITION rows each, the page
ending at the smallest last id of those that had more) and the summaries of that id range from SecurityInfo
(`SecurityInfoStore.summaries_in`: a partition-range scan, summary columns only).

Retention (`purge_expired`, run by the maintenance timer): a finished run's totals (its ComplianceRuns rows) are
kept RUN_RETENTION (90 days, the history a trend is drawn from); its per-user and Entra rows only while it is
among the newest ROWS_KEPT_RUNS runs (7: a week of daily runs; 100,000 users make 100,000 rows a run), after which
the run says `rowsPurged`. Never the lock's run, nor a run still going; at most ROW_PURGE_LIMIT rows a purge.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableEntity

from shared import queues
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.run_reports import ReportPurge, ReportRows, Retention, run_columns, run_fields
from shared.adapters.run_store import KeyRange, Lock, RunsFront, RunTable, ShardQueue
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors
from shared.domain.compliance import (
    SWEEP_SHARDS,
    EntraFacts,
    EntraShard,
    EntraState,
    NotCapableReason,
    Run,
    Shard,
    Tally,
    UserCompliance,
    shard_key,
    shard_range,
    sweep_shard,
)
from shared.domain.compliance_report import CSV_PAGE_ROWS as CSV_PAGE_ROWS  # the report's page, by its store
from shared.domain.compliance_report import UserFilter, user_document
from shared.domain.enablement import PARTITION_BUCKETS
from shared.domain.policy import Method
from shared.domain.security_info import SecurityInfoSummary

RUNS_TABLE = "ComplianceRuns"
USERS_TABLE = "ComplianceUsers"
ENTRA_TABLE = "ComplianceEntra"
QUEUE = queues.COMPLIANCE
LOCK_KEY = ("lock", "compliance")
ENTRA_ROW = "entra"
# Enablement rows read per partition for one page of a sweep shard: a page (and a checkpoint) holds at most 16 x
# this many users, so a worker's memory stays flat in the tenant's size (16 shards may run in one process).
SWEEP_PER_PARTITION = 64
RUN_RETENTION = timedelta(days=90)  # a finished run's totals: the history a trend is drawn from
ROWS_KEPT_RUNS = 7  # the newest runs whose per-user rows are kept (a week of daily runs)
ROW_PURGE_LIMIT = 250_000  # per-user rows deleted per purge (a 100,000-user run takes ~1 min on Azurite)


@dataclass(frozen=True)
class SweepPage:
    rows: list[dict[str, Any]]  # the Enablement rows (RowKey = user id, scope), in id order
    summaries: dict[str, SecurityInfoSummary]  # by user id; a user without one never registered
    last: str | None  # the page's last id, where the next page starts after; None: the shard's last page


CompliancePurge = ReportPurge  # user_rows: per-user and Entra rows


def _shard_key(index: int) -> str:
    return f"shard-{index:02d}"


def users_partition(run_id: str, bucket: str) -> str:
    return f"{run_id}-{bucket}"


def _run_entity(run: Run) -> dict[str, Any]:
    return {**run_columns(run), "shardsDone": run.shards_done, "entra": run.entra.value,
            "entraReason": run.entra_reason}


def _run_from(e: Mapping[str, Any]) -> Run:
    return Run(**run_fields(e, Tally.from_dict), send_reminders=bool(e.get("sendReminders", True)),
               shards_done=int(e.get("shardsDone") or 0), entra=EntraState(e.get("entra") or EntraState.PENDING.value),
               entra_reason=e.get("entraReason"))


def _shard_columns(index: int, done: bool, continuation: str | None, tally: Tally, pages: int,
                   transactions: int) -> dict[str, Any]:
    return {"RowKey": _shard_key(index), "done": done, "continuation": continuation,
            "tally": json.dumps(tally.as_dict(), separators=(",", ":")), "pages": pages,
            "transactions": transactions}


def _shard_from(e: TableEntity, index: int) -> Shard:
    return Shard(index, bool(e.get("done")), e.get("continuation"), Tally.from_dict(json.loads(e.get("tally") or "{}")),
                 int(e.get("pages") or 0), int(e.get("transactions") or 0), str(e.metadata["etag"]))


def _entra_columns(done: bool, cursor: str | None, pages: int, users: int) -> dict[str, Any]:
    return {"RowKey": ENTRA_ROW, "done": done, "cursor": cursor, "pages": pages, "users": users}


def user_entity(run_id: str, u: UserCompliance) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": users_partition(run_id, shard_key(sweep_shard(u.user_id))), "RowKey": u.user_id,
        "enabled": u.enabled, "registered": u.registered, "capable": u.capable, "status": u.status.value,
        "reasons": ",".join(r.value for r in u.reasons), "reconfirmation": u.reconfirmation.value,
        "reconfirmDueAt": u.reconfirm_due_at, "methods": ",".join(m.value for m in u.methods),
        "methodCount": len(u.methods), "required": u.required, "lastConfirmedAt": u.last_confirmed_at,
        "isAdmin": u.is_admin, "displayName": u.display_name, "userPrincipalName": u.user_principal_name,
    }
    entity.update({f"m_{m.value}": True for m in u.methods})
    entity.update({f"r_{r.value}": True for r in u.reasons})
    if u.entra is not None:
        entity.update(entraRegistered=u.entra.registered, entraEnabled=u.entra.enabled,
                      entraCapable=u.entra.capable, entraMethods=",".join(u.entra.methods),
                      entraAgrees=u.entra_agrees)
    return entity


class ComplianceStore(RunsFront[Run]):
    """Reads and writes the compliance tables; every change of a run or shard row names its ETag."""

    def __init__(self, storage: StorageClients, per_partition: int = SWEEP_PER_PARTITION,
                 rows_kept_runs: int = ROWS_KEPT_RUNS) -> None:
        self._storage = storage
        self._per_partition = per_partition
        self._rows = ReportRows(storage, (USERS_TABLE, ENTRA_TABLE), "compliance", user_document,
                                Retention(RUN_RETENTION, rows_kept_runs, ROW_PURGE_LIMIT))
        self._enablement = EnablementStore(storage)
        self._security_info = self.security_info = SecurityInfoStore(storage)
        self.runs: RunTable[Run] = RunTable(storage, RUNS_TABLE, LOCK_KEY[1], _run_entity, _run_from)

    # ---- lock and runs (the run kit's table, shared/adapters/run_store.py) ---------------------------------------

    async def claim_lock(self, lock: Lock, run_id: str) -> None:
        """Name `run_id` as the latest run unless someone claimed the lock since `lock` was read."""
        await self.runs.write_lock({"runId": run_id}, lock.etag)

    async def create_run(self, run: Run, with_entra: bool) -> None:
        """The run row, its 16 shard rows and (with P1/P2) its entra row in one transaction, plus an index row."""
        rows = [_shard_columns(i, False, None, Tally(), 0, 0) for i in range(SWEEP_SHARDS)]
        if with_entra:
            rows.append(_entra_columns(False, None, 0, 0))
        await self.runs.create_run(run, rows)

    async def shards(self, run_id: str) -> list[Shard]:
        """Every partition shard's checkpoint (progress while the run runs): one partition query."""
        return [_shard_from(e, int(e["RowKey"][6:])) for e in await self.runs.rows_between(run_id, "shard-", "shard-~")]

    async def get_shard(self, run_id: str, index: int) -> Shard | None:
        e = await self.runs.get_row(run_id, _shard_key(index))
        return None if e is None else _shard_from(e, index)

    async def checkpoint_shard(self, run_id: str, shard: Shard, continuation: str | None, tally: Tally, pages: int,
                               transactions: int) -> Shard:
        """A page done: the shard's new continuation and tally, if nobody advanced it since `shard` was read."""
        columns = _shard_columns(shard.index, False, continuation, tally, pages, transactions)
        etag = await self.runs.update_row(run_id, columns["RowKey"], columns, shard.etag)
        return Shard(shard.index, False, continuation, tally, pages, transactions, etag)

    async def finish_shard(self, run: Run, run_etag: str, shard: Shard) -> None:
        """Shard done + the run's merged counters, atomically (ETags on both)."""
        columns = _shard_columns(shard.index, True, None, shard.tally, shard.pages, shard.transactions)
        await self.runs.checkpoint(run, run_etag, [(columns["RowKey"], columns, shard.etag)])

    async def get_entra(self, run_id: str) -> EntraShard | None:
        e = await self.runs.get_row(run_id, ENTRA_ROW)
        if e is None:
            return None
        return EntraShard(bool(e.get("done")), e.get("cursor"), int(e.get("pages") or 0), int(e.get("users") or 0),
                          str(e.metadata["etag"]))

    async def checkpoint_entra(self, run_id: str, shard: EntraShard, cursor: str | None, pages: int,
                               users: int) -> EntraShard:
        etag = await self.runs.update_row(run_id, ENTRA_ROW, _entra_columns(False, cursor, pages, users), shard.etag)
        return EntraShard(False, cursor, pages, users, etag)

    async def finish_entra(self, run: Run, run_etag: str, shard: EntraShard) -> None:
        columns = _entra_columns(True, None, shard.pages, shard.users)
        await self.runs.checkpoint(run, run_etag, [(ENTRA_ROW, columns, shard.etag)])

    # ---- what a partition shard reads --------------------------------------------------------------------------

    async def sweep_page(self, index: int, after: str | None, per_partition: int | None = None) -> SweepPage:
        """The next page of sweep shard `index` after user id `after` (None: from the shard's first id): its users'
        Enablement rows from all 16 partitions, merged in id order, and their security info summaries, each table
        read as key-range scans (no point reads).

        Each partition gives at most `per_partition` rows; the page ends at the smallest last id among the
        partitions that had more, so no id up to it is missing and none after it is taken (they are the next
        page's). A page therefore holds at most 16 x `per_partition` users, whatever the tenant's size."""
        limit = per_partition or self._per_partition
        lo, hi = shard_range(index)
        ids = KeyRange(after=after, lo=lo, hi=hi)
        slices = await asyncio.gather(*(self._enablement.rows_in_range(f"{b:02d}", ids, limit)
                                        for b in range(PARTITION_BUCKETS)))
        cut = [rows[-1]["RowKey"] for rows, more in slices if more]
        last = min(cut) if cut else None
        rows = sorted((r for part, _ in slices for r in part if last is None or r["RowKey"] <= last),
                      key=lambda r: str(r["RowKey"]))
        wanted = {str(r["RowKey"]) for r in rows}
        summaries = await self._security_info.summaries_in(replace(ids, last=last), wanted) if rows else {}
        return SweepPage(rows, summaries, last)

    async def entra_facts(self, run_id: str, bucket: str, first: str, last: str) -> dict[str, EntraFacts]:
        """Entra's facts of the users of partition `bucket` with ids in [first, last]."""
        table = await self._storage.table_ready(ENTRA_TABLE)
        facts: dict[str, EntraFacts] = {}
        with storage_errors("compliance entra read"):
            rows = table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi",
                                        parameters={"pk": users_partition(run_id, bucket), "lo": first, "hi": last},
                                        results_per_page=1000)
            async for e in rows:
                facts[e["RowKey"]] = EntraFacts(bool(e.get("registered")), bool(e.get("enabled")),
                                                bool(e.get("capable")),
                                                tuple(m for m in str(e.get("methods") or "").split(",") if m))
        return facts

    # ---- writes of rows ----------------------------------------------------------------------------------------

    async def write_users(self, run_id: str, users: list[UserCompliance]) -> int:
        """Upsert the per-user rows (one partition per shard) in transactions of up to 100; the transaction count."""
        return await self._rows.write([user_entity(run_id, u) for u in users])

    async def write_entra(self, run_id: str, facts: dict[str, EntraFacts]) -> int:
        entities = [
            {"PartitionKey": users_partition(run_id, shard_key(sweep_shard(uid))), "RowKey": uid,
             "registered": f.registered, "enabled": f.enabled, "capable": f.capable, "methods": ",".join(f.methods)}
            for uid, f in facts.items()
        ]
        return await self._rows.write(entities, ENTRA_TABLE)

    # ---- reports -------------------------------------------------------------------------------------------------

    async def user_rows(self, run_id: str, where: UserFilter, page_size: int,
                        continuation: dict[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the run's per-user rows matching `where` (up to `page_size`, read 1,000 at a time, the
        service's most per request), and the continuation of the next page."""
        return await self._rows.page(run_id, *_user_filter(where), page_size, continuation)

    # ---- retention ---------------------------------------------------------------------------------------------

    async def purge_expired(self, now: datetime, run_limit: int) -> CompliancePurge:
        """Apply the retention (module docstring, shared/adapters/run_reports.py): at most `run_limit` runs and
        ROW_PURGE_LIMIT per-user and Entra rows per call."""
        return await self._rows.purge_runs(self.runs, now, run_limit)


def _user_filter(where: UserFilter) -> tuple[list[str], dict[str, Any]]:
    # Column names come from the enums' fixed values; every value is a parameter (security.md D6).
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if where.status is not None:
        clauses.append("status eq @status")
        params["status"] = where.status.value
    if where.method is not None:
        clauses.append(f"m_{Method(where.method).value} eq true")
    if where.reason is not None:
        clauses.append(f"r_{NotCapableReason(where.reason).value} eq true")
    return clauses, params


class ComplianceQueue(ShardQueue):
    """Shard messages of compliance runs (ComplianceMessage) on queue `<prefix>-compliance`."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, QUEUE, "compliance")
