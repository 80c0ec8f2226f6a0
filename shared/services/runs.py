"""The bookkeeping every sharded job shares: load a shard's run, retry a checkpoint, fail, note, finish-and-audit once.

A job (enablement, compliance, the next) keeps its run in a `RunTable` (shared/adapters/run_store.py) and its rules
in a run dataclass with `RunLifecycle` (shared/domain/runs.py); its service builds one `RunBook` and writes only
its own shard steps. Every read-modify-write of a run row goes through `retry_lost_races`: on a lost ETag race the
step reads again, decides again, and backs off, so duplicates and racing shards never count twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from shared.adapters.etag_retry import LostRace, retry_lost_races
from shared.adapters.run_store import Lock
from shared.domain.audit import SYSTEM, Activity, AuditEvent, AuditService, Outcome
from shared.domain.runs import TERMINAL, RunLifecycle, RunState, UnknownShard
from shared.errors import Conflict, NotFound, SsprError

log = logging.getLogger("sspr.runs")

R = TypeVar("R", bound=RunLifecycle)
T = TypeVar("T")


class ShardRow(Protocol):
    """A shard's row as read: whether it is done, and the ETag it was read at."""

    @property
    def done(self) -> bool: ...

    @property
    def etag(self) -> str: ...


S = TypeVar("S", bound=ShardRow)


class RunRows(Protocol[R]):
    """What the book needs of a job's runs table."""

    async def read_lock(self) -> Lock: ...

    async def get_run(self, run_id: str) -> tuple[R, str] | None: ...

    async def update_run(self, run: R, etag: str) -> str: ...


async def retry_checkpoint(what: str, attempt: Callable[[bool], Awaitable[T]]) -> T:
    """`retry_lost_races` for a step that starts from what it has in hand: `attempt(False)` first, then
    `attempt(True)` (re-read everything) after each lost race, with the backoff."""
    tries = 0

    async def once() -> T:
        nonlocal tries
        tries += 1
        return await attempt(tries > 1)

    return await retry_lost_races(once, what)


@dataclass(frozen=True)
class RunNames:
    """How a job names its runs to an admin: `name` in problems' titles ("compliance run"), `title` in their
    details ("Compliance run"), the problem's member naming the running run, and why a stalled run failed."""

    name: str
    title: str
    running_key: str = "runningRunId"
    stalled: str = "stalled: no progress for 15 minutes"

    def conflict(self, run_id: str | None, message: str, detail: str | None = None) -> Conflict:
        extensions: dict[str, Any] = {self.running_key: run_id}
        return Conflict(message, **extensions, **({"detail": detail} if detail else {}))


def run_event(run: RunLifecycle, activity: Activity, now: datetime, details: dict[str, Any],
              outcome: bool = False) -> AuditEvent:
    """The system's audit event about a finished run; with `outcome`, a failed run's is a failure with its last
    error as the reason."""
    ok = run.state is RunState.COMPLETED or not outcome
    return AuditEvent(time=run.completed_at or now, activity=activity, service=AuditService.SSPR_ADMIN, actor=SYSTEM,
                      outcome=Outcome.SUCCESS if ok else Outcome.FAILURE, flow_id=run.id,
                      reason=None if ok else (run.errors[-1] if run.errors else "failed"), details=details)


class RunBook(Generic[R]):
    """One job's runs: `record` writes the audit of a finished run (once, then the run is marked audited)."""

    def __init__(self, runs: RunRows[R], job: str, record: Callable[[R], Awaitable[None]],
                 clock: Callable[[], datetime], names: RunNames | None = None) -> None:
        self._runs = runs
        self._job = job
        self._record = record
        self._clock = clock
        self._names = names or RunNames(f"{job} run", f"{job.capitalize()} run")

    async def free_lock(self, now: datetime) -> Lock:
        """The lock as read, for a new run to claim: 409 while the lock's run is going (`refuse_running`)."""
        lock = await self._runs.read_lock()
        if lock.run_id is not None:
            await self.refuse_running(await self._runs.get_run(lock.run_id), now)
        return lock

    async def refuse_running(self, found: tuple[R, str] | None, now: datetime) -> R | None:
        """The lock's run as read: 409 naming it while it is queued or running; failed first (so its late
        messages change nothing) when it has stalled; the run, if any."""
        if found is None:
            return None
        run, etag = found
        names = self._names
        if run.blocks_new_run(now):
            raise names.conflict(run.id, f"{names.name} {run.id} is {run.state.value}",
                                 f"{names.title} {run.id} is still {run.state.value}; wait until it completes.")
        if run.state not in TERMINAL:
            return await self.supersede(run, etag, names.stalled,
                                        lambda: names.conflict(run.id, f"{names.name} {run.id} moved meanwhile"))
        return run

    async def claim(self, run: R, claim: Callable[[], Awaitable[object]]) -> None:
        """`claim()` the lock for the created `run`; when another start claimed it first, `run` is closed (it never
        started: it lists as what it is) and the start is a 409 naming the winner."""
        try:
            await claim()
        except LostRace:
            found = await self._runs.get_run(run.id)
            if found is not None:
                failed = found[0].failed("another run started at the same moment", run.updated_at)
                await self._runs.update_run(failed.marked_audited(), found[1])
            latest = await self._runs.read_lock()
            raise self._names.conflict(latest.run_id, f"another {self._names.name} started meanwhile",
                                       f"Another {self._names.title.lower()} was started at the same moment."
                                       ) from None

    async def find(self, run_id: str, noun: str) -> R:
        """The run an admin asks for; 404 "no <noun> <id>" when there is none."""
        found = await self._runs.get_run(run_id)
        if found is None:
            raise NotFound(f"no {noun} {run_id}")
        return found[0]

    async def load(self, run_id: str) -> tuple[R, str]:
        """The run a shard message names, and its ETag; `UnknownShard` when this service never created it."""
        found = await self._runs.get_run(run_id)
        if found is None:
            raise UnknownShard(f"no {self._job} run {run_id}")
        return found

    async def load_shard(self, run_id: str, read: Callable[[], Awaitable[T | None]], what: str) -> tuple[R, str, T]:
        """The run, its ETag and the shard `read` returns; `UnknownShard` when either is missing."""
        run, etag = await self.load(run_id)
        shard = await read()
        if shard is None:
            raise UnknownShard(f"run {run_id} has no {what}")
        return run, etag, shard

    async def mark_started(self, run: R, etag: str) -> tuple[R, str]:
        """Queued -> running (a no-op when another shard started it first)."""
        async def attempt(reread: bool) -> tuple[R, str]:
            current, current_etag = await self.load(run.id) if reread else (run, etag)
            if current.state is not RunState.QUEUED:
                return current, current_etag
            started = current.started(self._clock())
            return started, await self._runs.update_run(started, current_etag)

        return await retry_checkpoint(f"{self._job} run", attempt)

    async def checkpoint(self, run: R, etag: str, shard: S, reread: Callable[[], Awaitable[S | None]],
                         write: Callable[[R, str], Awaitable[R]]) -> R | None:
        """`write(run, etag)`: the shard's row and the run's new counters in one transaction under both ETags
        (shared/adapters/run_store.py `RunTable.checkpoint`); the run it wrote. After a lost race the run is read
        again and merged into; None when the shard was done or advanced meanwhile (another delivery of it is ahead,
        or finished it) or the run has ended: nothing is counted twice."""
        async def attempt(again: bool) -> R | None:
            nonlocal run, etag
            if again:
                run, etag = await self.load(run.id)
                fresh = await reread()
                if fresh is None or fresh.done or fresh.etag != shard.etag or run.state in TERMINAL:
                    return None
            return await write(run, etag)

        return await retry_checkpoint(f"{self._job} run", attempt)

    async def finish(self, run: R, etag: str) -> None:
        """Audit a completed or failed run once it is terminal (again after a crash between the two)."""
        if run.state not in TERMINAL or run.audited:
            return
        await self._record(run)
        try:
            await self._runs.update_run(run.marked_audited(), etag)
        except (LostRace, SsprError):
            pass  # another delivery recorded it meanwhile; at worst the events are written twice

    async def finish_latest(self, run_id: str) -> None:
        """Finish the run as it is stored now (after the checkpoint that completed it)."""
        run, etag = await self.load(run_id)
        await self.finish(run, etag)

    async def supersede(self, run: R, etag: str, reason: str, conflict: Callable[[], SsprError]) -> R:
        """A stalled run closed by the next request (its late messages then change nothing), and finished.
        `conflict()` is raised when the run moved meanwhile (it is not stalled after all)."""
        stalled = run.failed(reason, self._clock())
        try:
            etag = await self._runs.update_run(stalled, etag)
        except LostRace:
            raise conflict() from None
        await self.finish(stalled, etag)
        return stalled

    async def fail(self, run_id: str, reason: str) -> None:
        """Fail the run (unless it has ended already) and finish it."""
        async def attempt(_: bool) -> tuple[R, str] | None:
            run, etag = await self.load(run_id)
            if run.state in TERMINAL:
                return None
            failed = run.failed(reason, self._clock())
            return failed, await self._runs.update_run(failed, etag)

        done = await retry_checkpoint(f"{self._job} run", attempt)
        if done is not None:
            await self.finish(*done)

    async def note(self, run_id: str, message: str) -> None:
        """Best effort: a safe note in the run's errors; losing it to a race loses nothing else."""
        try:
            run, etag = await self.load(run_id)
            await self._runs.update_run(run.with_error(message), etag)
        except (LostRace, SsprError):
            pass

    async def touch(self, run_id: str) -> None:
        """Best effort: move the run's `updated_at`, so long work between checkpoints does not read as stalled."""
        try:
            run, etag = await self.load(run_id)
            await self._runs.update_run(run.touched(self._clock()), etag)
        except (LostRace, SsprError):
            pass  # someone else moved the run row: that is progress too
