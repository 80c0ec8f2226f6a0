"""AD's password expiry of synced users, as the on-premises agents report it, beside each Graph page of a run.

A password-expiry run reads the directory page by page (shared/services/expiry_reminders.py). For the synced users
of a page (those with an `onPremisesSecurityIdentifier`) this reads the agents' report rows by SID (one point read
each, bounded) and hands them to the expiry rule as `OnPremisesExpiry` (shared/domain/password_expiry.py). The
agents write the rows (onprem_agent/expiry.py: a paged LDAP scan every hour, and each account a job changed); a
row too old to believe counts as none (shared/domain/onprem.py `expiry_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from shared.adapters.graph.expiry import PAGE_SIZE, ExpiryPage
from shared.domain import onprem
from shared.domain.clock import Clock
from shared.domain.onprem_jobs import ExpiryReport
from shared.domain.password_expiration import VerifiedDomain
from shared.domain.password_expiry import OnPremisesExpiry, version_of


class GraphExpiryReads(Protocol):
    async def verified_domains(self) -> list[VerifiedDomain]: ...

    async def expiry_page(self, cursor: str | None, page_size: int = PAGE_SIZE) -> ExpiryPage: ...


class ExpiryReportReads(Protocol):
    async def expiry_reports(self, sids: Iterable[str]) -> dict[str, ExpiryReport]: ...


@dataclass(frozen=True)
class SyncedExpiryDirectory:
    """The expiry run's directory: Graph's pages, each with its synced users' AD expiry."""

    graph: GraphExpiryReads
    reports: ExpiryReportReads
    clock: Clock

    async def verified_domains(self) -> list[VerifiedDomain]:
        return await self.graph.verified_domains()

    async def expiry_page(self, cursor: str | None, page_size: int = PAGE_SIZE) -> ExpiryPage:
        page = await self.graph.expiry_page(cursor, page_size)
        synced = {u.on_premises_sid: u.user_id for u in page.users if u.synced and u.on_premises_sid}
        if not synced:
            return page
        reports = await self.reports.expiry_reports(synced)
        now = self.clock()
        found: dict[str, OnPremisesExpiry] = {}
        for sid, user_id in synced.items():
            expiry = onprem.expiry_of(reports.get(sid), now)
            if expiry is not None:
                found[user_id] = expiry
        return replace(page, on_premises=found)

    async def password_version(self, sid: str) -> tuple[bool, str | None]:
        """(whether an agent reports the account now, the version of its current password): the reminder worker
        asks before it mails a synced user, so a password changed in AD since the run is not reminded of."""
        expiry = onprem.expiry_of((await self.reports.expiry_reports([sid])).get(sid), self.clock())
        if expiry is None:
            return False, None
        return True, version_of(expiry.password_last_set) if expiry.password_last_set else None
