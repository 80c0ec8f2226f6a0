"""Enablement: accept an admin's request to enable SSPR for All / Selected / None, and run it as queue shards.

Conflict policy: **refuse**. A request while another run is queued or running gets 409 naming the running run;
a run with no checkpoint for 15 minutes counts as stalled and is failed by the next request instead.

A run is a chain of shard messages on queue `sspr-enablement`, each `{"runId", "step", "index"}` (ids only):

    page n   read Graph page n at the cursor stored in its page row -> store page n+1's cursor and enqueue it at
             once (so the next page is read by any instance while this one writes) -> upsert the users in scope,
             stamped with the run's generation -> checkpoint: page done + run counters in one transaction (ETags)
    sweep b  when every page is done: delete partition b's rows of older generations (users who left the scope)
             -> checkpoint: sweep done + run counters; the last sweep completes the run and audits it

Starting a run has two halves so a caller can put a save between them (the policy is the source of truth of the
scope, shared/services/policy.py): `reserve` validates the group and claims the single run slot (400 / 409 before
anything is saved), `start` creates the run and enqueues its first page, `release` hands the slot back when the
caller's save failed. A reservation whose run row never appears stops blocking after RESERVATION_TTL.

Every step is idempotent: a redelivered or duplicated message rewrites the same rows (upserts) and loses the
ETag race of the checkpoint, so counters move once; a crash resumes from the last checkpointed page. Graph
throttling is retried by the SDK (Retry-After) and then by the queue; the checkpoint is never lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.adapters.audit_store import AuditStore
from shared.adapters.enablement_store import EnablementQueue, EnablementStore, Lock, Shard
from shared.adapters.etag_retry import LostRace
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService
from shared.domain.enablement import PARTITION_BUCKETS, DirectoryPage, EnablementMessage, Run, enabled_users
from shared.domain.policy import Scope
from shared.domain.runs import TERMINAL, RunState, UnknownShard
from shared.errors import Conflict, FieldError, GraphError, GraphUnavailable, InvalidRequest
from shared.services.runs import RunBook, RunNames, run_event

log = logging.getLogger("sspr.enablement")

# A reserved run slot whose run row was never created (the caller crashed between reserve and start) blocks new
# requests only this long.
RESERVATION_TTL = timedelta(minutes=1)


class EnablementDirectory(Protocol):
    """What an enablement run reads of the directory."""

    async def group_exists(self, group_id: str) -> bool: ...

    async def enablement_page(self, group_id: str | None, cursor: str | None, with_count: bool) -> DirectoryPage: ...


@dataclass(frozen=True)
class Reservation:
    """The run slot claimed for a run that is about to start."""

    run_id: str
    scope: Scope
    group_id: str | None
    generation: int
    previous_rows: int | None
    replaced: Lock  # the lock as it was before the claim, to give back on release
    lock_etag: str


class EnablementService:
    def __init__(self, store: EnablementStore, queue: EnablementQueue, directory: EnablementDirectory,
                 audit: AuditStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._queue = queue
        self._directory = directory
        self._audit = audit
        self._clock = clock
        self._runs = RunBook(store.runs, "enablement", self._record_completion, clock, RunNames(
            "enablement run", "Enablement request", "runningRequestId",
            "stalled: no progress for 15 minutes; superseded by a new request"))

    # ---- the admin's side -----------------------------------------------------------------------------------

    async def request(self, scope: Scope, group_id: str | None, include_guests: bool, actor: Actor,
                      client_ip: str | None = None) -> Run:
        """Validate, claim the single run slot, create the run and enqueue its first page (202 for the caller)."""
        reservation = await self.reserve(scope, group_id)
        return await self.start(reservation, include_guests, actor, client_ip)

    async def reserve(self, scope: Scope, group_id: str | None) -> Reservation:
        """400 for a missing group, 409 while a run is going; otherwise claim the run slot for a new run."""
        group_id = group_id.lower() if group_id else None
        if scope is Scope.SELECTED:
            if group_id is None or not await self._directory.group_exists(group_id):
                raise InvalidRequest([FieldError.of(
                    "groupId", "group.notFound",
                    f"no group with id {group_id} exists in the directory (it may have been deleted)",
                )])
        now = self._clock()
        lock = await self._store.read_lock()
        previous = await self._previous_run(lock, now)
        run_id, generation = str(uuid.uuid4()), lock.generation + 1
        try:
            etag = await self._store.claim_lock(lock, run_id, generation, reserved_at=now)
        except LostRace:
            latest = await self._store.read_lock()
            raise Conflict("another enablement request was accepted meanwhile", runningRequestId=latest.run_id,
                           detail="Another enablement request was accepted at the same moment.") from None
        previous_rows = previous.in_scope if previous and previous.state is RunState.COMPLETED else \
            (0 if lock.run_id is None else None)
        return Reservation(run_id, scope, group_id, generation, previous_rows, lock, etag)

    async def start(self, reservation: Reservation, include_guests: bool, actor: Actor,
                    client_ip: str | None = None) -> Run:
        """Create the reserved run and enqueue its first page; audited as requested by `actor`."""
        now = self._clock()
        run = Run(
            id=reservation.run_id, scope=reservation.scope, group_id=reservation.group_id,
            include_guests=include_guests, generation=reservation.generation, requested_by=actor.id,
            created_at=now, updated_at=now, previous_rows=reservation.previous_rows,
        )
        await self._store.create_run(run)
        await self._queue.send(EnablementMessage(runId=run.id, step="page", index=0))
        await self._audit.write(AuditEvent(
            time=now, activity=Activity.ENABLEMENT_REQUESTED, service=AuditService.SSPR_ADMIN, actor=actor,
            client_ip=client_ip, flow_id=run.id,
            details={"scope": run.scope.value, "groupId": run.group_id, "includeGuests": include_guests,
                     "generation": run.generation},
        ))
        return run

    async def release(self, reservation: Reservation) -> None:
        """Give the slot back (the caller's save failed): the run it replaced is the latest again."""
        if not await self._store.release_lock(reservation.replaced, reservation.lock_etag):
            log.warning("enablement reservation %s could not be released; it expires by itself",
                        reservation.run_id)

    async def _previous_run(self, lock: Lock, now: datetime) -> Run | None:
        """The latest run; 409 if it is still going, failed first if it has stalled."""
        if lock.run_id is None:
            return None
        found = await self._store.get_run(lock.run_id)
        if found is None:
            if lock.reserved_at is not None and now - lock.reserved_at < RESERVATION_TTL:
                raise Conflict(
                    f"enablement run {lock.run_id} is being started", runningRequestId=lock.run_id,
                    detail=f"Enablement request {lock.run_id} is being started; wait until it completes.",
                )
            return None  # a reservation never started: it blocks nothing any more
        return await self._runs.refuse_running(found, now)

    async def status(self, run_id: str) -> Run:
        return await self._runs.find(run_id, "enablement run")

    async def latest(self, limit: int) -> list[Run]:
        return await self._store.latest_runs(limit)

    # ---- the worker's side -------------------------------------------------------------------------------------

    async def process(self, message: EnablementMessage, final_attempt: bool) -> None:
        """Run one shard. Raises to have the queue retry it (transient faults); never double-counts."""
        if message.step == "page":
            await self._process_page(message.runId.lower(), message.index, final_attempt)
        else:
            await self._process_sweep(message.runId.lower(), message.index)

    async def _process_page(self, run_id: str, index: int, final_attempt: bool) -> None:
        run, etag, page = await self._runs.load_shard(run_id, lambda: self._store.get_page(run_id, index),
                                                      f"page {index}")
        if run.state in TERMINAL:
            await self._runs.finish(run, etag)
            return
        if page.done:  # a duplicate, or a redelivery after the checkpoint: only make sure the sweeps were sent
            if run.pages_complete:
                await self._send_sweeps(run)
            return
        if run.state is RunState.QUEUED:
            run, etag = await self._runs.mark_started(run, etag)
        try:
            directory_page = await self._read_page(run, page, index)
        except GraphError as error:
            if error.status == 404 and run.scope is Scope.SELECTED:
                await self._runs.fail(run_id, f"the group {run.group_id} no longer exists in the directory")
                return
            await self._runs.fail(run_id, f"Microsoft Graph refused page {index + 1} ({error.status} {error.code})")
            return
        except GraphUnavailable:
            note = f"page {index + 1}: Microsoft Graph throttled or unavailable; retrying"
            if final_attempt:
                await self._runs.fail(run_id, f"page {index + 1}: Microsoft Graph stayed throttled or unavailable")
            else:
                await self._runs.note(run_id, note)
            raise
        if directory_page.next_link:
            await self._store.add_page(run_id, index + 1, directory_page.next_link)
            await self._queue.send(EnablementMessage(runId=run_id, step="page", index=index + 1))
        rows = enabled_users(directory_page.users, run)
        transactions = await self._store.write_users(rows)
        last = directory_page.next_link is None
        checkpointed = await self._checkpoint_page(run, etag, page, len(directory_page.users), len(rows),
                                                   transactions, last, directory_page.count)
        if checkpointed is not None and checkpointed.pages_complete:
            await self._send_sweeps(checkpointed)

    async def _read_page(self, run: Run, page: Shard, index: int) -> DirectoryPage:
        if run.scope is Scope.NONE:
            return DirectoryPage([], None, 0)
        group = run.group_id if run.scope is Scope.SELECTED else None
        return await self._directory.enablement_page(group, page.cursor, with_count=index == 0)

    async def _checkpoint_page(self, run: Run, etag: str, page: Shard, processed: int, written: int,
                               transactions: int, last: bool, total: int | None) -> Run | None:
        """Page done + counters in one transaction; None when another delivery of this page won the race."""
        async def write(current: Run, current_etag: str) -> Run:
            updated = current.after_page(processed, written, transactions, last, page.index, total, self._clock())
            await self._store.checkpoint_page(updated, current_etag, page, processed, written)
            return updated

        return await self._runs.checkpoint(run, etag, page, lambda: self._store.get_page(run.id, page.index), write)

    async def _send_sweeps(self, run: Run) -> None:
        for bucket in range(PARTITION_BUCKETS):
            sweep = await self._store.get_sweep(run.id, bucket)
            if sweep is not None and not sweep.done:
                await self._queue.send(EnablementMessage(runId=run.id, step="sweep", index=bucket))

    async def _process_sweep(self, run_id: str, bucket: int) -> None:
        if bucket >= PARTITION_BUCKETS:
            await self._runs.load(run_id)
            raise UnknownShard(f"run {run_id} has no sweep {bucket}")
        run, etag, sweep = await self._runs.load_shard(run_id, lambda: self._store.get_sweep(run_id, bucket),
                                                       f"sweep {bucket} yet")
        if run.state in TERMINAL or sweep.done:
            await self._runs.finish(run, etag)
            return
        removed, transactions = await self._store.sweep_partition(bucket, run.generation)

        async def write(current: Run, current_etag: str) -> Run:
            updated = current.after_sweep(removed, transactions, self._clock())
            await self._store.checkpoint_sweep(updated, current_etag, sweep, removed)
            return updated

        updated = await self._runs.checkpoint(run, etag, sweep, lambda: self._store.get_sweep(run_id, bucket), write)
        if updated is not None and updated.state is RunState.COMPLETED:
            await self._runs.finish_latest(run_id)

    async def _record_completion(self, run: Run) -> None:
        await self._audit.write(run_event(run, Activity.ENABLEMENT_COMPLETED, self._clock(), outcome=True, details={
            "scope": run.scope.value, "groupId": run.group_id, "usersProcessed": run.users_processed,
            "inScope": run.in_scope, "removed": run.removed, "added": run.added, "generation": run.generation}))
