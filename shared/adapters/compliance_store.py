"""Compliance runs in Table Storage: the runs and their shard checkpoints, the per-user rows, Entra's facts.

Table "ComplianceRuns", one partition per run so a shard's final checkpoint and the run's counters are one
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

A sweep page reads by key ranges only: its shard's id range from each of the 16 Enablement partitions (at most
SWEEP_PER_PARTITION rows each, the page ending at the smallest last id of those that had more) and the summaries
of that id range from SecurityInfo (one partition per user: a partition-range scan, summary columns only).

Retention (`purge_expired`, run by the maintenance timer): a finished run's totals (its ComplianceRuns rows) are
kept RUN_RETENTION (90 days, the history a trend is drawn from); its per-user and Entra rows only while it is
among the newest ROWS_KEPT_RUNS runs (7: a week of daily runs; 100,000 users make 100,000 rows a run), after which
the run says `rowsPurged`. Never the lock's run, nor a run still going; at most ROW_PURGE_LIMIT rows a purge.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from shared import queues
from shared.adapters.enablement_store import USERS_TABLE as ENABLEMENT_TABLE
from shared.adapters.etag_retry import (
    LostRace,
    is_conflict,
    replace_if_unchanged,
    submit_if_unchanged,
    write_if_unchanged,
)
from shared.adapters.run_index import INDEX_PARTITION, index_row, newest_runs
from shared.adapters.security_info_store import SUMMARY_ROW
from shared.adapters.security_info_store import TABLE as SECURITY_INFO_TABLE
from shared.adapters.security_info_store import _summary_from as summary_from  # the summary row's one reader
from shared.adapters.storage import StorageClients, delete_rows
from shared.domain.compliance import (
    SWEEP_SHARDS,
    TERMINAL,
    ComplianceMessage,
    EntraFacts,
    EntraShard,
    EntraState,
    NotCapableReason,
    Run,
    RunState,
    Shard,
    Status,
    Tally,
    UserCompliance,
    shard_key,
    shard_range,
    sweep_shard,
)
from shared.domain.enablement import PARTITION_BUCKETS, TRANSACTION_LIMIT
from shared.domain.ids import is_guid
from shared.domain.policy import Method
from shared.domain.security_info import SecurityInfoSummary
from shared.errors import StorageUnavailable

RUNS_TABLE = "ComplianceRuns"
USERS_TABLE = "ComplianceUsers"
ENTRA_TABLE = "ComplianceEntra"
QUEUE = queues.COMPLIANCE
LOCK_KEY = ("lock", "compliance")
ENTRA_ROW = "entra"
# Enablement rows read per partition for one page of a sweep shard: a page (and a checkpoint) holds at most 16 x
# this many users, so a worker's memory stays flat in the tenant's size (16 shards may run in one process).
SWEEP_PER_PARTITION = 64
SUMMARY_COLUMNS = ["PartitionKey", "methods", "lastConfirmedAt", "firstPromptedAt", "isAdmin"]
WRITE_PARALLELISM = 8
# Rows per CSV response of the per-user report: an export is paged like the JSON (the next page's URL in
# `Link: <...>; rel="next"`, its token in `X-Continuation`), so no process or response holds a 100,000-user run.
CSV_PAGE_ROWS = 10_000
RUN_RETENTION = timedelta(days=90)  # a finished run's totals: the history a trend is drawn from
ROWS_KEPT_RUNS = 7  # the newest runs whose per-user rows are kept (a week of daily runs)
ROW_PURGE_LIMIT = 250_000  # per-user rows deleted per purge (a 100,000-user run takes ~1 min on Azurite)



@dataclass(frozen=True)
class Lock:
    run_id: str | None
    etag: str | None


@dataclass(frozen=True)
class SweepPage:
    rows: list[dict[str, Any]]  # the Enablement rows (RowKey = user id, scope), in id order
    summaries: dict[str, SecurityInfoSummary]  # by user id; a user without one never registered
    last: str | None  # the page's last id, where the next page starts after; None: the shard's last page


def _id_range(column: str, after: str | None, lo: str | None, last: str | None,
              hi: str | None) -> tuple[list[str], dict[str, str]]:
    """OData clauses (values as parameters) for ids after `after` (else from `lo`) up to `last` (else before `hi`)."""
    clauses: list[str] = []
    params: dict[str, str] = {}
    if after is not None:
        clauses.append(f"{column} gt @after")
        params["after"] = after
    elif lo is not None:
        clauses.append(f"{column} ge @lo")
        params["lo"] = lo
    if last is not None:
        clauses.append(f"{column} le @last")
        params["last"] = last
    elif hi is not None:
        clauses.append(f"{column} lt @hi")
        params["hi"] = hi
    return clauses, params




def _shard_key(index: int) -> str:
    return f"shard-{index:02d}"


def users_partition(run_id: str, bucket: str) -> str:
    return f"{run_id}-{bucket}"


def _run_entity(run: Run) -> dict[str, Any]:
    return {
        "PartitionKey": run.id, "RowKey": "run", "trigger": run.trigger, "requestedBy": run.requested_by,
        "createdAt": run.created_at, "updatedAt": run.updated_at, "sendReminders": run.send_reminders,
        "state": run.state.value, "startedAt": run.started_at, "completedAt": run.completed_at,
        "shardsDone": run.shards_done, "entra": run.entra.value, "entraReason": run.entra_reason,
        "tally": json.dumps(run.tally.as_dict(), separators=(",", ":")), "transactions": run.transactions,
        "audited": run.audited, "errors": json.dumps(list(run.errors)), "rowsPurged": run.rows_purged,
    }


def _run_from(e: Mapping[str, Any]) -> Run:
    return Run(
        id=e["PartitionKey"], trigger=e["trigger"], requested_by=e["requestedBy"], created_at=e["createdAt"],
        updated_at=e["updatedAt"], send_reminders=bool(e.get("sendReminders", True)), state=RunState(e["state"]),
        started_at=e.get("startedAt"), completed_at=e.get("completedAt"), shards_done=int(e.get("shardsDone") or 0),
        entra=EntraState(e.get("entra") or EntraState.PENDING.value), entra_reason=e.get("entraReason"),
        tally=Tally.from_dict(json.loads(e.get("tally") or "{}")), transactions=int(e.get("transactions") or 0),
        audited=bool(e.get("audited")), errors=tuple(json.loads(e.get("errors") or "[]")),
        rows_purged=bool(e.get("rowsPurged")),
    )


def _shard_entity(run_id: str, index: int, done: bool, continuation: str | None, tally: Tally, pages: int,
                  transactions: int) -> dict[str, Any]:
    return {"PartitionKey": run_id, "RowKey": _shard_key(index), "done": done, "continuation": continuation,
            "tally": json.dumps(tally.as_dict(), separators=(",", ":")), "pages": pages,
            "transactions": transactions}


def _shard_from(e: Mapping[str, Any], index: int) -> Shard:
    return Shard(index, bool(e.get("done")), e.get("continuation"), Tally.from_dict(json.loads(e.get("tally") or "{}")),
                 int(e.get("pages") or 0), int(e.get("transactions") or 0), str(e.metadata["etag"]))  # type: ignore[attr-defined]


def _entra_entity(run_id: str, done: bool, cursor: str | None, pages: int, users: int) -> dict[str, Any]:
    return {"PartitionKey": run_id, "RowKey": ENTRA_ROW, "done": done, "cursor": cursor, "pages": pages,
            "users": users}


def user_entity(run_id: str, u: UserCompliance) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": users_partition(run_id, shard_key(sweep_shard(u.user_id))), "RowKey": u.user_id,
        "enabled": u.enabled, "registered": u.registered, "capable": u.capable, "status": u.status.value,
        "reasons": ",".join(r.value for r in u.reasons), "reconfirmation": u.reconfirmation.value,
        "reconfirmDueAt": u.reconfirm_due_at, "methods": ",".join(m.value for m in u.methods),
        "methodCount": len(u.methods), "required": u.required, "lastConfirmedAt": u.last_confirmed_at,
        "isAdmin": u.is_admin,
    }
    entity.update({f"m_{m.value}": True for m in u.methods})
    entity.update({f"r_{r.value}": True for r in u.reasons})
    if u.entra is not None:
        entity.update(entraRegistered=u.entra.registered, entraEnabled=u.entra.enabled,
                      entraCapable=u.entra.capable, entraMethods=",".join(u.entra.methods),
                      entraAgrees=u.entra_agrees)
    return entity


def user_document(e: Mapping[str, Any]) -> dict[str, Any]:
    """A stored per-user row as the report shows it (JSON-ready)."""

    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else None

    has_entra = "entraCapable" in e
    return {
        "userId": e["RowKey"], "status": e["status"], "enabled": bool(e["enabled"]),
        "registered": bool(e["registered"]), "capable": bool(e["capable"]),
        "reasons": [r for r in str(e.get("reasons") or "").split(",") if r],
        "reconfirmation": e["reconfirmation"], "reconfirmDueAt": iso(e.get("reconfirmDueAt")),
        "methods": [m for m in str(e.get("methods") or "").split(",") if m], "methodsRequired": int(e["required"]),
        "lastConfirmedAt": iso(e.get("lastConfirmedAt")), "isAdmin": bool(e.get("isAdmin")),
        "entraRegistered": bool(e["entraRegistered"]) if has_entra else None,
        "entraCapable": bool(e["entraCapable"]) if has_entra else None,
        "entraMethods": [m for m in str(e.get("entraMethods") or "").split(",") if m] if has_entra else None,
        "entraAgrees": bool(e["entraAgrees"]) if has_entra else None,
    }


@dataclass(frozen=True)
class UserFilter:
    """Validated filters of the per-user report (values from fixed enums only)."""

    status: Status | None = None
    method: Method | None = None
    reason: NotCapableReason | None = None


def encode_continuation(run_id: str, token: Mapping[str, Any] | None) -> str | None:
    """The table's continuation (opaque next keys) bound to its run, for the client to send back."""
    if not token:
        return None
    bound = {"run": run_id, "pk": token.get("PartitionKey"), "rk": token.get("RowKey")}
    return base64.urlsafe_b64encode(json.dumps(bound, separators=(",", ":")).encode()).decode()


def decode_continuation(run_id: str, text: str) -> dict[str, str] | None:
    """The table continuation a client sent back, if it is one of this run's (else None: refused by the caller).

    The query stays restricted to the run's partitions whatever the token says; the binding only turns a token
    of another run into a clear 400 instead of a confusing page."""
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(token, dict) or set(token) != {"run", "pk", "rk"} or token["run"] != run_id:
        return None
    pk, rk = token["pk"], token["rk"]
    if not isinstance(pk, str) or not isinstance(rk, str) or len(pk) > 200 or len(rk) > 200:
        return None
    return {"PartitionKey": pk, "RowKey": rk}


class ComplianceStore:
    """Reads and writes the compliance tables; every change of a run or shard row names its ETag."""

    def __init__(self, storage: StorageClients, per_partition: int = SWEEP_PER_PARTITION,
                 rows_kept_runs: int = ROWS_KEPT_RUNS) -> None:
        self._storage = storage
        self._per_partition = per_partition
        self._rows_kept_runs = rows_kept_runs
        self._writes = asyncio.Semaphore(WRITE_PARALLELISM)

    async def _runs(self) -> TableClient:
        return await self._storage.table_ready(RUNS_TABLE)

    # ---- lock and runs -----------------------------------------------------------------------------------------

    async def read_lock(self) -> Lock:
        try:
            e = await (await self._runs()).get_entity(*LOCK_KEY)
        except ResourceNotFoundError:
            return Lock(None, None)
        except AzureError as exc:
            raise StorageUnavailable(f"compliance lock read failed: {type(exc).__name__}") from None
        return Lock(e.get("runId"), str(e.metadata["etag"]))

    async def claim_lock(self, lock: Lock, run_id: str) -> None:
        """Name `run_id` as the latest run unless someone claimed the lock since `lock` was read."""
        entity: dict[str, object] = {"PartitionKey": LOCK_KEY[0], "RowKey": LOCK_KEY[1], "runId": run_id}
        await write_if_unchanged(await self._runs(), entity, lock.etag, "compliance lock")

    async def create_run(self, run: Run, with_entra: bool) -> None:
        """The run row, its 16 shard rows and (with P1/P2) its entra row in one transaction, plus an index row."""
        ops: list[Any] = [("create", _run_entity(run))]
        ops += [("create", _shard_entity(run.id, i, False, None, Tally(), 0, 0)) for i in range(SWEEP_SHARDS)]
        if with_entra:
            ops.append(("create", _entra_entity(run.id, False, None, 0, 0)))
        table = await self._runs()
        try:
            await table.submit_transaction(ops)
            await table.create_entity(index_row(run.id, run.created_at))
        except AzureError as exc:
            raise StorageUnavailable(f"compliance run create failed: {type(exc).__name__}") from None

    async def get_run(self, run_id: str) -> tuple[Run, str] | None:
        if not is_guid(run_id):
            return None
        try:
            e = await (await self._runs()).get_entity(run_id.lower(), "run")
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageUnavailable(f"compliance run read failed: {type(exc).__name__}") from None
        return _run_from(e), str(e.metadata["etag"])

    async def update_run(self, run: Run, etag: str) -> str:
        return await write_if_unchanged(await self._runs(), _run_entity(run), etag, "compliance run")

    async def latest_runs(self, limit: int) -> list[Run]:
        return await newest_runs(await self._runs(), self.get_run, limit, "compliance run")

    async def shards(self, run_id: str) -> list[Shard]:
        """Every partition shard's checkpoint (progress while the run runs): one partition query."""
        table = await self._runs()
        try:
            rows = table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                        parameters={"pk": run_id, "lo": "shard-", "hi": "shard-~"})
            return [_shard_from(e, int(e["RowKey"][6:])) async for e in rows]
        except AzureError as exc:
            raise StorageUnavailable(f"compliance shard read failed: {type(exc).__name__}") from None

    async def get_shard(self, run_id: str, index: int) -> Shard | None:
        try:
            e = await (await self._runs()).get_entity(run_id, _shard_key(index))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageUnavailable(f"compliance shard read failed: {type(exc).__name__}") from None
        return _shard_from(e, index)

    async def checkpoint_shard(self, run_id: str, shard: Shard, continuation: str | None, tally: Tally, pages: int,
                               transactions: int) -> Shard:
        """A page done: the shard's new continuation and tally, if nobody advanced it since `shard` was read."""
        entity = _shard_entity(run_id, shard.index, False, continuation, tally, pages, transactions)
        try:
            result = await (await self._runs()).update_entity(entity, **replace_if_unchanged(shard.etag))
        except HttpResponseError as exc:
            if is_conflict(exc):
                raise LostRace("shard changed meanwhile") from None
            raise StorageUnavailable(f"compliance checkpoint failed: {type(exc).__name__}") from None
        except AzureError as exc:
            raise StorageUnavailable(f"compliance checkpoint failed: {type(exc).__name__}") from None
        return Shard(shard.index, False, continuation, tally, pages, transactions, str(result["etag"]))

    async def finish_shard(self, run: Run, run_etag: str, shard: Shard) -> None:
        """Shard done + the run's merged counters, atomically (ETags on both)."""
        await self._transact([
            ("update", _shard_entity(run.id, shard.index, True, None, shard.tally, shard.pages, shard.transactions),
             replace_if_unchanged(shard.etag)),
            ("update", _run_entity(run), replace_if_unchanged(run_etag)),
        ])

    async def get_entra(self, run_id: str) -> EntraShard | None:
        try:
            e = await (await self._runs()).get_entity(run_id, ENTRA_ROW)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageUnavailable(f"compliance shard read failed: {type(exc).__name__}") from None
        return EntraShard(bool(e.get("done")), e.get("cursor"), int(e.get("pages") or 0), int(e.get("users") or 0),
                          str(e.metadata["etag"]))

    async def checkpoint_entra(self, run_id: str, shard: EntraShard, cursor: str | None, pages: int,
                               users: int) -> EntraShard:
        entity = _entra_entity(run_id, False, cursor, pages, users)
        try:
            result = await (await self._runs()).update_entity(entity, **replace_if_unchanged(shard.etag))
        except HttpResponseError as exc:
            if is_conflict(exc):
                raise LostRace("entra shard changed meanwhile") from None
            raise StorageUnavailable(f"compliance checkpoint failed: {type(exc).__name__}") from None
        except AzureError as exc:
            raise StorageUnavailable(f"compliance checkpoint failed: {type(exc).__name__}") from None
        return EntraShard(False, cursor, pages, users, str(result["etag"]))

    async def finish_entra(self, run: Run, run_etag: str, shard: EntraShard) -> None:
        await self._transact([
            ("update", _entra_entity(run.id, True, None, shard.pages, shard.users),
             replace_if_unchanged(shard.etag)),
            ("update", _run_entity(run), replace_if_unchanged(run_etag)),
        ])

    async def _transact(self, ops: list[Any]) -> None:
        await submit_if_unchanged(await self._runs(), ops, "compliance checkpoint")

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
        slices = await asyncio.gather(*(self._enablement_slice(f"{b:02d}", after, lo, hi, limit)
                                        for b in range(PARTITION_BUCKETS)))
        cut = [rows[-1]["RowKey"] for rows, more in slices if more]
        last = min(cut) if cut else None
        rows = sorted((r for part, _ in slices for r in part if last is None or r["RowKey"] <= last),
                      key=lambda r: str(r["RowKey"]))
        wanted = {str(r["RowKey"]) for r in rows}
        summaries = await self._summaries_between(after, lo, last, hi, wanted) if rows else {}
        return SweepPage(rows, summaries, last)

    async def _enablement_slice(self, bucket: str, after: str | None, lo: str | None, hi: str | None,
                                limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` Enablement rows of partition `bucket` in the id range, and whether more follow."""
        table = await self._storage.table_ready(ENABLEMENT_TABLE)
        clauses, params = _id_range("RowKey", after, lo, None, hi)
        try:
            pager: Any = table.query_entities(" and ".join(["PartitionKey eq @pk", *clauses]),
                                              parameters={"pk": bucket, **params}, select=["RowKey", "scope"],
                                              results_per_page=limit).by_page()
            rows: list[dict[str, Any]] = []
            async for page in pager:
                rows = [dict(e) async for e in page]
                if rows:  # the service may answer an empty page with a continuation (a timeout): read on
                    break
            more = pager.continuation_token is not None
        except AzureError as exc:
            raise StorageUnavailable(f"enablement read failed: {type(exc).__name__}") from None
        return rows, more and bool(rows)

    async def _summaries_between(self, after: str | None, lo: str | None, last: str | None, hi: str | None,
                                 wanted: set[str]) -> dict[str, SecurityInfoSummary]:
        """The summary rows of the users in `wanted` (ids in the range): one partition-range scan of SecurityInfo
        with only the summary's columns; summaries of users out of scope are read past, never kept."""
        table = await self._storage.table_ready(SECURITY_INFO_TABLE)
        clauses, params = _id_range("PartitionKey", after, lo, last, hi)
        found: dict[str, SecurityInfoSummary] = {}
        try:
            rows = table.query_entities(" and ".join([*clauses, "RowKey eq @summary"]),
                                        parameters={**params, "summary": SUMMARY_ROW}, select=SUMMARY_COLUMNS,
                                        results_per_page=1000)
            async for e in rows:
                if e["PartitionKey"] in wanted:
                    found[e["PartitionKey"]] = summary_from(e)
        except AzureError as exc:
            raise StorageUnavailable(f"security info read failed: {type(exc).__name__}") from None
        return found

    async def entra_facts(self, run_id: str, bucket: str, first: str, last: str) -> dict[str, EntraFacts]:
        """Entra's facts of the users of partition `bucket` with ids in [first, last]."""
        table = await self._storage.table_ready(ENTRA_TABLE)
        facts: dict[str, EntraFacts] = {}
        try:
            rows = table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi",
                                        parameters={"pk": users_partition(run_id, bucket), "lo": first, "hi": last},
                                        results_per_page=1000)
            async for e in rows:
                facts[e["RowKey"]] = EntraFacts(bool(e.get("registered")), bool(e.get("enabled")),
                                                bool(e.get("capable")),
                                                tuple(m for m in str(e.get("methods") or "").split(",") if m))
        except AzureError as exc:
            raise StorageUnavailable(f"compliance entra read failed: {type(exc).__name__}") from None
        return facts

    # ---- writes of rows ----------------------------------------------------------------------------------------

    async def write_users(self, run_id: str, users: list[UserCompliance]) -> int:
        """Upsert the per-user rows (one partition per shard) in transactions of up to 100; the transaction count."""
        return await self._write(USERS_TABLE, [user_entity(run_id, u) for u in users])

    async def write_entra(self, run_id: str, facts: dict[str, EntraFacts]) -> int:
        entities = [
            {"PartitionKey": users_partition(run_id, shard_key(sweep_shard(uid))), "RowKey": uid,
             "registered": f.registered,
             "enabled": f.enabled, "capable": f.capable, "methods": ",".join(f.methods)}
            for uid, f in facts.items()
        ]
        return await self._write(ENTRA_TABLE, entities)

    async def _write(self, table_name: str, entities: list[dict[str, Any]]) -> int:
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entity in entities:
            by_partition[entity["PartitionKey"]].append(entity)
        batches = [
            [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in rows[i:i + TRANSACTION_LIMIT]]
            for rows in by_partition.values() for i in range(0, len(rows), TRANSACTION_LIMIT)
        ]
        table = await self._storage.table_ready(table_name)

        async def submit(batch: list[Any]) -> None:
            async with self._writes:
                try:
                    await table.submit_transaction(batch)
                except AzureError as exc:
                    raise StorageUnavailable(f"compliance write failed: {type(exc).__name__}") from None

        await asyncio.gather(*(submit(b) for b in batches))
        return len(batches)

    # ---- reports -------------------------------------------------------------------------------------------------

    async def user_rows(self, run_id: str, where: UserFilter, page_size: int,
                        continuation: dict[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the run's per-user rows matching `where` (up to `page_size`, read 1,000 at a time, the
        service's most per request), and the continuation of the next page."""
        query, params = _user_query(run_id, where)
        table = await self._storage.table_ready(USERS_TABLE)
        token: Any = continuation  # the SDK's continuation is the {PartitionKey, RowKey} dict it handed out
        rows: list[dict[str, Any]] = []
        try:
            pager: Any = table.query_entities(query, parameters=params,
                                              results_per_page=min(page_size, 1000)).by_page(continuation_token=token)
            async for page in pager:
                rows.extend([user_document(e) async for e in page])
                if len(rows) >= page_size:
                    break
            following = pager.continuation_token
        except AzureError as exc:
            raise StorageUnavailable(f"compliance report read failed: {type(exc).__name__}") from None
        return rows, encode_continuation(run_id, following)


    # ---- retention ---------------------------------------------------------------------------------------------

    async def purge_expired(self, now: datetime, run_limit: int) -> CompliancePurge:
        """Apply the retention (module docstring): per-user rows (and Entra's facts) of finished runs past the
        newest `rows_kept_runs` (ROWS_KEPT_RUNS), then whole runs finished more than RUN_RETENTION ago, at most `run_limit` runs and
        ROW_PURGE_LIMIT rows per call. Never a run still going, nor the lock's run. A run's rows go before the flag
        saying so, and a run's partition before its index row, so a purge cut short is finished by the next one."""
        lock = await self.read_lock()
        table = await self._runs()
        runs = rows = newer = 0
        try:
            index = table.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION},
                                         select=["PartitionKey", "RowKey", "runId"], results_per_page=100)
            async for entry in index:
                run_id = str(entry.get("runId") or "")
                found = await self.get_run(run_id)
                if found is None:
                    if run_id != lock.run_id:  # an index row whose run was purged by a purge cut short
                        await delete_rows(table, [entry])
                    continue
                run, etag = found
                newer += 1
                if run.state not in TERMINAL:
                    continue
                expired = (run.completed_at or run.updated_at) < now - RUN_RETENTION and run.id != lock.run_id
                if (expired or newer > self._rows_kept_runs) and not run.rows_purged:
                    deleted, complete = await self._purge_user_rows(run.id, ROW_PURGE_LIMIT - rows)
                    rows += deleted
                    if not complete:
                        break  # the row budget is spent: the next purge goes on from here
                    try:
                        await self.update_run(replace(run, rows_purged=True), etag)
                    except LostRace:
                        continue  # moved meanwhile: the next purge looks again
                if expired:
                    partition = [r async for r in table.query_entities(
                        "PartitionKey eq @pk", parameters={"pk": run.id}, select=["PartitionKey", "RowKey"])]
                    await delete_rows(table, [r for r in partition if r["RowKey"] != "run"])
                    await delete_rows(table, [r for r in partition if r["RowKey"] == "run"])
                    await delete_rows(table, [entry])
                    runs += 1
                    if runs >= run_limit:
                        break
        except AzureError as exc:
            raise StorageUnavailable(f"compliance purge failed: {type(exc).__name__}") from None
        return CompliancePurge(runs, rows)

    async def _purge_user_rows(self, run_id: str, budget: int) -> tuple[int, bool]:
        """Delete up to `budget` per-user and Entra rows of the run, 1,000 read at a time; (deleted, all gone)."""
        deleted = 0
        for name in (USERS_TABLE, ENTRA_TABLE):
            table = await self._storage.table_ready(name)
            while True:
                chunk: list[TableEntity] = []
                async for row in table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                                      parameters={"lo": f"{run_id}-", "hi": f"{run_id}-~"},
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


@dataclass(frozen=True)
class CompliancePurge:
    runs: int  # whole runs deleted (older than RUN_RETENTION)
    user_rows: int  # per-user and Entra rows deleted


def _user_query(run_id: str, where: UserFilter) -> tuple[str, dict[str, Any]]:
    # Column names come from the enums' fixed values; every value is a parameter (security.md D6).
    clauses = ["PartitionKey ge @lo and PartitionKey lt @hi"]
    params: dict[str, Any] = {"lo": f"{run_id}-", "hi": f"{run_id}-~"}
    if where.status is not None:
        clauses.append("status eq @status")
        params["status"] = where.status.value
    if where.method is not None:
        clauses.append(f"m_{Method(where.method).value} eq true")
    if where.reason is not None:
        clauses.append(f"r_{NotCapableReason(where.reason).value} eq true")
    return " and ".join(clauses), params


class ComplianceQueue:
    """Shard messages of compliance runs on queue `<prefix>-compliance` (base64, as the queue trigger reads them)."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def send(self, message: ComplianceMessage) -> None:
        try:
            await (await self._storage.queue_ready(QUEUE)).send_message(message.model_dump_json())
        except AzureError as exc:
            raise StorageUnavailable(f"compliance enqueue failed: {type(exc).__name__}") from None

