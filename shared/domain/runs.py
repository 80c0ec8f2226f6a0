"""The life of a sharded, checkpointed run, common to every job: its states, when it has stalled, how it ends.

A run is queued, then running once a shard has started it, and ends completed or failed (TERMINAL); nothing moves
it out of a terminal state. One run of a job at a time: a run that is queued or running blocks a new one, unless
it has had no checkpoint for STALL_AFTER, when the next request fails it ("stalled") and starts anew. Each job's
run is a frozen dataclass that mixes in `RunLifecycle`, which gives it these rules over its common fields.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol, Self

MAX_ERRORS = 20  # notes kept in a run's `errors`, newest last
# A queued or running run with no checkpoint for this long is stalled (its messages were poisoned or lost):
# longer than the 10-minute lease after which a crashed host's message reappears.
STALL_AFTER = timedelta(minutes=15)


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({RunState.COMPLETED, RunState.FAILED})


class UnknownShard(Exception):
    """A message names a run or shard this service never created: poison it, touch nothing."""


class RunLifecycle:
    """The state rules of a job's run; the run dataclass declares these fields (frozen, so every change is a copy)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # a dataclass's: `replace` copies it
    id: str
    state: RunState
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    errors: tuple[str, ...]
    audited: bool

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def stalled(self, now: datetime) -> bool:
        return self.state not in TERMINAL and now - self.updated_at > STALL_AFTER

    def blocks_new_run(self, now: datetime) -> bool:
        """The conflict rule: one run at a time, unless the running one has stalled."""
        return self.state not in TERMINAL and not self.stalled(now)

    def started(self, now: datetime) -> Self:
        if self.state is not RunState.QUEUED:
            return self
        return replace(self, state=RunState.RUNNING, started_at=now, updated_at=now)

    def failed(self, reason: str, now: datetime) -> Self:
        return replace(self.with_error(reason), state=RunState.FAILED, completed_at=now,
                       updated_at=now)

    def with_error(self, message: str) -> Self:
        return replace(self, errors=(*self.errors, message)[-MAX_ERRORS:])

    def touched(self, now: datetime) -> Self:
        return replace(self, updated_at=now)

    def marked_audited(self) -> Self:
        return replace(self, audited=True)


class Tallied(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


class ReportedRun(RunLifecycle):
    """A run that keeps a report: per-user rows (purged by retention before the run's totals) and a tally; the
    run dataclass declares these fields too (compliance, password expiry)."""

    trigger: Literal["manual", "timer"]
    requested_by: str
    created_at: datetime
    send_reminders: bool
    tally: Tallied
    transactions: int
    rows_purged: bool

    def rows_gone(self) -> Self:
        return replace(self, rows_purged=True)
