"""The job ledger (one table row per job id): an ETag-guarded claim, so of several agents on one queue exactly one
applies a job, and a redelivered job returns its first result instead of applying again (security.md H4).

A claim holds a lease; an agent that died mid-job (SIGKILL) leaves a claim whose lease runs out, and another
agent (or the same one restarted) then takes it over under the row's ETag. The row keeps the time of the first
claim, so the taker can tell from the account's pwdLastSet whether the dead agent's reset reached AD already.
This program imports nothing of the function app but the schemas, so the one conditional write each step
needs is done here with the synchronous SDK: a lost race is never retried, it means another agent has the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.onprem_jobs import JobResult, LedgerState

ROW = "job"


class ClaimKind(StrEnum):
    NEW = "new"  # ours, never claimed before
    TAKEN_OVER = "taken-over"  # ours now; an earlier claim's lease ran out (that agent may have applied it)
    BUSY = "busy"  # another agent holds a live claim
    DONE = "done"  # finished before: `result` is the first result
    CANCELLED = "cancelled"  # the service cancelled it: it must never apply


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    etag: str = ""
    first_claimed_at: datetime | None = None
    result: JobResult | None = None


def _lost(error: HttpResponseError) -> bool:
    return error.status_code in (409, 412)


class Ledger:
    def __init__(self, table: TableClient, agent_id: str, lease: timedelta) -> None:
        self._table = table
        self._agent_id = agent_id
        self._lease = lease

    def claim(self, job_id: str, expires_at: datetime, now: datetime) -> Claim:
        try:
            row = self._table.get_entity(job_id, ROW)
        except ResourceNotFoundError:
            entity = {"PartitionKey": job_id, "RowKey": ROW, "state": LedgerState.CLAIMED.value,
                      "agent_id": self._agent_id, "first_claimed_at": now, "lease_until": now + self._lease,
                      "expires_at": expires_at, "claims": 1}
            try:
                created = self._table.create_entity(entity)
            except ResourceExistsError:
                return self._read(job_id, now)
            return Claim(ClaimKind.NEW, str(created.get("etag", "")), now)
        return self._decide(row, now)

    def _read(self, job_id: str, now: datetime) -> Claim:
        try:
            return self._decide(self._table.get_entity(job_id, ROW), now)
        except ResourceNotFoundError:
            return Claim(ClaimKind.BUSY)

    def _decide(self, row: dict[str, object], now: datetime) -> Claim:
        state = row.get("state")
        if state == LedgerState.DONE.value:
            return Claim(ClaimKind.DONE, result=JobResult.model_validate_json(str(row["result"])))
        if state == LedgerState.CANCELLED.value:
            return Claim(ClaimKind.CANCELLED)
        lease_until = row.get("lease_until")
        if isinstance(lease_until, datetime) and lease_until > now:
            return Claim(ClaimKind.BUSY)
        entity = dict(row)
        entity.update({"agent_id": self._agent_id, "lease_until": now + self._lease,
                       "claims": int(str(row.get("claims", 1))) + 1})
        etag = row.metadata["etag"]  # type: ignore[attr-defined]
        try:
            updated = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if _lost(exc):
                return Claim(ClaimKind.BUSY)
            raise
        first = row.get("first_claimed_at")
        return Claim(ClaimKind.TAKEN_OVER, str(updated.get("etag", "")),
                     first if isinstance(first, datetime) else None)

    def finish(self, claim: Claim, result: JobResult) -> JobResult:
        """Record the result under our claim's ETag; if another agent finished it meanwhile, theirs stands."""
        entity = {"PartitionKey": result.job_id, "RowKey": ROW, "state": LedgerState.DONE.value,
                  "agent_id": self._agent_id, "verdict": result.verdict.value, "finished_at": result.finished_at,
                  "result": result.model_dump_json()}
        try:
            self._table.update_entity(entity, mode=UpdateMode.MERGE, etag=claim.etag,
                                      match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if not _lost(exc):
                raise
            row = self._table.get_entity(result.job_id, ROW)
            if row.get("state") == LedgerState.DONE.value:
                return JobResult.model_validate_json(str(row["result"]))
            # Our lease ran out and another agent holds the claim now: record ours over it, since AD changed.
            self._table.update_entity(entity, mode=UpdateMode.MERGE, etag=row.metadata["etag"],
                                      match_condition=MatchConditions.IfNotModified)
        return result

    def result_of(self, job_id: str) -> JobResult | None:
        try:
            row = self._table.get_entity(job_id, ROW)
        except ResourceNotFoundError:
            return None
        if row.get("state") != LedgerState.DONE.value:
            return None
        return JobResult.model_validate_json(str(row["result"]))
