"""Compliance runs: the daily timer, POST/GET /api/manage/compliance/runs for admins, and the queue worker.

Who can reset their password today, who cannot and why: a run judges every user in scope (the Enablement table),
compares with Entra's own report when the tenant has P1/P2, reminds who is not registered or overdue, and keeps
per-user rows to filter, page and export as CSV. One run at a time: a start while one runs is 409 naming it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import azure.functions as func
from pydantic import BaseModel, Field

from functions import api, composition
from functions.openapi_spec import Operation
from functions.run_reports import (
    CSV_PARAMETER,
    PAGE_PARAMETERS,
    PageQuery,
    RunAccepted,
    RunRequest,
    RunSummary,
    accepted,
    history_response,
    query,
    start_on_timer,
    summary_fields,
    users_response,
)
from functions.shard_worker import run_shard
from shared import queues
from shared.domain.access import Access
from shared.domain.audit import SYSTEM
from shared.domain.compliance import ComplianceMessage, NotCapableReason, Run, Status
from shared.domain.compliance_report import UserFilter
from shared.domain.ids import is_guid
from shared.domain.policy import Method
from shared.domain.recoveries import MAX_DAYS
from shared.errors import FieldError, InvalidRequest
from shared.services.recoveries import RecoveryCounts

if TYPE_CHECKING:
    from shared.services.compliance import RunProgress  # the run's service, not needed to register the routes

log = logging.getLogger("sspr.compliance")

bp = func.Blueprint()

RUN_CSV_COLUMNS = ["id", "state", "trigger", "createdAt", "completedAt", "users", "capable", "notRegistered",
                   "reconfirmOverdue", "notEnabled", "reconfirmDue", "remindersSent", "entraComparison",
                   "entraDisagree"]
USER_CSV_COLUMNS = ["userId", "displayName", "userPrincipalName", "status", "enabled", "registered", "capable", "reasons", "reconfirmation",
                    "reconfirmDueAt", "methods", "methodsRequired", "lastConfirmedAt", "isAdmin", "entraRegistered",
                    "entraCapable", "entraMethods", "entraAgrees"]


class ComplianceRunRequest(RunRequest):
    """Start a compliance run now; `sendReminders` false judges and reports without mailing anyone."""


class ComplianceRunAccepted(RunAccepted):
    """The compliance run a start queued (202)."""


class ComplianceRunSummary(RunSummary):
    """A run with its totals (the history lists these, so a trend can be drawn)."""

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
    displayName: str = Field(description="as the directory had it when the user's Enablement row was written")
    userPrincipalName: str
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


class UserQuery(PageQuery):
    """Query string of GET /api/manage/compliance/runs/{id}/users."""

    status: Status | None = None
    method: Method | None = None
    reason: NotCapableReason | None = None


OPERATIONS = [
    Operation("get", "manage/recoveries", "Recoveries per day: self-service beside helpdesk-assisted", "compliance",
              "admin-read", responses={200: RecoveryCounts},
              parameters=[{"name": "days", "in": "query", "required": False,
                           "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS, "default": 30}}]),
    Operation("post", "manage/compliance/runs", "Start a compliance run", "compliance", "admin-write",
              request=ComplianceRunRequest, responses={202: ComplianceRunAccepted}, extra_errors=(409,),
              description="Queues a sweep of every user in scope: enabled, registered, capable, reconfirmation, "
                          "methods, Entra's own report when the tenant has P1/P2, and reminder mails to users who "
                          "are not registered or overdue (at most once per SSPR_REGISTRATION_REMINDER_DAYS). "
                          "`Location` names the run. While a run is queued or running: 409 with `runningRunId`. "
                          "The body may be left out."),
    Operation("get", "manage/compliance/runs", "Compliance run history with totals", "compliance", "admin-read",
              responses={200: ComplianceRunList}, parameters=[CSV_PARAMETER]),
    Operation("get", "manage/compliance/runs/{id}", "One compliance run: progress, counts, top reasons", "compliance",
              "admin-read", responses={200: ComplianceRunDocument}, extra_errors=(404,)),
    Operation("get", "manage/compliance/runs/{id}/users", "A compliance run's per-user rows", "compliance",
              "admin-read", responses={200: ComplianceUserPage}, extra_errors=(404,), parameters=[
                  {"name": "status", "in": "query", "schema": {"type": "string", "enum": [s.value for s in Status]}},
                  {"name": "method", "in": "query", "schema": {"type": "string", "enum": [m.value for m in Method]}},
                  {"name": "reason", "in": "query",
                   "schema": {"type": "string", "enum": [r.value for r in NotCapableReason]}},
                  *PAGE_PARAMETERS,
              ]),
]


def _summary(run: Run) -> dict[str, Any]:
    t = run.tally
    return ComplianceRunSummary(
        **summary_fields(run), users=t.users, capable=t.capable, notRegistered=t.by_status.get(Status.NOT_REGISTERED.value, 0),
        reconfirmOverdue=t.by_status.get(Status.RECONFIRM_OVERDUE.value, 0),
        notEnabled=t.by_status.get(Status.NOT_ENABLED.value, 0), reconfirmDue=t.reconfirm_due,
        remindersSent=t.reminders, entraComparison=run.entra.value, entraReason=run.entra_reason,
        entraDisagree=t.entra_disagree,
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


def _run_id(req: func.HttpRequest) -> str:
    run_id = req.route_params.get("id", "")
    if not is_guid(run_id):
        raise InvalidRequest([FieldError.of("id", "id.run", "must be the GUID of a compliance run")])
    return run_id.lower()


@bp.route(route="manage/recoveries", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def recoveries(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    raw = req.params.get("days") or "30"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise InvalidRequest([FieldError.of("days", "days.range", f"must be a whole number from 1 to {MAX_DAYS}", max=MAX_DAYS)])
    return api.json_response((await composition.root.recoveries.counts(int(raw))).model_dump(mode="json"))


@bp.route(route="manage/compliance/runs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def start_compliance_run(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, ComplianceRunRequest) if req.get_body().strip() else ComplianceRunRequest()
    run = await composition.root.compliance.start("manual", principal.actor(), api.client_ip(req), body.sendReminders)
    return accepted(run, "manage/compliance/runs")


@bp.route(route="manage/compliance/runs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_compliance_runs(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    return await history_response(req, composition.root.compliance.history, _summary, RUN_CSV_COLUMNS,
                                  "sspr-compliance-runs.csv")


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
    q = query(UserQuery, req)
    where = UserFilter(q.status, q.method, q.reason)
    return await users_response(req, run_id, q, lambda size, token: composition.root.compliance.users(
        run_id, where, size, token), USER_CSV_COLUMNS, f"sspr-compliance-{run_id}.csv")


@bp.timer_trigger(schedule="%SSPR_COMPLIANCE_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def compliance_timer(timer: func.TimerRequest) -> None:
    await start_on_timer(lambda: composition.root.compliance.start("timer", SYSTEM), "compliance", log)


@bp.queue_trigger(arg_name="msg", queue_name=queues.trigger_queue(queues.COMPLIANCE), connection="AzureWebJobsStorage")
async def compliance_worker(msg: func.QueueMessage) -> None:
    await run_shard(msg, ComplianceMessage, "compliance", composition.root.compliance.process)
