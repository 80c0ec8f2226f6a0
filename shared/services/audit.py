"""Audit: record what happened, and let admins search it (Entra's activity names, newest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.audit_store import AuditPage, AuditQuery, AuditStore
from shared.domain.audit import Activity, AuditEvent
from shared.domain.clock import Clock, utc_now

DEFAULT_RANGE = timedelta(days=7)
CSV_EXPORT_LIMIT = 10_000


@dataclass(frozen=True)
class AuditLog:
    store: AuditStore
    clock: Clock = utc_now

    async def search(self, start: datetime | None, end: datetime | None, user_id: str | None,
                     activity: Activity | None, page_size: int, continuation: str | None) -> AuditPage:
        end = end or self.clock()
        start = start or end - DEFAULT_RANGE
        return await self.store.query(AuditQuery(start, end, user_id, activity), page_size, continuation)

    async def export(self, start: datetime | None, end: datetime | None, user_id: str | None,
                     activity: Activity | None) -> tuple[list[AuditEvent], bool]:
        """Every matching event up to CSV_EXPORT_LIMIT; the flag says whether more were left out."""
        events: list[AuditEvent] = []
        continuation: str | None = None
        while True:
            page = await self.search(start, end, user_id, activity, 1000, continuation)
            events.extend(page.events)
            if len(events) >= CSV_EXPORT_LIMIT:
                return events[:CSV_EXPORT_LIMIT], True
            if page.continuation is None:
                return events, False
            continuation = page.continuation
