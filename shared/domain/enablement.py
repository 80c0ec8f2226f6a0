"""Who SSPR is enabled for: the scope rules, the row partitioning, and the bookkeeping of an enablement run.

An enablement run materialises one row per user in scope (All: enabled members; Selected: enabled transitive
user members of one group; None: nobody), so the sign-in hook and the reset flow answer "is user X enabled?"
with one point read. A run reads Graph page by page; every page and every partition sweep is a shard of work
with its own checkpoint, and the counters below are advanced exactly once per shard.
"""

from __future__ import annotations

import hashlib
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.ids import GUID_PATTERN, is_guid

# Scope and RunState are the policy's and the run kit's; named here too, as an enablement run's fields.
from shared.domain.policy import Scope as Scope
from shared.domain.runs import RunLifecycle
from shared.domain.runs import RunState as RunState

# Rows are spread over this many partitions (hash buckets of the user id). 16 measured best on Azurite for
# pages of 999 users (about 62 users per bucket and page: one transaction each); it also keeps every bucket's
# sweep a single shard message, and 16 partitions stay far below Azure's per-partition target at any tenant size.
PARTITION_BUCKETS = 16
TRANSACTION_LIMIT = 100  # entities per single-partition transaction (Azure Tables)


def partition_for(user_id: str) -> str:
    """The partition of a user's row: a stable hash bucket of the lower-cased id, "00".."15"."""
    digest = hashlib.blake2b(user_id.lower().encode(), digest_size=4).digest()
    return f"{int.from_bytes(digest, 'big') % PARTITION_BUCKETS:02d}"


def is_enabled(row: Mapping[str, Any] | None) -> bool:
    """Whether SSPR is enabled for the user whose Enablement row this is (None: no row, not enabled)."""
    return row is not None and row.get("scope") in (Scope.ALL.value, Scope.SELECTED.value)


class EnabledIdIndex:
    """The ids of the Enablement rows, for "is user X in scope?" over a whole directory pass: 16 bytes per id.

    A set of 1,000,000 id strings costs about 110 MB; here each id is two 64-bit halves in per-partition arrays
    (16 MB per million), searched with bisect. Rows arrive sorted by RowKey within a partition (Table Storage
    returns them so, and a lower-case GUID sorts as its number), so nothing needs sorting; a partition that
    arrives out of order anyway is sorted once in `freeze`.
    """

    def __init__(self) -> None:
        self._high: dict[str, array[int]] = {}
        self._low: dict[str, array[int]] = {}
        self._unsorted: set[str] = set()
        self._count = 0

    def add(self, partition: str, user_id: str) -> None:
        try:
            number = uuid.UUID(user_id).int
        except ValueError:
            return  # not a user id: it can never match a directory user
        high, low = number >> 64, number & 0xFFFF_FFFF_FFFF_FFFF
        highs = self._high.setdefault(partition, array("Q"))
        lows = self._low.setdefault(partition, array("Q"))
        if highs and (highs[-1], lows[-1]) >= (high, low):
            self._unsorted.add(partition)
        highs.append(high)
        lows.append(low)
        self._count += 1

    def freeze(self) -> EnabledIdIndex:
        for partition in self._unsorted:
            pairs = sorted(set(zip(self._high[partition], self._low[partition], strict=True)))
            self._high[partition] = array("Q", (h for h, _ in pairs))
            self._low[partition] = array("Q", (lo for _, lo in pairs))
        self._count = sum(len(a) for a in self._high.values())
        self._unsorted.clear()
        return self

    def __len__(self) -> int:
        return self._count

    def __contains__(self, user_id: object) -> bool:
        if not isinstance(user_id, str) or not is_guid(user_id):
            return False
        partition = partition_for(user_id)
        highs, lows = self._high.get(partition), self._low.get(partition)
        if not highs or lows is None:
            return False
        number = uuid.UUID(user_id).int
        high, low = number >> 64, number & 0xFFFF_FFFF_FFFF_FFFF
        first = bisect_left(highs, high)
        last = bisect_right(highs, high, first)
        at = bisect_left(lows, low, first, last)
        return at < last and lows[at] == low


@dataclass(frozen=True)
class DirectoryUser:
    """The directory facts that decide scope."""

    id: str
    account_enabled: bool
    user_type: str | None  # "Member", "Guest"; None on some old accounts, which Entra treats as members
    display_name: str = ""  # kept on the user's row, so reports show a name, never a bare object id
    user_principal_name: str = ""


@dataclass(frozen=True)
class DirectoryPage:
    """One page of users from Graph; `next_link` reads the next page, `count` is the total when asked for."""

    users: list[DirectoryUser]
    next_link: str | None
    count: int | None = None


def in_scope(user: DirectoryUser, include_guests: bool) -> bool:
    """Enabled accounts only; guests only when the run includes them."""
    if not user.account_enabled or not is_guid(user.id):
        return False
    return user.user_type != "Guest" or include_guests


@dataclass(frozen=True)
class EnabledUser:
    """One Enablement row: RowKey = user id, PartitionKey = its bucket, stamped with the run's generation."""

    user_id: str
    user_type: str
    scope: Scope
    group_id: str | None
    generation: int
    display_name: str = ""
    user_principal_name: str = ""

    @property
    def partition(self) -> str:
        return partition_for(self.user_id)


def enabled_users(users: list[DirectoryUser], run: Run) -> list[EnabledUser]:
    return [
        EnabledUser(u.id.lower(), u.user_type or "Member", run.scope, run.group_id, run.generation, u.display_name,
                    u.user_principal_name)
        for u in users
        if in_scope(u, run.include_guests)
    ]


@dataclass(frozen=True)
class Run(RunLifecycle):
    """One enablement request and its progress; the counters move only in the checkpoint of a shard."""

    id: str
    scope: Scope
    group_id: str | None
    include_guests: bool
    generation: int
    requested_by: str
    created_at: datetime
    updated_at: datetime
    state: RunState = RunState.QUEUED
    started_at: datetime | None = None
    completed_at: datetime | None = None
    users_total: int | None = None  # directory users to examine ($count of the first page); None until known
    users_processed: int = 0  # directory users examined
    in_scope: int = 0  # rows written (users found in scope)
    removed: int = 0  # rows of users who left the scope, deleted by the sweeps
    previous_rows: int | None = None  # rows the previous completed run left; None when unknown
    pages_done: int = 0
    page_count: int | None = None  # known once the last page is checkpointed
    sweeps_done: int = 0
    transactions: int = 0  # table transactions of user rows (writes and deletes)
    audited: bool = False
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pages_complete(self) -> bool:
        return self.page_count is not None and self.pages_done >= self.page_count

    @property
    def added(self) -> int | None:
        """Users newly enabled: rows now minus the rows that were there before and stayed."""
        if self.state is not RunState.COMPLETED or self.previous_rows is None:
            return None
        return max(0, self.in_scope - (self.previous_rows - self.removed))

    def blocks_new_request(self, now: datetime) -> bool:
        return self.blocks_new_run(now)

    def after_page(self, processed: int, written: int, transactions: int, last: bool, page_index: int,
                   total: int | None, now: datetime) -> Run:
        return replace(
            self,
            state=RunState.RUNNING,
            started_at=self.started_at or now,
            updated_at=now,
            users_processed=self.users_processed + processed,
            in_scope=self.in_scope + written,
            transactions=self.transactions + transactions,
            pages_done=self.pages_done + 1,
            page_count=page_index + 1 if last else self.page_count,
            users_total=total if total is not None else self.users_total,
        )

    def after_sweep(self, removed: int, transactions: int, now: datetime) -> Run:
        sweeps_done = self.sweeps_done + 1
        done = sweeps_done >= PARTITION_BUCKETS
        return replace(
            self,
            updated_at=now,
            removed=self.removed + removed,
            transactions=self.transactions + transactions,
            sweeps_done=sweeps_done,
            state=RunState.COMPLETED if done else self.state,
            completed_at=now if done else None,
            users_total=self.users_processed if done else self.users_total,
        )


Phase = Literal["waiting", "checking", "finishing", "done", "failed"]
# A run first checks the directory's users (page shards), then removes the rows of users who left the scope (one
# sweep per partition bucket): the bar gives the checking 90% and the tidying up the rest, so it never sits still.
CHECKING_SHARE = 90.0


@dataclass(frozen=True)
class Progress:
    percent: float | None
    rate: float | None  # users examined per second
    eta_seconds: float | None
    phase: Phase = "checking"  # checking the users, then finishing: removing the rows of who left the scope


def progress(run: Run, now: datetime) -> Progress:
    """Percent, rate, ETA and phase as an admin reads them; unknown values stay None rather than guessed."""
    if run.state is RunState.COMPLETED:
        elapsed = ((run.completed_at or now) - (run.started_at or run.created_at)).total_seconds()
        return Progress(100.0, round(run.users_processed / elapsed, 1) if elapsed > 0 else None, 0.0, "done")
    if run.state is RunState.FAILED:
        return Progress(None, None, None, "failed")
    if run.started_at is None:
        return Progress(0.0, None, None, "waiting")
    elapsed = (now - run.started_at).total_seconds()
    rate = run.users_processed / elapsed if elapsed > 0 and run.users_processed else None
    shown_rate = round(rate, 1) if rate else None
    if run.pages_complete:  # every user checked: the sweeps remove who left the scope, and then it is done
        tidied = CHECKING_SHARE + (100.0 - CHECKING_SHARE) * run.sweeps_done / PARTITION_BUCKETS
        return Progress(round(min(99.9, tidied), 1), shown_rate, None, "finishing")
    if not run.users_total:
        return Progress(None, shown_rate, None, "checking")
    percent = min(CHECKING_SHARE, CHECKING_SHARE * run.users_processed / run.users_total)
    remaining = max(0, run.users_total - run.users_processed)
    eta = remaining / rate if rate else None
    return Progress(round(percent, 1), shown_rate, round(eta, 1) if eta is not None else None, "checking")


class EnablementMessage(BaseModel):
    """A shard of a run on queue `sspr-enablement`: ids only (the cursor is in the run's page row)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    runId: Annotated[str, Field(pattern=GUID_PATTERN, max_length=36)]
    step: Literal["page", "sweep"]
    index: Annotated[int, Field(ge=0, le=1_000_000)]
