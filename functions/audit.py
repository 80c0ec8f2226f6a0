"""GET /api/manage/audit: search the audit log by time range, user and activity; JSON pages or a CSV export."""

from datetime import datetime
from typing import Annotated

import azure.functions as func
from pydantic import UUID4, BaseModel, ConfigDict, Field, ValidationError, field_validator

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.domain.audit import Activity, AuditEvent
from shared.errors import FieldError, InvalidRequest

bp = func.Blueprint()

CSV_COLUMNS = ["time", "activity", "service", "outcome", "actorId", "actorDisplay", "targetUserId", "method",
               "flowId", "clientIp", "reason", "details"]


class AuditSearch(BaseModel):
    """Query string of GET /api/manage/audit."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime | None = Field(None, alias="from", description="ISO 8601 with offset; default: 7 days before 'to'")
    end: datetime | None = Field(None, alias="to", description="ISO 8601 with offset; default: now")
    user: UUID4 | None = Field(None, description="object id of the target user or the actor")
    activity: Activity | None = None
    pageSize: Annotated[int, Field(ge=1, le=500)] = 100
    continuation: Annotated[str | None, Field(max_length=300)] = None
    format: str | None = Field(None, pattern="^(json|csv)$")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-25T00:00:00Z")
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
            {"name": "user", "in": "query", "schema": {"type": "string", "format": "uuid"}},
            {"name": "activity", "in": "query", "schema": {"type": "string", "enum": [a.value for a in Activity]}},
            {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "continuation", "in": "query", "schema": {"type": "string"}},
            {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
        ],
        description="Send `format=csv` or `Accept: text/csv` for a CSV export of up to 10,000 events.",
    ),
]


def _document(event: AuditEvent) -> dict[str, object]:
    return AuditEventDocument(
        time=event.time, activity=event.activity.value, service=event.service.value, outcome=event.outcome.value,
        actorId=event.actor.id, actorDisplay=event.actor.display, actorKind=event.actor.kind,
        targetUserId=event.target_user_id, method=event.method, flowId=event.flow_id, clientIp=event.client_ip,
        reason=event.reason, details=event.details,
    ).model_dump(mode="json")


def _search_params(req: func.HttpRequest) -> AuditSearch:
    try:
        return AuditSearch.model_validate(dict(req.params))
    except ValidationError as exc:
        errors = [FieldError(".".join(str(p) for p in e["loc"]) or "query", e["msg"].removeprefix("Value error, "))
                  for e in exc.errors(include_url=False, include_input=False)]
        raise InvalidRequest(errors) from None


@bp.route(route="manage/audit", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def search_audit(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    q = _search_params(req)
    user = str(q.user) if q.user else None
    if q.format == "csv" or (q.format is None and api.wants_csv(req)):
        events, truncated = await composition.root.audit.export(q.start, q.end, user, q.activity)
        response = api.csv_response(CSV_COLUMNS, (_document(e) for e in events), "sspr-audit.csv")
        if truncated:
            response.headers["X-Export-Truncated"] = "true"
        return response
    page = await composition.root.audit.search(q.start, q.end, user, q.activity, q.pageSize, q.continuation)
    return api.json_response({"value": [_document(e) for e in page.events], "continuation": page.continuation})
