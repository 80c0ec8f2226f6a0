"""GET /api/manage/audit: search the audit log by time range, user (object id or UPN) and activity; JSON pages or a
CSV export. Each event names its target user (display name and UPN), read for the whole page in one batch."""

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.domain.audit import Activity, AuditEvent
from shared.domain.ids import is_guid

if TYPE_CHECKING:
    from shared.adapters.graph.directory import UserName  # the Graph SDK, not needed to register the routes

bp = func.Blueprint()

CSV_COLUMNS = ["time", "activity", "service", "outcome", "actorId", "actorDisplay", "targetUserId",
               "targetDisplayName", "targetUserPrincipalName", "method", "flowId", "clientIp", "reason", "details"]
UPN = r"^[^@\s]{1,113}@[^@\s]{1,140}$"


class AuditSearch(BaseModel):
    """Query string of GET /api/manage/audit."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime | None = Field(None, alias="from", description="ISO 8601 with offset; default: 7 days before 'to'")
    end: datetime | None = Field(None, alias="to", description="ISO 8601 with offset; default: now")
    user: Annotated[str | None, Field(None, max_length=256, description="object id or UPN of the target user or "
                                                                        "the actor")]
    activity: Activity | None = None
    pageSize: Annotated[int, Field(ge=1, le=500)] = 100
    continuation: Annotated[str | None, Field(max_length=300)] = None
    format: str | None = Field(None, pattern="^(json|csv)$")

    @field_validator("user")
    @classmethod
    def _id_or_upn(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if is_guid(value) or re.match(UPN, value):
            return value
        raise PydanticCustomError("user.idOrUpn", "must be an object id or a user principal name (name@domain)")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError("time.zone", "needs a time zone, e.g. 2026-11-25T00:00:00Z")
        return value


class AuditEventDocument(BaseModel):
    time: datetime
    activity: str
    service: str
    outcome: str
    actorId: str
    actorDisplay: str
    actorKind: str
    targetUserId: str | None = None
    targetDisplayName: str | None = None
    targetUserPrincipalName: str | None = None
    method: str | None = None
    flowId: str | None = None
    clientIp: str | None = None
    reason: str | None = None
    details: dict[str, object] = {}


class AuditPageDocument(BaseModel):
    """One page of audit events, newest first."""

    value: list[AuditEventDocument]
    continuation: str | None


OPERATIONS = [
    Operation(
        "get", "manage/audit", "Search the audit log", "audit", "admin-read",
        responses={200: AuditPageDocument},
        parameters=[
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "user", "in": "query", "schema": {"type": "string", "maxLength": 256},
             "description": "the object id or UPN of the target user or the actor"},
            {"name": "activity", "in": "query", "schema": {"type": "string", "enum": [a.value for a in Activity]}},
            {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "continuation", "in": "query", "schema": {"type": "string"}},
            {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
        ],
        description="Send `format=csv` or `Accept: text/csv` for a CSV export of up to 10,000 events.",
    ),
]


def _document(event: AuditEvent, names: Mapping[str, "UserName"]) -> dict[str, object]:
    target = names.get((event.target_user_id or "").lower())
    return AuditEventDocument(
        time=event.time, activity=event.activity.value, service=event.service.value, outcome=event.outcome.value,
        actorId=event.actor.id, actorDisplay=event.actor.display, actorKind=event.actor.kind,
        targetUserId=event.target_user_id, targetDisplayName=target.display_name if target else None,
        targetUserPrincipalName=target.user_principal_name if target else None, method=event.method,
        flowId=event.flow_id, clientIp=event.client_ip, reason=event.reason, details=event.details,
    ).model_dump(mode="json")


def _csv_row(document: dict[str, object]) -> dict[str, object]:
    """`details` as JSON (a program reads it back), the rest as they are."""
    return {**document, "details": json.dumps(document["details"], ensure_ascii=False, separators=(",", ":"))
            if document.get("details") else ""}


@bp.route(route="manage/audit", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def search_audit(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    q = api.parse_query(req, AuditSearch)
    names = composition.root.user_names
    user = await names.id_of(q.user) if q.user else None
    if q.user and user is None:  # a UPN that names nobody: no events, not every event
        return api.json_response({"value": [], "continuation": None}) if not _csv(req, q) else \
            api.csv_response(CSV_COLUMNS, [], "sspr-audit.csv")
    if _csv(req, q):
        events, truncated = await composition.root.audit.export(q.start, q.end, user, q.activity)
        known = await names.of([e.target_user_id or "" for e in events])
        response = api.csv_response(CSV_COLUMNS, (_csv_row(_document(e, known)) for e in events), "sspr-audit.csv")
        if truncated:
            response.headers["X-Export-Truncated"] = "true"
        return response
    page = await composition.root.audit.search(q.start, q.end, user, q.activity, q.pageSize, q.continuation)
    known = await names.of([e.target_user_id or "" for e in page.events])
    return api.json_response({"value": [_document(e, known) for e in page.events], "continuation": page.continuation})


def _csv(req: func.HttpRequest, q: AuditSearch) -> bool:
    return q.format == "csv" or (q.format is None and api.wants_csv(req))
