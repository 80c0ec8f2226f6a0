"""Purge of expired state (security.md E4): rows whose lifetime has passed, deleted by a daily timer.

What expires when (each store documents its rows' lifetime; the cutoffs are here):

    Challenges          latest moment (created / sent / expiry / used / delivered) older than CHALLENGE_GRACE
    SecurityInfo        `pending-*` setups past their `expiresAt` by more than PENDING_GRACE
    Throttle            user rows with no event inside the longest window and no block running; budget windows
                        that have ended
    Notifications       mail-ledger rows last written more than LEDGER_RETENTION ago (queue messages, and so
                        their redeliveries, live at most 7 days)
    Reminders           registration reminder slots claimed more than the reminder period ago
    EnablementRuns      finished runs older than RUN_RETENTION, never the latest run nor the newest completed one
    ResetFlows          whole flows (flow row and challenges) created more than FLOW_LIFETIME + FLOW_GRACE ago
    ProofOfWorkSpent    spent proof-of-work rows whose challenge has expired (they cannot be replayed anyway)
    Compliance*         per-user rows of finished runs past the newest 7; whole runs finished over 90 days ago
                        (their own bounds: shared/adapters/compliance_store.py)

Audit events are never purged here: how long an audit trail is kept is the organisation's retention decision
(and often a legal one), made on the storage account (lifecycle rules, export to Log Analytics), not by the
service that writes the trail.

Each kind deletes at most `limit` rows per invocation (bounded work: a backlog is worked off over several runs),
in single-partition transactions of up to 100 rows, each row under the ETag it was read with, so a row in use
again is left alone. Deleting what is already gone is a no-op: a second purge, or two overlapping, change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.compliance_store import ComplianceStore
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.mail import MailLedger
from shared.adapters.proof_of_work import ProofOfWork
from shared.adapters.reminder_store import ReminderStore
from shared.adapters.reset_store import ResetFlowStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.throttle_store import ThrottleStore
from shared.domain.reset_flow import FLOW_LIFETIME

log = logging.getLogger("sspr.maintenance")

CHALLENGE_GRACE = timedelta(hours=24)  # longer than any flow: codes live minutes, a flow's session less than this
PENDING_GRACE = timedelta(hours=1)
LEDGER_RETENTION = timedelta(days=14)  # twice the longest a queue message (and so a redelivery) can live
RUN_RETENTION = timedelta(days=90)  # run history an admin can still open, for trends and questions
FLOW_GRACE = timedelta(hours=1)  # a flow is refused after FLOW_LIFETIME; an hour later its rows serve nobody
PURGE_LIMIT = 5000  # rows per kind per invocation


@dataclass(frozen=True)
class PurgeReport:
    """Rows deleted per kind in one purge."""

    challenges: int
    pending_setups: int
    throttle_rows: int
    mail_ledger: int
    reminder_slots: int
    enablement_runs: int
    reset_flows: int = 0
    proofs_of_work: int = 0
    compliance_runs: int = 0
    compliance_rows: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


class MaintenanceService:
    def __init__(self, challenges: ChallengeStore, security_info: SecurityInfoStore, throttle: ThrottleStore,
                 ledger: MailLedger, reminders: ReminderStore, enablement: EnablementStore,
                 reminder_period: timedelta, clock: Callable[[], datetime], limit: int = PURGE_LIMIT,
                 reset_flows: ResetFlowStore | None = None, proofs: ProofOfWork | None = None,
                 compliance: ComplianceStore | None = None) -> None:
        self._compliance = compliance
        self._reset_flows = reset_flows
        self._proofs = proofs
        self._challenges = challenges
        self._security_info = security_info
        self._throttle = throttle
        self._ledger = ledger
        self._reminders = reminders
        self._enablement = enablement
        self._reminder_period = reminder_period
        self._clock = clock
        self._limit = limit

    async def purge_expired(self) -> PurgeReport:
        """One purge of every kind (see the module docstring); what it deleted."""
        now = self._clock()
        report = PurgeReport(
            challenges=await self._challenges.purge_expired(now - CHALLENGE_GRACE, self._limit),
            pending_setups=await self._security_info.purge_expired(now - PENDING_GRACE, self._limit),
            throttle_rows=await self._throttle.purge_expired(now, self._limit),
            mail_ledger=await self._ledger.purge_expired(now - LEDGER_RETENTION, self._limit),
            reminder_slots=await self._reminders.purge_expired(now - self._reminder_period, self._limit),
            enablement_runs=await self._enablement.purge_finished_runs(now - RUN_RETENTION, self._limit),
            reset_flows=await self._reset_flows.purge_expired(now - FLOW_LIFETIME - FLOW_GRACE, self._limit)
            if self._reset_flows else 0,
            proofs_of_work=await self._proofs.purge_expired(now, self._limit) if self._proofs else 0,
        )
        if self._compliance is not None:
            compliance = await self._compliance.purge_expired(now, self._limit)
            report = replace(report, compliance_runs=compliance.runs, compliance_rows=compliance.user_rows)
        log.info("purge of expired state: %s", asdict(report))
        return report
