"""Compliance runs: start one (timer or admin), sweep the users in scope shard by shard, remind, compare, report.

Conflict policy: **refuse**, as for enablement runs: a start while a run is queued or running is 409 naming it
(`runningRunId`); a run with no checkpoint for 15 minutes counts as stalled and is failed by the next start.

A run is a set of shard messages on queue `<prefix>-compliance`, each `{"runId", "step", "index"}` (ids only):

    entra        (Entra ID P1/P2 only) page through Entra's userRegistrationDetails, at most 5 requests / 10 s,
                 storing each user's facts and checkpointing the nextLink per page; a slice of ENTRA_SLICE pages
                 per message, then it re-enqueues itself; done -> enqueue the 16 partition shards
    partition i  sweep shard i (user ids whose first hex digit is i): page by page (<= 1,024 users), read the
                 page's Enablement rows and summaries by key-range scans (shared/adapters/compliance_store.py),
                 judge each user (shared/domain/compliance.py), upsert the per-user rows, queue the reminders due,
                 checkpoint the page's last id + the shard's tally under the shard row's ETag; after the last page:
                 shard done + the run's merged counters in one transaction; the 16th completes the run

Every step is idempotent: rows are upserts keyed by user, a redelivery resumes from the last checkpoint, a shard
already done changes nothing, and a duplicate loses the ETag race of the checkpoint, so counters move once.
Reminders follow the sign-in path's rules (shared/domain/signin.py: due at most once per period, a deterministic
message id queued before the period's slot is claimed); the claim names the run, so a redelivered page neither
queues a reminder twice nor forgets to count one it queued: `remindersSent` is the reminders this run queued. Every shard judges reconfirmation as of the run's creation time, so a redelivery gives
the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.adapters.audit_store import AuditStore
from shared.adapters.compliance_store import ComplianceQueue, ComplianceStore
from shared.adapters.etag_retry import LostRace
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService
from shared.domain.compliance import (
    ComplianceMessage,
    EntraState,
    Run,
    RunState,
    Shard,
    Status,
    assess_user,
    entra_facts,
    shard_key,
)
from shared.domain.compliance_report import UserFilter
from shared.domain.eligibility import LicenceCatalog, SubscribedSku
from shared.domain.policy import Policy
from shared.domain.runs import TERMINAL
from shared.domain.security_info import SecurityInfoSummary
from shared.errors import GraphError, GraphUnavailable, NotFound
from shared.services.compliance_reminders import ComplianceReminders
from shared.services.entra_methods import EntraMethods
from shared.services.runs import RunBook, RunNames, retry_checkpoint, run_event

if TYPE_CHECKING:
    from shared.adapters.graph.authentication import EntraContact  # the Graph SDK comes with it

log = logging.getLogger("sspr.compliance")

ENTRA_SLICE = 60  # pages of userRegistrationDetails per message (~2 minutes at the quota), then re-enqueued
REPORTS_QUOTA = 5  # requests ...
# ... per this many seconds, per app (Graph reports APIs); half a second more than the quota's 10 s, because
# Graph counts arrivals and we count sends (measured: at exactly 10 s about 1 request in 10 drew a 429).
REPORTS_WINDOW_SECONDS = 10.5
NOT_PREMIUM = "the tenant has no Entra ID P1/P2, so Entra's userRegistrationDetails report is not available"


class ComplianceDirectory(Protocol):
    """What a compliance run reads of the directory: the licences, and Entra's own registration report."""

    async def subscribed_skus(self) -> list[SubscribedSku]: ...

    async def user_registration_details_page(self, cursor: str | None) -> tuple[list[dict[str, object]], str | None]: ...

    async def entra_contacts(self, user_id: str) -> list[EntraContact]: ...


class Policies(Protocol):
    async def get(self) -> Policy: ...


class ReportsPacer:
    """At most REPORTS_QUOTA requests per REPORTS_WINDOW_SECONDS from this process (a sliding window)."""

    def __init__(self, quota: int = REPORTS_QUOTA, window: float = REPORTS_WINDOW_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sent: deque[float] = deque(maxlen=quota)
        self._window = window
        self._monotonic = monotonic
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            if len(self._sent) == self._sent.maxlen:
                delay = self._sent[0] + self._window - self._monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # the reports quota, not a test waiting for time
            self._sent.append(self._monotonic())


@dataclass(frozen=True)
class RunProgress:
    run: Run
    shards_done: int
    users_processed: int


class ComplianceService:
    def __init__(self, store: ComplianceStore, queue: ComplianceQueue, directory: ComplianceDirectory,
                 policies: Policies, reminders: ComplianceReminders, audit: AuditStore, clock: Callable[[], datetime],
                 pacer: ReportsPacer | None = None) -> None:
        self._store = store
        self._queue = queue
        self._directory = directory
        self._policies = policies
        self._reminders = reminders
        self._audit = audit
        self._clock = clock
        self._pacer = pacer or ReportsPacer()
        self._runs = RunBook(store.runs, "compliance", self._record_completion, clock,
                             RunNames("compliance run", "Compliance run"))
        self._entra = EntraMethods(directory, store.security_info, policies, clock)

    # ---- starting a run ------------------------------------------------------------------------------------------

    async def start(self, trigger: Literal["manual", "timer"], actor: Actor, client_ip: str | None = None,
                    send_reminders: bool = True) -> Run:
        """409 while a run is going; otherwise create the run, enqueue its first shards and audit the start."""
        now = self._clock()
        lock = await self._runs.free_lock(now)
        premium, reason = await self._premium()
        run = Run(id=str(uuid.uuid4()), trigger=trigger, requested_by=actor.id, created_at=now, updated_at=now,
                  send_reminders=send_reminders, entra=EntraState.PENDING if premium else EntraState.UNAVAILABLE,
                  entra_reason=reason)
        await self._store.create_run(run, with_entra=premium)
        await self._runs.claim(run, lambda: self._store.claim_lock(lock, run.id))
        if premium:
            await self._queue.send(ComplianceMessage(runId=run.id, step="entra"))
        else:
            await self._send_partitions(run.id)
        await self._audit.write(AuditEvent(
            time=now, activity=Activity.COMPLIANCE_STARTED, service=AuditService.SSPR_ADMIN, actor=actor,
            client_ip=client_ip, flow_id=run.id,
            details={"trigger": trigger, "sendReminders": send_reminders, "entraComparison": run.entra.value,
                     **({"entraReason": reason} if reason else {})},
        ))
        return run

    async def _premium(self) -> tuple[bool, str | None]:
        """Entra ID P1/P2 present (the tenant check's rule: an active SKU with a provisioned P1/P2 plan)?"""
        try:
            skus = await self._directory.subscribed_skus()
        except (GraphError, GraphUnavailable) as exc:
            return False, f"the tenant's licences could not be read ({type(exc).__name__}), so Entra's report was not read"
        if LicenceCatalog(skus).premium_sku_ids:
            return True, None
        return False, NOT_PREMIUM

    async def _send_partitions(self, run_id: str) -> None:
        for shard in await self._store.shards(run_id):
            if not shard.done:
                await self._queue.send(ComplianceMessage(runId=run_id, step="partition", index=shard.index))

    # ---- reading runs -------------------------------------------------------------------------------------------

    async def status(self, run_id: str) -> RunProgress:
        run = await self._runs.find(run_id, "compliance run")
        shards = await self._store.shards(run.id)
        return RunProgress(run, sum(s.done for s in shards), sum(s.tally.users for s in shards))

    async def history(self, limit: int) -> list[Run]:
        return await self._store.latest_runs(limit)

    async def users(self, run_id: str, where: UserFilter, page_size: int,
                    continuation: dict[str, str] | None) -> tuple[list[dict[str, object]], str | None]:
        run = await self._runs.find(run_id, "compliance run")
        if run.rows_purged:  # the run document says so (`rowsPurged`); its totals remain
            raise NotFound(f"the per-user rows of compliance run {run_id} were purged")
        return await self._store.user_rows(run_id.lower(), where, page_size, continuation)

    # ---- the worker's side ------------------------------------------------------------------------------------

    async def process(self, message: ComplianceMessage, final_attempt: bool) -> None:
        """Run one shard. Raises to have the queue retry it (transient faults); never double-counts."""
        run_id = message.runId.lower()
        if message.step == "entra":
            await self._process_entra(run_id, final_attempt)
        else:
            await self._process_partition(run_id, message.index)

    async def _process_entra(self, run_id: str, final_attempt: bool) -> None:
        run, etag, shard = await self._runs.load_shard(run_id, lambda: self._store.get_entra(run_id), "entra shard")
        if run.state in TERMINAL:
            await self._runs.finish(run, etag)
            return
        if shard.done or run.entra is not EntraState.PENDING:
            await self._send_partitions(run_id)  # a redelivery after the checkpoint: make sure they were sent
            return
        for _ in range(ENTRA_SLICE):
            await self._pacer.wait()
            try:
                entries, next_link = await self._directory.user_registration_details_page(shard.cursor)
            except GraphError as error:
                reason = NOT_PREMIUM if error.status == 403 else \
                    f"Microsoft Graph refused the registration report ({error.status} {error.code})"
                await self._close_entra(run_id, EntraState.UNAVAILABLE, reason)
                return
            except GraphUnavailable:
                if final_attempt:
                    await self._close_entra(run_id, EntraState.UNAVAILABLE,
                                            "Microsoft Graph stayed throttled or unavailable for the registration report")
                    return
                raise
            facts = {str(e["id"]).lower(): entra_facts(e) for e in entries}
            await self._store.write_entra(run_id, facts)
            try:
                shard = await self._store.checkpoint_entra(run_id, shard, next_link, shard.pages + 1,
                                                           shard.users + len(facts))
            except LostRace:
                return  # another delivery of this shard is ahead of us
            if next_link is None:
                await self._close_entra(run_id, EntraState.COMPARED, None)
                return
        await self._runs.touch(run_id)  # a long report is progress, not a stall
        await self._queue.send(ComplianceMessage(runId=run_id, step="entra"))  # the next slice

    async def _close_entra(self, run_id: str, state: EntraState, reason: str | None) -> None:
        async def attempt(_: bool) -> None:
            run, etag = await self._runs.load(run_id)
            shard = await self._store.get_entra(run_id)
            if shard is None or shard.done or run.state in TERMINAL:
                return
            await self._store.finish_entra(run.after_entra(state, reason, self._clock()), etag, shard)

        await retry_checkpoint("compliance run", attempt)
        await self._send_partitions(run_id)

    async def _process_partition(self, run_id: str, index: int) -> None:
        run, etag, shard = await self._runs.load_shard(run_id, lambda: self._store.get_shard(run_id, index),
                                                       f"sweep shard {index}")
        if run.state in TERMINAL or shard.done:
            await self._runs.finish(run, etag)
            return
        policy = await self._policies.get()
        while not (shard.pages > 0 and shard.continuation is None):  # until the shard's last page is done
            after = shard.continuation
            page = await self._store.sweep_page(index, after)
            ids = [str(row["RowKey"]) for row in page.rows]
            entra = await self._store.entra_facts(run_id, shard_key(index), ids[0], ids[-1]) \
                if ids and run.entra is EntraState.COMPARED else {}
            summaries = await self._with_entra_methods(policy, ids, page.rows, page.summaries, run.created_at)
            users = [assess_user(uid, row, summaries.get(uid) or SecurityInfoSummary(uid), policy,
                                 run.created_at, entra.get(uid))
                     for uid, row in zip(ids, page.rows, strict=True)]
            transactions = await self._store.write_users(run_id, users)
            queued = await self._reminders.page(run, policy, [u for u in users if u.needs_reminder], page.summaries,
                                                after, page.last, index, self._clock()) if run.send_reminders else 0
            try:
                shard = await self._store.checkpoint_shard(
                    run_id, shard, page.last, shard.tally.add_users(users).with_reminders(queued),
                    shard.pages + 1, shard.transactions + transactions)
            except LostRace:
                return  # another delivery of this shard is ahead of us; it finishes the shard
        await self._finish_shard(run_id, shard)

    async def _with_entra_methods(self, policy: Policy, ids: list[str], rows: list[Any],
                                  summaries: dict[str, SecurityInfoSummary],
                                  now: datetime) -> dict[str, SecurityInfoSummary]:
        """With policy entraMethods.count: the page's enabled users not registered by their own methods get their
        Entra methods read now (a user registered here needs no Graph call)."""
        if not policy.entra_methods.count:
            return summaries
        wanted = [uid for uid, row in zip(ids, rows, strict=True) if assess_user(
            uid, row, replace(summaries.get(uid) or SecurityInfoSummary(uid), entra_methods=frozenset()), policy,
            now).status is Status.NOT_REGISTERED]
        return await self._entra.refresh_summaries(summaries, wanted) if wanted else summaries

    async def _finish_shard(self, run_id: str, shard: Shard) -> None:
        """Shard done + the run's merged counters in one transaction; the 16th completes the run."""
        run, etag = await self._runs.load(run_id)
        if run.state in TERMINAL:
            return

        async def write(current: Run, current_etag: str) -> Run:
            updated = current.after_shard(shard.tally, shard.transactions, self._clock())
            await self._store.finish_shard(updated, current_etag, shard)
            return updated

        updated = await self._runs.checkpoint(run, etag, shard, lambda: self._store.get_shard(run_id, shard.index),
                                              write)
        if updated is not None and updated.state is RunState.COMPLETED:
            await self._runs.finish_latest(run_id)

    async def _record_completion(self, run: Run) -> None:
        tally, now = run.tally, self._clock()
        await self._audit.write(run_event(run, Activity.COMPLIANCE_COMPLETED, now, outcome=True, details={
            "users": tally.users, "capable": tally.capable, "byStatus": dict(tally.by_status),
            "remindersSent": tally.reminders, "entraComparison": run.entra.value}))
        if run.send_reminders:
            await self._audit.write(run_event(run, Activity.REMINDERS_SENT, now, {
                "count": tally.reminders, "source": "compliance run"}))
