"""How many people got back into their account over the last days, by themselves or with the helpdesk, per UTC day
(shared/domain/recoveries.py): the compliance dashboard shows them side by side. Read from the audit, one
activity at a time (its day partitions, filtered by activity), so no second record can drift from it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from shared.adapters.audit_store import AuditPage, AuditQuery
from shared.domain import recoveries
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock


class AuditReader(Protocol):
    async def query(self, query: AuditQuery, page_size: int, continuation: str | None = ...) -> AuditPage: ...


class RecoveryDay(BaseModel):
    day: str
    selfService: int
    helpdesk: int


class RecoveryCounts(BaseModel):
    """Successful recoveries per UTC day, self-service beside helpdesk-assisted, and their totals."""

    days: int
    selfService: int
    helpdesk: int
    byDay: list[RecoveryDay]


@dataclass(frozen=True)
class Recoveries:
    audit: AuditReader
    clock: Clock

    async def counts(self, days: int) -> RecoveryCounts:
        end = self.clock()
        start = (end - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        own = await self._per_day(recoveries.SELF_SERVICE, start, end)
        helped = await self._per_day(recoveries.HELPDESK_ASSISTED, start, end)
        dates = [(start + timedelta(days=n)).date().isoformat() for n in range(days)]
        return RecoveryCounts(days=days, selfService=sum(own.values()), helpdesk=sum(helped.values()),
                              byDay=[RecoveryDay(day=d, selfService=own[d], helpdesk=helped[d]) for d in dates])

    async def _per_day(self, activities: tuple[Activity, ...], start: datetime, end: datetime) -> Counter[str]:
        counted: Counter[str] = Counter()
        for activity in activities:
            continuation: str | None = None
            while True:
                page = await self.audit.query(AuditQuery(start, end, None, activity), 1000, continuation)
                counted.update(e.time.date().isoformat() for e in page.events if e.outcome is Outcome.SUCCESS)
                continuation = page.continuation
                if continuation is None:
                    break
        return counted
