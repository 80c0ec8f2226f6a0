"""Compliance runs: the daily timer, POST/GET /api/manage/compliance/runs for admins, and the queue worker.

Who can reset their password today, who cannot and why: a run judges every user in scope (the Enablement table),
compares with Entra's own report when the tenant has P1/P2, reminds who is not registered or overdue, and keeps
per-user rows to filter, page and export as CSV. One run at a time: a start while one runs is 409 naming it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import api, composition
from functions.openapi_spec import Operation
from functions.shard_worker import run_shard
from shared import queues
from shared.domain.access import Access
from shared.domain.audit import SYSTEM
from shared.domain.compliance import ComplianceMessage, NotCapableReason, Run, Status
from shared.domain.compliance_report import CSV_PAGE_ROWS, UserFilter, decode_continuation
from shared.domain.ids import is_guid
from shared.domain.policy import Method
from shared.errors import Conflict, FieldError, InvalidRequest
from shared.services.compliance import RunProgress

log = logging.getLogger("sspr.compliance")

bp = func.Blueprint()

HISTORY = 30

RUN_CSV_COLUMNS = ["id", "state", "trigger", "createdAt", "completedAt", "users", "capable", "notRegistered",
                   "reconfirmOverdue", "notEnabled", "reconfirmDue", "remindersSent", "entraComparison",
                   "entraDisagree"]
USER_CSV_COLUMNS = ["userId", "status", "enabled", "registered", "capable", "reasons", "reconfirmation",
                    "reconfirmDueAt", "methods", "methodsRequired", "lastConfirmedAt", "isAdmin", "entraRegistered",
                    "entraCapable", "entraMethods", "entraAgrees"]


class ComplianceRunRequest(BaseModel):
    """Start a compliance run now; `sendReminders` false judges and reports without mailing anyone."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sendReminders: bool = True


class ComplianceRunAccepted(BaseModel):
    id: str
    state: str


class ComplianceRunSummary(BaseModel):
    """A run with its totals (the history lists these, so a trend can be drawn)."""

    id: str
    state: Literal["queued", "running", "completed", "failed"]
    trigger: Literal["manual", "timer"]
    requestedBy: str
    createdAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None
    users: int
    capable: int
    notRegistered: int
    reconfirmOverdue: int
    notEnabled: int
    reconfirmDue: int = Field(description="capable users whose reconfirmation falls due within 14 days")
    remindersSent: int
    entraComparison: Literal["pending", "compared", "unavailable"]
    entraReason: str | None = Field(description="why Entra's userRegistrationDetails column is empty, if it is")
    entraDisagree: int = Field(description="users Entra judges capable differently from this service")
    errors: list[str]
    rowsPurged: bool  # the per-user rows are gone (kept for the newest runs only); the totals remain


class ComplianceRunDocument(ComplianceRunSummary):
    """One run: progress while it runs, counts by status and by method, the top reasons users are not capable."""

    shardsDone: int
    shardsTotal: int
    usersProcessed: int
    byStatus: dict[str, int]
    byMethod: dict[str, int]
    topReasons: list[dict[str, object]]
    tableTransactions: int


class ComplianceRunList(BaseModel):
    value: list[ComplianceRunSummary]


class ComplianceUser(BaseModel):
    userId: str
    status: str
    enabled: bool
    registered: bool
    capable: bool
    reasons: list[str]
    reconfirmation: str
    reconfirmDueAt: datetime | None
    methods: list[str]
    methodsRequired: int
    lastConfirmedAt: datetime | None
    isAdmin: bool
    entraRegistered: bool | None
    entraCapable: bool | None
    entraMethods: list[str] | None
    entraAgrees: bool | None


class ComplianceUserPage(BaseModel):
    value: list[ComplianceUser]
    continuation: str | None


class UserQuery(BaseModel):
    """Query string of GET /api/manage/compliance/runs/{id}/users."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    method: Method | None = None
    reason: NotCapableReason | None = None
    pageSize: Annotated[int, Field(ge=1, le=1000)] = 100
    continuation: Annotated[str | None, Field(max_length=400)] = None
    format: str | None = Field(None, pattern="^(json|csv)$")


class RunsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(None, pattern="^(json|csv)$")


_CSV = {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]},
        "description": "csv exports (so does Accept: text/csv)"}
OPERATIONS = [
    Operation("post", "manage/compliance/runs", "Start a compliance run", "compliance", "admin-write",
              request=ComplianceRunRequest, responses={202: ComplianceRunAccepted}, extra_errors=(409,),
              description="Queues a sweep of every user in scope: enabled, registered, capable, reconfirmation, "
                          "methods, Entra's own report when the tenant has P1/P2, and reminder mails to users who "
                          "are not registered or overdue (at most once per SSPR_REGISTRATION_REMINDER_DAYS). "
                          "`Location` names the run. While a run is queued or running: 409 with `runningRunId`. "
                          "The body may be left out."),
    Operation("get", "manage/compliance/runs", "Compliance run history with totals", "compliance", "admin-read",
              responses={200: ComplianceRunList}, parameters=[_CSV]),
    Operation("get", "manage/compliance/runs/{id}", "One compliance run: progress, counts, top reasons", "compliance",
              "admin-read", responses={200: ComplianceRunDocument}, extra_errors=(404,)),
    Operation("get", "manage/compliance/runs/{id}/users", "A compliance run's per-user rows", "compliance",
              "admin-read", responses={200: ComplianceUserPage}, extra_errors=(404,), parameters=[
                  {"name": "status", "in": "query", "schema": {"type": "string", "enum": [s.value for s in Status]}},
                  {"name": "method", "in": "query", "schema": {"type": "string", "enum": [m.value for m in Method]}},
                  {"name": "reason", "in": "query",
                   "schema": {"type": "string", "enum": [r.value for r in NotCapableReason]}},
                  {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                  {"name": "continuation", "in": "query", "schema": {"type": "string"}},
                  {**_CSV, "description": f"csv exports (so does Accept: text/csv), {CSV_PAGE_ROWS:,} rows per "
                                          "response; when more follow, `Link: <url>; rel=\"next\"` and "
                                          "`X-Continuation` name the next page"},
              ]),
]


def _summary(run: Run) -> dict[str, Any]:
    t = run.tally
    return ComplianceRunSummary(
        id=run.id, state=run.state.value, trigger=run.trigger, requestedBy=run.requested_by,
        createdAt=run.created_at, startedAt=run.started_at, completedAt=run.completed_at, users=t.users,
        capable=t.capable, notRegistered=t.by_status.get(Status.NOT_REGISTERED.value, 0),
        reconfirmOverdue=t.by_status.get(Status.RECONFIRM_OVERDUE.value, 0),
        notEnabled=t.by_status.get(Status.NOT_ENABLED.value, 0), reconfirmDue=t.reconfirm_due,
        remindersSent=t.reminders, entraComparison=run.entra.value, entraReason=run.entra_reason,
        entraDisagree=t.entra_disagree, errors=list(run.errors), rowsPurged=run.rows_purged,
    ).model_dump(mode="json")


def _document(progress: RunProgress) -> dict[str, Any]:
    run, t = progress.run, progress.run.tally
    return ComplianceRunDocument(
        **_summary(run), shardsDone=progress.shards_done, shardsTotal=run.shards_total,
        usersProcessed=max(progress.users_processed, t.users), byStatus={s.value: t.by_status.get(s.value, 0)
                                                                         for s in Status},
        byMethod=dict(sorted(t.by_method.items())),
        topReasons=[{"reason": r, "users": n} for r, n in t.top_reasons()], tableTransactions=run.transactions,
    ).model_dump(mode="json")


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def _query(model: type[BaseModel], req: func.HttpRequest) -> Any:
    try:
        return model.model_validate(dict(req.params))
    except ValidationError as exc:
        raise InvalidRequest(api.field_errors(exc)) from None


def _run_id(req: func.HttpRequest) -> str:
    run_id = req.route_params.get("id", "")
    if not is_guid(run_id):
        raise InvalidRequest([FieldError("id", "must be the GUID of a compliance run")])
    return run_id.lower()


@bp.route(route="manage/compliance/runs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def start_compliance_run(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, ComplianceRunRequest) if req.get_body().strip() else ComplianceRunRequest()
    run = await composition.root.compliance.start("manual", principal.actor(), api.client_ip(req), body.sendReminders)
    return api.json_response({"id": run.id, "state": run.state.value}, status=202,
                             headers={"Location": f"/api/manage/compliance/runs/{run.id}"})


@bp.route(route="manage/compliance/runs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_compliance_runs(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    q = _query(RunsQuery, req)
    runs = [_summary(r) for r in await composition.root.compliance.history(HISTORY)]
    if q.format == "csv" or (q.format is None and api.wants_csv(req)):
        return api.csv_response(RUN_CSV_COLUMNS, runs, "sspr-compliance-runs.csv")
    return api.json_response({"value": runs})


@bp.route(route="manage/compliance/runs/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def read_compliance_run(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    return api.json_response(_document(await composition.root.compliance.status(_run_id(req))))


@bp.route(route="manage/compliance/runs/{id}/users", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_compliance_users(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    run_id = _run_id(req)
    q = _query(UserQuery, req)
    where = UserFilter(q.status, q.method, q.reason)
    if q.format == "csv" or (q.format is None and api.wants_csv(req)):
        rows, following = await composition.root.compliance.users(run_id, where, CSV_PAGE_ROWS, _continuation(run_id, q))
        response = api.csv_response(USER_CSV_COLUMNS, ({k: _csv_value(v) for k, v in r.items()} for r in rows),
                                    f"sspr-compliance-{run_id}.csv")
        if following:
            response.headers["X-Continuation"] = following
            response.headers["Link"] = f'<{_next_page_url(req, following)}>; rel="next"'
        return response
    rows, following = await composition.root.compliance.users(run_id, where, q.pageSize, _continuation(run_id, q))
    return api.json_response({"value": rows, "continuation": following})


def _continuation(run_id: str, q: UserQuery) -> dict[str, str] | None:
    if not q.continuation:
        return None
    token = decode_continuation(run_id, q.continuation)
    if token is None:
        raise InvalidRequest([FieldError("continuation", "is not a token of this run's rows")])
    return token


def _next_page_url(req: func.HttpRequest, continuation: str) -> str:
    params = {k: v for k, v in req.params.items() if k != "continuation"}
    return f"{urlsplit(req.url).path}?{urlencode({**params, 'continuation': continuation})}"


@bp.timer_trigger(schedule="%SSPR_COMPLIANCE_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def compliance_timer(timer: func.TimerRequest) -> None:
    try:
        run = await composition.root.compliance.start("timer", SYSTEM)
    except Conflict as exc:
        log.warning("scheduled compliance run skipped: %s", exc)
        return
    log.info("scheduled compliance run %s started", run.id)


@bp.queue_trigger(arg_name="msg", queue_name=queues.trigger_queue(queues.COMPLIANCE), connection="AzureWebJobsStorage")
async def compliance_worker(msg: func.QueueMessage) -> None:
    await run_shard(msg, ComplianceMessage, "compliance", composition.root.compliance.process)
