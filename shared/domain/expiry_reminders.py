"""Password-expiry reminder runs: the run and its counters, a page's tally, and the shard message.

Pure rules, no I/O. A run reads every directory user page by page (Graph `/users`, 999 a page, each page one shard
message that enqueues the next before it works), judges each user's expiry as of the run's creation
(shared/domain/password_expiry.py, with the rules read when the run started), keeps one row per user for the admin
view, and queues the reminders due. Its counters move only in a page's checkpoint (one transaction with the page's
row), and the page that makes `pages_done` reach the known page count completes it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.ids import GUID_PATTERN
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.domain.password_expiry import ExpiryRules, ExpiryState, PasswordExpiry
from shared.domain.runs import ReportedRun, RunState

# Names a reminder's notification (uuid5): the same user, password and stage give the same id on every
# delivery of a page, so the notifications ledger sends it once whatever a crash repeats. Never changes.
REMINDER_NAMESPACE = uuid.UUID("5b0f6a1e-2c47-4f0d-9a8e-7d3c1b2e4f60")
WINDOWS = (7, 14, 30)  # "who expires in the next 7 / 14 / 30 days" (the admin view)
MAX_PAGES = 1_000_000


def reminder_id(user_id: str, password_version: str, stage: int) -> str:
    """The notification id of the reminder of `stage` for this password of this user (deterministic)."""
    return str(uuid.uuid5(REMINDER_NAMESPACE, f"expiry|{user_id.lower()}|{password_version}|{stage}"))


@dataclass(frozen=True)
class Tally:
    """Counts of a page or a run; pages' tallies add up to the run's."""

    users: int = 0
    by_state: Mapping[str, int] = field(default_factory=dict)
    within: Mapping[str, int] = field(default_factory=dict)  # "7" / "14" / "30": expiring within that many days
    reminders: Mapping[str, int] = field(default_factory=dict)  # stage ("14") -> reminders this run queued

    def add_users(self, judged: Iterable[PasswordExpiry], now: datetime) -> Tally:
        states, within = Counter(self.by_state), Counter(self.within)
        count = 0
        for user in judged:
            count += 1
            states[user.state.value] += 1
            left = user.days_left(now)
            if user.state is ExpiryState.EXPIRING and left is not None:
                within.update(str(w) for w in WINDOWS if left <= w)
        return replace(self, users=self.users + count, by_state=dict(states), within=dict(within))

    def with_reminders(self, stages: Iterable[int]) -> Tally:
        return replace(self, reminders=dict(Counter(self.reminders) + Counter(str(s) for s in stages)))

    def plus(self, other: Tally) -> Tally:
        return Tally(self.users + other.users, dict(Counter(self.by_state) + Counter(other.by_state)),
                     dict(Counter(self.within) + Counter(other.within)),
                     dict(Counter(self.reminders) + Counter(other.reminders)))

    @property
    def reminders_sent(self) -> int:
        return sum(self.reminders.values())

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "byState": dict(self.by_state), "within": dict(self.within),
                "reminders": dict(self.reminders)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        return cls(int(data.get("users", 0)), dict(data.get("byState") or {}), dict(data.get("within") or {}),
                   dict(data.get("reminders") or {}))


def rules_document(rules: ExpiryRules, stages: tuple[int, ...], sms: bool) -> dict[str, Any]:
    """What a run judges and reminds by, as stored in its row (so every page uses the same, and the admin sees it)."""
    return {
        "domains": {name: {"validityDays": d.expiration.validity_days, "authenticationType": d.authentication_type}
                    for name, d in sorted(rules.domains.items())},
        "cloudPolicyForSyncedUsers": rules.cloud_policy_for_synced_users, "stages": list(stages), "sms": sms,
    }


def rules_from(document: Mapping[str, Any]) -> tuple[ExpiryRules, tuple[int, ...], bool]:
    domains = [
        VerifiedDomain(name, False, str(d.get("authenticationType") or "Managed"),
                       DomainExpiration(name, d.get("validityDays"), None))
        for name, d in (document.get("domains") or {}).items()
    ]
    return (ExpiryRules.of(domains, bool(document.get("cloudPolicyForSyncedUsers"))),
            tuple(int(s) for s in document.get("stages") or ()), bool(document.get("sms")))


@dataclass(frozen=True)
class Run(ReportedRun):
    """One reminder run; `created_at` is also the instant every page judges at, so a redelivery gives the same rows."""

    id: str
    trigger: Literal["manual", "timer"]
    requested_by: str
    created_at: datetime
    updated_at: datetime
    rules: Mapping[str, Any]  # rules_document(...)
    send_reminders: bool = False  # asked for, and the policy's expiryReminders.enabled when the run started
    state: RunState = RunState.QUEUED
    started_at: datetime | None = None
    completed_at: datetime | None = None
    users_total: int | None = None  # the tenant's users ($count of the first page); None until known
    pages_done: int = 0
    page_count: int | None = None  # known once the last page is checkpointed
    tally: Tally = field(default_factory=Tally)
    transactions: int = 0  # table transactions of per-user rows
    audited: bool = False
    errors: tuple[str, ...] = ()
    rows_purged: bool = False  # its per-user rows were purged (retention); the totals remain

    @property
    def pages_complete(self) -> bool:
        return self.page_count is not None and self.pages_done >= self.page_count

    def after_page(self, tally: Tally, transactions: int, last: bool, index: int, total: int | None,
                   now: datetime) -> Run:
        """A page's checkpoint: its counts added; the run completes when every page of a known count is done."""
        run = self.started(now)
        pages_done = run.pages_done + 1
        page_count = index + 1 if last else run.page_count
        done = page_count is not None and pages_done >= page_count
        return replace(run, pages_done=pages_done, page_count=page_count, tally=run.tally.plus(tally),
                       transactions=run.transactions + transactions, updated_at=now,
                       users_total=total if total is not None else run.users_total,
                       state=RunState.COMPLETED if done else RunState.RUNNING, completed_at=now if done else None)


class ExpiryReminderMessage(BaseModel):
    """A page of a reminder run on queue `<prefix>-expiry-reminders`: ids only (the cursor is in the page's row)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    runId: Annotated[str, Field(pattern=GUID_PATTERN, max_length=36)]
    step: Literal["page"] = "page"
    index: Annotated[int, Field(ge=0, lt=MAX_PAGES)] = 0
