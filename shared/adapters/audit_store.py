"""Audit events in Table Storage: one partition per UTC day, newest first inside it, queryable by time range.

RowKey = inverted milliseconds + event id, so a partition reads newest first and two events of the same
millisecond never collide. Filters go through the SDK's parameter binding, never string concatenation
(security.md D6).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.errors import FieldError, InvalidRequest

TABLE = "Audit"
MAX_MILLIS = 10**13  # past year 2286
MAX_QUERY_DAYS = 366


def _row_key(event_time: datetime, event_id: str) -> str:
    millis = int(event_time.timestamp() * 1000)
    return f"{MAX_MILLIS - millis:013d}-{event_id}"


def _to_entity(event: AuditEvent) -> dict[str, Any]:
    event_time = event.time.astimezone(UTC)
    return {
        "PartitionKey": event_time.strftime("%Y%m%d"),
        "RowKey": _row_key(event_time, uuid.uuid4().hex),
        "time": event_time,
        "activity": event.activity.value,
        "service": event.service.value,
        "actorId": event.actor.id,
        "actorDisplay": event.actor.display,
        "actorKind": event.actor.kind,
        "outcome": event.outcome.value,
        "targetUserId": event.target_user_id,
        "method": event.method,
        "flowId": event.flow_id,
        "clientIp": event.client_ip,
        "reason": event.reason,
        "details": json.dumps(event.details, separators=(",", ":"), default=str) if event.details else None,
    }


def _from_entity(entity: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        time=entity["time"].astimezone(UTC) if isinstance(entity["time"], datetime) else entity["time"],
        activity=Activity(entity["activity"]),
        service=AuditService(entity["service"]),
        actor=Actor(entity["actorId"], entity.get("actorDisplay") or "", entity.get("actorKind") or "user"),
        outcome=Outcome(entity["outcome"]),
        target_user_id=entity.get("targetUserId"),
        method=entity.get("method"),
        flow_id=entity.get("flowId"),
        client_ip=entity.get("clientIp"),
        reason=entity.get("reason"),
        details=json.loads(entity["details"]) if entity.get("details") else {},
    )


@dataclass(frozen=True)
class AuditQuery:
    start: datetime
    end: datetime
    user_id: str | None = None  # matches the target user or the actor
    activity: Activity | None = None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    continuation: str | None


@dataclass(frozen=True)
class AuditStore:
    storage: StorageClients

    async def write(self, event: AuditEvent) -> None:
        table = await self.storage.table_ready(TABLE)
        with storage_errors("audit write"):
            await table.create_entity(_to_entity(event))

    async def query(self, query: AuditQuery, page_size: int, continuation: str | None = None) -> AuditPage:
        """Events newest first between start and end (inclusive), `page_size` at most, resumable."""
        if query.end < query.start:
            raise InvalidRequest([FieldError.of("from", "audit.fromAfterTo", "must not be after 'to'")])
        if (query.end - query.start) > timedelta(days=MAX_QUERY_DAYS):
            raise InvalidRequest([FieldError.of("from", "audit.rangeTooLong",
                                                f"the range may span at most {MAX_QUERY_DAYS} days",
                                                days=MAX_QUERY_DAYS)])
        day, after_row = _decode_continuation(continuation) if continuation else (query.end.date(), None)
        if not query.start.date() <= day <= query.end.date():
            raise InvalidRequest([FieldError.of("continuation", "continuation.otherSearch",
                                                "belongs to another time range: search again")])
        table = await self.storage.table_ready(TABLE)
        events: list[AuditEvent] = []
        high = after_row or _row_key(query.end + timedelta(milliseconds=1), "")
        low = _row_key(query.start, "~")
        with storage_errors("audit query"):
            while day >= query.start.date():
                clauses = ["PartitionKey eq @pk", "RowKey gt @high" if after_row else "RowKey ge @high", "RowKey le @low"]
                params: dict[str, Any] = {"pk": day.strftime("%Y%m%d"), "high": high, "low": low}
                if query.activity is not None:
                    clauses.append("activity eq @activity")
                    params["activity"] = query.activity.value
                if query.user_id is not None:
                    clauses.append("( targetUserId eq @user or actorId eq @user )")  # the SDK splits on spaces
                    params["user"] = query.user_id
                pages = table.query_entities(" and ".join(clauses), parameters=params, results_per_page=page_size)
                async for entity in pages:
                    events.append(_from_entity(entity))
                    if len(events) == page_size:
                        return AuditPage(events, _encode_continuation(day, entity["RowKey"]))
                day -= timedelta(days=1)
                after_row = None
                high = _row_key(query.end + timedelta(milliseconds=1), "")
        return AuditPage(events, None)


def _encode_continuation(day: date, row_key: str) -> str:
    return base64.urlsafe_b64encode(f"{day.isoformat()}|{row_key}".encode()).decode()


def _decode_continuation(token: str) -> tuple[date, str]:
    try:
        day_text, row_key = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return date.fromisoformat(day_text), row_key
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest([FieldError.of("continuation", "continuation.unknown",
                                            "is not a token this service issued")]) from None

