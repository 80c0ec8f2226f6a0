"""Purge of expired state (security.md E4): rows whose lifetime has passed, deleted by a daily timer.

What expires when (each store documents its rows' lifetime; the cutoffs are here):

    Challenges          latest moment (created / sent / expiry / used / delivered) older than CHALLENGE_GRACE
    SecurityInfo        `pending-*` setups past their `expiresAt` by more than PENDING_GRACE
    Throttle            user rows with no event inside the longest window and no block running; budget windows
                        that have ended
    Notifications       mail-ledger rows last written more than LEDGER_RETENTION ago (queue messages, and so
                        their redeliveries, live at most 7 days)
    Reminders           registration reminder slots claimed more than the reminder period ago; password-expiry
                        rows ("expiry") whose last stage was claimed more than EXPIRY_SLOT_RETENTION ago
    EnablementRuns      finished runs older than RUN_RETENTION, never the latest run nor the newest completed one
    ResetFlows          whole flows (flow row and challenges) created more than FLOW_LIFETIME + FLOW_GRACE ago
    ProofOfWorkSpent    spent proof-of-work rows whose challenge has expired (they cannot be replayed anyway)
    Compliance*         per-user rows of finished runs past the newest 7; whole runs finished over 90 days ago
                        (their own bounds: shared/adapters/compliance_store.py)
    Expiry*             password expiry runs: the same bounds (shared/adapters/expiry_reminder_store.py)
    PasswordChanges     self-service changes created more than REQUEST_RETENTION ago (a day; their job lived minutes)

Audit events are never purged here: how long an audit trail is kept is the organisation's retention decision
(and often a legal one), made on the storage account (lifecycle rules, export to Log Analytics), not by the
service that writes the trail.

A kind of state is one `Purge` (what it is called in the report, and the call that deletes it); `standard_purges`
lists the service's. A new job whose rows expire adds its own purge there, beside the runs of the run kit
(shared/adapters/run_store.py). Each kind deletes at most `limit` rows per invocation (bounded work: a backlog is worked off over several runs),
in single-partition transactions of up to 100 rows, each row under the ETag it was read with, so a row in use
again is left alone. Deleting what is already gone is a no-op: a second purge, or two overlapping, change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.change_store import ChangeStore
from shared.adapters.compliance_store import ComplianceStore
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.expiry_reminder_store import ExpiryReminderStore
from shared.adapters.helpdesk_store import HelpdeskStore
from shared.adapters.mail import MailLedger
from shared.adapters.proof_of_work import ProofOfWork
from shared.adapters.reminder_store import ExpirySlots, ReminderStore
from shared.adapters.reset_store import ResetFlowStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.throttle_store import ThrottleStore
from shared.domain.expiry_policy import STAGE_MAX_DAYS
from shared.domain.password_change import REQUEST_RETENTION
from shared.domain.reset_flow import FLOW_LIFETIME

log = logging.getLogger("sspr.maintenance")

CHALLENGE_GRACE = timedelta(hours=24)  # longer than any flow: codes live minutes, a flow's session less than this
PENDING_GRACE = timedelta(hours=1)
LEDGER_RETENTION = timedelta(days=14)  # twice the longest a queue message (and so a redelivery) can live
RUN_RETENTION = timedelta(days=90)  # run history an admin can still open, for trends and questions
FLOW_GRACE = timedelta(hours=1)  # a flow is refused after FLOW_LIFETIME; an hour later its rows serve nobody
HELPDESK_RETENTION = timedelta(hours=2)  # longer than a verification and its last link; then its rows serve nobody
PURGE_LIMIT = 5000  # rows per kind per invocation
# An "expiry" row says which stages went out for one password. A stage of s days is claimed at most s days before
# the expiry, so once the largest stage's days have passed since the last claim, that password has expired by the
# rules of the time and no stage of it can be due again; a day more for the run that judged a day late.
EXPIRY_SLOT_RETENTION = timedelta(days=STAGE_MAX_DAYS + 1)


@dataclass(frozen=True)
class PurgeReport:
    """Rows deleted per kind in one purge."""

    challenges: int = 0
    pending_setups: int = 0
    throttle_rows: int = 0
    mail_ledger: int = 0
    reminder_slots: int = 0
    expiry_slots: int = 0
    enablement_runs: int = 0
    reset_flows: int = 0
    proofs_of_work: int = 0
    compliance_runs: int = 0
    compliance_rows: int = 0
    expiry_runs: int = 0
    expiry_rows: int = 0
    password_changes: int = 0
    helpdesk: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


# One kind of expired state: given now and the row limit, delete and say how many, by PurgeReport field.
Purge = Callable[[datetime, int], Awaitable[dict[str, int]]]


def expiring(kind: str, purge: Callable[[datetime, int], Awaitable[int]], age: timedelta = timedelta(0)) -> Purge:
    """The purge of rows older than `age` (a store's `purge_expired(cutoff, limit)`), reported as `kind`."""
    async def run(now: datetime, limit: int) -> dict[str, int]:
        return {kind: await purge(now - age, limit)}
    return run


def compliance_purge(store: ComplianceStore) -> Purge:
    async def run(now: datetime, limit: int) -> dict[str, int]:
        purged = await store.purge_expired(now, limit)
        return {"compliance_runs": purged.runs, "compliance_rows": purged.user_rows}
    return run


def expiry_purge(store: ExpiryReminderStore) -> Purge:
    async def run(now: datetime, limit: int) -> dict[str, int]:
        purged = await store.purge_expired(now, limit)
        return {"expiry_runs": purged.runs, "expiry_rows": purged.user_rows}
    return run


def standard_purges(challenges: ChallengeStore, security_info: SecurityInfoStore, throttle: ThrottleStore,
                    ledger: MailLedger, reminders: ReminderStore, enablement: EnablementStore,
                    reminder_period: timedelta, reset_flows: ResetFlowStore | None = None,
                    proofs: ProofOfWork | None = None, compliance: ComplianceStore | None = None,
                    expiry: ExpiryReminderStore | None = None, changes: ChangeStore | None = None,
                    helpdesk: HelpdeskStore | None = None) -> list[Purge]:
    """The service's purges, in the order of the module docstring (the optional ones when given)."""
    purges = [
        expiring("challenges", challenges.purge_expired, CHALLENGE_GRACE),
        expiring("pending_setups", security_info.purge_expired, PENDING_GRACE),
        expiring("throttle_rows", throttle.purge_expired),
        expiring("mail_ledger", ledger.purge_expired, LEDGER_RETENTION),
        expiring("reminder_slots", reminders.purge_expired, reminder_period),
        expiring("expiry_slots", ExpirySlots(reminders.storage).purge_expired, EXPIRY_SLOT_RETENTION),
        expiring("enablement_runs", enablement.purge_finished_runs, RUN_RETENTION),
    ]
    if reset_flows is not None:
        purges.append(expiring("reset_flows", reset_flows.purge_expired, FLOW_LIFETIME + FLOW_GRACE))
    if helpdesk is not None:  # a verification is refused after 30 minutes and its link after 30 more
        purges.append(expiring("helpdesk", helpdesk.purge_expired, HELPDESK_RETENTION))
    if proofs is not None:
        purges.append(expiring("proofs_of_work", proofs.purge_expired))
    if compliance is not None:
        purges.append(compliance_purge(compliance))
    if expiry is not None:
        purges.append(expiry_purge(expiry))
    if changes is not None:
        purges.append(expiring("password_changes", changes.purge_expired, REQUEST_RETENTION))
    return purges


class MaintenanceService:
    def __init__(self, purges: Sequence[Purge], clock: Callable[[], datetime], limit: int = PURGE_LIMIT) -> None:
        self._purges = list(purges)
        self._clock = clock
        self._limit = limit

    async def purge_expired(self) -> PurgeReport:
        """One purge of every kind (see the module docstring), one after the other; what it deleted."""
        now = self._clock()
        report = PurgeReport()
        for purge in self._purges:
            report = replace(report, **await purge(now, self._limit))
        log.info("purge of expired state: %s", asdict(report))
        return report
