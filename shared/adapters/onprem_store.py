"""The service's side of the on-premises agent's storage (docs/onprem.md): it puts jobs on the jobs queue, reads
the ledger row where an agent claims a job and records its result, cancels a job no agent has claimed (so it can
never apply), and reads the agents' heartbeats. The results queue is read by its function trigger.

The queues and tables carry the deployment's queue prefix, as the agent's `storage.prefix` names them. A job
holds the password only sealed to the agent's key (security.md H2); nothing here ever sees it in clear.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient
from pydantic import ValidationError

from shared import queues
from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors
from shared.domain.onprem_jobs import (
    AGENTS_TABLE,
    EXPIRY_TABLE,
    LEDGER_TABLE,
    ExpiryReport,
    Heartbeat,
    JobResult,
    LedgerState,
    OnPremJob,
)

log = logging.getLogger("sspr.onprem")

READ_CONCURRENCY = 16  # point reads of expiry reports in flight per page of users
LEDGER_ROW = "job"  # the agent's ledger keeps one row per job: PartitionKey = job id, RowKey = "job"
AGENTS_PARTITION = "agent"


@dataclass(frozen=True)
class LedgerEntry:
    """Where a job stands: no row (no agent took it yet), claimed, done (with the result) or cancelled."""

    state: LedgerState | None
    result: JobResult | None = None


@dataclass(frozen=True)
class OnPremStore:
    storage: StorageClients
    prefix: str  # SSPR_QUEUE_PREFIX: the agent's `storage.prefix`

    async def send(self, job: OnPremJob, time_to_live: timedelta) -> None:
        """Put the job on the jobs queue; the message itself vanishes when no agent could apply it any more."""
        queue = await self.storage.queue_ready(queues.ONPREM_JOBS)
        with storage_errors("on-premises job enqueue"):
            await queue.send_message(job.model_dump_json(), time_to_live=max(1, int(time_to_live.total_seconds())))

    async def entry(self, job_id: str) -> LedgerEntry:
        table = await self._ledger()
        with storage_errors("on-premises ledger read"):
            try:
                row = await table.get_entity(job_id, LEDGER_ROW)
            except ResourceNotFoundError:
                return LedgerEntry(None)
        state = LedgerState(str(row.get("state")))
        result = JobResult.model_validate_json(str(row["result"])) if state is LedgerState.DONE else None
        return LedgerEntry(state, result)

    async def cancel(self, job_id: str, expires_at: datetime) -> bool:
        """Make the job never apply, if no agent has claimed it: True when cancelled, False when an agent has it."""
        table = await self._ledger()
        entity = {"PartitionKey": job_id, "RowKey": LEDGER_ROW, "state": LedgerState.CANCELLED.value,
                  "agent_id": "service", "expires_at": expires_at}
        with storage_errors("on-premises job cancel"):
            try:
                await table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    async def heartbeats(self) -> list[Heartbeat]:
        """Every agent's last heartbeat (one row per agent); a row that does not read as one is skipped."""
        table = await self.storage.table_ready(AGENTS_TABLE.format(prefix=self.prefix), prefixed=False)
        beats = []
        with storage_errors("on-premises agents read"):
            async for row in table.query_entities(f"PartitionKey eq '{AGENTS_PARTITION}'"):
                try:
                    beats.append(Heartbeat.model_validate_json(str(row.get("heartbeat", ""))))
                except ValidationError:
                    log.warning("agent row %s is not a heartbeat", str(row.get("RowKey", ""))[:64])
        return beats

    async def expiry_reports(self, sids: Iterable[str]) -> dict[str, ExpiryReport]:
        """The agents' password-expiry reports of these accounts (point reads, READ_CONCURRENCY at a time); an
        account no agent reported is absent, and so is a row that does not read as a report."""
        table = await self.storage.table_ready(EXPIRY_TABLE.format(prefix=self.prefix), prefixed=False)
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(sid: str) -> ExpiryReport | None:
            async with gate:
                with storage_errors("on-premises expiry read"):
                    try:
                        row = await table.get_entity(sid.rsplit("-", 1)[0], sid)
                    except ResourceNotFoundError:
                        return None
            try:
                return ExpiryReport.model_validate_json(str(row.get("report", "")))
            except ValidationError:
                log.warning("expiry report of %s does not read as one", sid[:64])
                return None

        unique = sorted(set(sids))
        found = await asyncio.gather(*(read(sid) for sid in unique))
        return {sid: report for sid, report in zip(unique, found, strict=True) if report is not None}

    async def _ledger(self) -> TableClient:
        return await self.storage.table_ready(LEDGER_TABLE.format(prefix=self.prefix), prefixed=False)
