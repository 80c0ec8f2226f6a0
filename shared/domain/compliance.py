"""Compliance: who in scope can reset their password today, who cannot and why, and the bookkeeping of a sweep.

Pure rules, no I/O. A user is *capable* as Entra counts it: SSPR enabled for them and registered (usable methods
>= the required count, two for administrators, questions never counting for them). Reconfirmation does not take
capability away (Entra only prompts), but an overdue one earns a reminder like a missing registration does.

A run has 16 sweep shards, one per range of user ids by their first hex digit ("0".., "1".., .. "f"..: object ids
are GUIDs, so the shards are about equal), plus, when the tenant has Entra ID P1/P2, one "entra" shard that reads
Entra's own userRegistrationDetails first (the reports API allows 5 requests / 10 s) and stores its per-user facts
for the sweep shards to compare with. Sharding by id range (not by Enablement partition, which is a hash) lets a
shard read every table it needs - the Enablement rows of its range in each of the 16 partitions, the security info
summaries and the reminder slots (one partition per user) - as key-range scans, merged in id order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.enablement import is_enabled
from shared.domain.ids import GUID_PATTERN
from shared.domain.policy import Method, Policy, Scope, effective_requirements
from shared.domain.runs import ReportedRun, RunState
from shared.domain.security_info import SecurityInfoSummary, counted_methods, registration_status

# A reconfirmation falling due within this many days shows as "due" (it is "overdue" from its due date on).
RECONFIRM_DUE_SOON = timedelta(days=14)
TOP_REASONS = 5

# The first id of each sweep shard but the first: shard i holds the ids in [BOUNDS[i-1], BOUNDS[i]), the first and
# last shards open-ended, so every id (even one that is not a GUID) belongs to exactly one shard.
SHARD_BOUNDS = tuple("123456789abcdef")
SWEEP_SHARDS = len(SHARD_BOUNDS) + 1


def sweep_shard(user_id: str) -> int:
    """The sweep shard (0..15) of a lower-cased user id."""
    return bisect_right(SHARD_BOUNDS, user_id)


def shard_range(index: int) -> tuple[str | None, str | None]:
    """The ids of shard `index`: (first inclusive or None: from the start, last exclusive or None: to the end)."""
    return (SHARD_BOUNDS[index - 1] if index > 0 else None,
            SHARD_BOUNDS[index] if index < len(SHARD_BOUNDS) else None)


def shard_key(index: int) -> str:
    """The shard's two-digit name in table keys ("00".."15")."""
    return f"{index:02d}"


class Status(StrEnum):
    """One user's standing, exactly one per user (the report's "counts by status")."""

    CAPABLE = "capable"
    RECONFIRM_OVERDUE = "reconfirmOverdue"  # capable, but their reconfirmation is past due
    NOT_REGISTERED = "notRegistered"  # enabled, below the required count
    NOT_ENABLED = "notEnabled"  # in the Enablement table, but the policy enables nobody (scope none)


class NotCapableReason(StrEnum):
    """Why a user cannot reset their password (a fixed set; a user may have several)."""

    NOT_ENABLED = "notEnabled"
    NO_METHODS = "noMethodsRegistered"
    TOO_FEW_METHODS = "tooFewMethods"  # some usable methods, fewer than the policy requires
    ADMIN_NEEDS_TWO = "adminNeedsTwoMethods"  # enough for a user, not for an administrator
    METHODS_NOT_ALLOWED = "methodsNotAllowed"  # registered methods the policy no longer allows


class Reconfirmation(StrEnum):
    NOT_REQUIRED = "notRequired"  # reconfirmDays 0, or nothing registered yet
    CURRENT = "current"
    DUE = "due"  # falls due within RECONFIRM_DUE_SOON
    OVERDUE = "overdue"


@dataclass(frozen=True)
class EntraFacts:
    """What Entra's userRegistrationDetails says of one user (Entra ID P1/P2 only)."""

    registered: bool
    enabled: bool
    capable: bool
    methods: tuple[str, ...]


@dataclass(frozen=True)
class UserCompliance:
    """One per-user row of a run."""

    user_id: str
    enabled: bool
    registered: bool
    capable: bool
    status: Status
    reasons: tuple[NotCapableReason, ...]
    reconfirmation: Reconfirmation
    reconfirm_due_at: datetime | None
    methods: tuple[Method, ...]
    required: int
    last_confirmed_at: datetime | None
    is_admin: bool
    entra: EntraFacts | None = None
    display_name: str = ""  # from the Enablement row, written with it: a report never asks Graph per row
    user_principal_name: str = ""

    @property
    def needs_reminder(self) -> bool:
        """Not registered, or reconfirmation overdue: the same test as the sign-in reminder's (shared/domain/signin)."""
        return self.status in (Status.NOT_REGISTERED, Status.RECONFIRM_OVERDUE)

    @property
    def entra_agrees(self) -> bool | None:
        return None if self.entra is None else self.entra.capable == self.capable


def assess_user(user_id: str, enablement_row: Mapping[str, Any] | None, summary: SecurityInfoSummary,
                policy: Policy, now: datetime, entra: EntraFacts | None = None) -> UserCompliance:
    """ENABLED x REGISTERED = CAPABLE; reasons when not; reconfirmation as of `now` (the run's start)."""
    enabled = is_enabled(enablement_row) and policy.scope is not Scope.NONE
    status = registration_status(summary, policy, now)
    requirements = effective_requirements(policy, summary.is_admin)
    reasons: list[NotCapableReason] = []
    if not enabled:
        reasons.append(NotCapableReason.NOT_ENABLED)
    if not status.registered:
        usable = len(status.usable_methods)
        counted = counted_methods(summary, policy)
        if not counted:
            reasons.append(NotCapableReason.NO_METHODS)
        else:
            if counted - status.usable_methods:
                reasons.append(NotCapableReason.METHODS_NOT_ALLOWED)
            if summary.is_admin and policy.methods_required <= usable < requirements.methods_required:
                reasons.append(NotCapableReason.ADMIN_NEEDS_TWO)
            else:
                reasons.append(NotCapableReason.TOO_FEW_METHODS)
    reconfirmation = Reconfirmation.NOT_REQUIRED
    if status.registered and status.reconfirm_due_at is not None:
        if now >= status.reconfirm_due_at:
            reconfirmation = Reconfirmation.OVERDUE
        elif now >= status.reconfirm_due_at - RECONFIRM_DUE_SOON:
            reconfirmation = Reconfirmation.DUE
        else:
            reconfirmation = Reconfirmation.CURRENT
    if not enabled:
        kind = Status.NOT_ENABLED
    elif not status.registered:
        kind = Status.NOT_REGISTERED
    elif reconfirmation is Reconfirmation.OVERDUE:
        kind = Status.RECONFIRM_OVERDUE
    else:
        kind = Status.CAPABLE
    return UserCompliance(
        user_id=user_id, enabled=enabled, registered=status.registered, capable=enabled and status.registered,
        status=kind, reasons=tuple(reasons), reconfirmation=reconfirmation, reconfirm_due_at=status.reconfirm_due_at,
        methods=tuple(sorted(counted_methods(summary, policy))), required=requirements.methods_required,
        last_confirmed_at=summary.last_confirmed_at, is_admin=summary.is_admin, entra=entra,
        display_name=str((enablement_row or {}).get("displayName") or ""),
        user_principal_name=str((enablement_row or {}).get("userPrincipalName") or ""),
    )


# Entra's method names (userRegistrationDetails.methodsRegistered) that SSPR counts.
ENTRA_SSPR_METHODS = frozenset({"email", "mobilePhone", "officePhone", "alternateMobilePhone",
                                "microsoftAuthenticatorPush", "softwareOneTimePasscode", "securityQuestion"})


def entra_facts(detail: Mapping[str, Any]) -> EntraFacts:
    return EntraFacts(
        registered=detail.get("isSsprRegistered") is True, enabled=detail.get("isSsprEnabled") is True,
        capable=detail.get("isSsprCapable") is True,
        methods=tuple(str(m) for m in detail.get("methodsRegistered") or [] if isinstance(m, str)),
    )


# ---- tallies ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Counts of a shard or a run; shards' tallies add up to the run's."""

    users: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    by_method: Mapping[str, int] = field(default_factory=dict)
    by_reason: Mapping[str, int] = field(default_factory=dict)
    reconfirm_due: int = 0
    reminders: int = 0
    entra_compared: int = 0
    entra_disagree: int = 0

    def add_users(self, users: Iterable[UserCompliance]) -> Tally:
        status, methods, reasons = Counter(self.by_status), Counter(self.by_method), Counter(self.by_reason)
        count = due = compared = disagree = 0
        for u in users:
            count += 1
            status[u.status.value] += 1
            methods.update(m.value for m in u.methods)
            reasons.update(r.value for r in u.reasons)
            due += u.reconfirmation is Reconfirmation.DUE
            if u.entra is not None:
                compared += 1
                disagree += u.entra_agrees is False
        return replace(self, users=self.users + count, by_status=dict(status), by_method=dict(methods),
                       by_reason=dict(reasons), reconfirm_due=self.reconfirm_due + due,
                       entra_compared=self.entra_compared + compared, entra_disagree=self.entra_disagree + disagree)

    def plus(self, other: Tally) -> Tally:
        return Tally(
            users=self.users + other.users,
            by_status=dict(Counter(self.by_status) + Counter(other.by_status)),
            by_method=dict(Counter(self.by_method) + Counter(other.by_method)),
            by_reason=dict(Counter(self.by_reason) + Counter(other.by_reason)),
            reconfirm_due=self.reconfirm_due + other.reconfirm_due,
            reminders=self.reminders + other.reminders,
            entra_compared=self.entra_compared + other.entra_compared,
            entra_disagree=self.entra_disagree + other.entra_disagree,
        )

    def with_reminders(self, sent: int) -> Tally:
        return replace(self, reminders=self.reminders + sent)

    @property
    def capable(self) -> int:
        return self.by_status.get(Status.CAPABLE.value, 0) + self.by_status.get(Status.RECONFIRM_OVERDUE.value, 0)

    def top_reasons(self, limit: int = TOP_REASONS) -> list[tuple[str, int]]:
        return sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "byStatus": dict(self.by_status), "byMethod": dict(self.by_method),
                "byReason": dict(self.by_reason), "reconfirmDue": self.reconfirm_due, "reminders": self.reminders,
                "entraCompared": self.entra_compared, "entraDisagree": self.entra_disagree}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        return cls(users=int(data.get("users", 0)), by_status=dict(data.get("byStatus") or {}),
                   by_method=dict(data.get("byMethod") or {}), by_reason=dict(data.get("byReason") or {}),
                   reconfirm_due=int(data.get("reconfirmDue", 0)), reminders=int(data.get("reminders", 0)),
                   entra_compared=int(data.get("entraCompared", 0)),
                   entra_disagree=int(data.get("entraDisagree", 0)))


# ---- runs ----------------------------------------------------------------------------------------------------------


class EntraState(StrEnum):
    PENDING = "pending"  # the entra shard has not finished
    COMPARED = "compared"
    UNAVAILABLE = "unavailable"  # no P1/P2, or Graph refused: `entra_reason` says why


@dataclass(frozen=True)
class Run(ReportedRun):
    """One compliance sweep; counters move only in a shard's final checkpoint (one transaction with its row)."""

    id: str
    trigger: Literal["manual", "timer"]
    requested_by: str
    created_at: datetime  # also the "as of" time every shard evaluates reconfirmation at
    updated_at: datetime
    send_reminders: bool = True
    state: RunState = RunState.QUEUED
    started_at: datetime | None = None
    completed_at: datetime | None = None
    shards_done: int = 0
    entra: EntraState = EntraState.PENDING
    entra_reason: str | None = None
    tally: Tally = field(default_factory=Tally)
    transactions: int = 0
    audited: bool = False
    errors: tuple[str, ...] = ()
    rows_purged: bool = False  # its per-user rows were purged (retention); the totals above remain

    @property
    def shards_total(self) -> int:
        return SWEEP_SHARDS

    def after_entra(self, state: EntraState, reason: str | None, now: datetime) -> Run:
        return replace(self.started(now), entra=state, entra_reason=reason, updated_at=now)

    def after_shard(self, tally: Tally, transactions: int, now: datetime) -> Run:
        done = self.shards_done + 1
        finished = done >= self.shards_total
        run = self.started(now)
        return replace(run, shards_done=done, tally=run.tally.plus(tally), transactions=run.transactions + transactions,
                       updated_at=now, state=RunState.COMPLETED if finished else RunState.RUNNING,
                       completed_at=now if finished else None)


@dataclass(frozen=True)
class Shard:
    """A sweep shard's checkpoint: the last user id of the pages done (None: none yet, or - with pages > 0 - the
    shard's range is done) and the tally of those pages."""

    index: int
    done: bool
    continuation: str | None
    tally: Tally
    pages: int
    transactions: int
    etag: str


@dataclass(frozen=True)
class EntraShard:
    done: bool
    cursor: str | None  # the nextLink that reads the next page (None: the first page)
    pages: int
    users: int
    etag: str


class ComplianceMessage(BaseModel):
    """A shard of a compliance run on queue `<prefix>-compliance`: ids only (cursors live in the shard rows)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    runId: Annotated[str, Field(pattern=GUID_PATTERN, max_length=36)]
    step: Literal["entra", "partition"]
    index: Annotated[int, Field(ge=0, lt=SWEEP_SHARDS)] = 0  # the sweep shard ("partition": its name on the wire)
