"""Password expiry: the daily timer, /api/manage/password-expiry/runs for admins, and the queue worker.

Who expires when, and the staged reminders before it happens: a run judges every directory user, keeps one row per
user to filter ("expiring within 7 / 14 / 30 days"), page and export as CSV, and (when the policy's
expiryReminders.enabled) queues the reminders due. `latest` names the newest completed run wherever a run id goes.
One run at a time: a start while one runs is 409 naming it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

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
from shared.adapters.expiry_reminder_store import ExpiryFilter
from shared.domain.access import Access
from shared.domain.audit import SYSTEM
from shared.domain.expiry_reminders import WINDOWS, ExpiryReminderMessage, Run
from shared.domain.ids import is_guid
from shared.domain.password_expiry import ExpiryState
from shared.errors import FieldError, InvalidRequest

log = logging.getLogger("sspr.expiry")

bp = func.Blueprint()

LATEST = "latest"
RUN_CSV_COLUMNS = ["id", "state", "trigger", "createdAt", "completedAt", "users", "expiring", "expired", "within7",
                   "within14", "within30", "remindersSent"]
USER_CSV_COLUMNS = ["userId", "userPrincipalName", "state", "expiresAt", "daysLeft", "source", "synced",
                    "passwordChangedAt", "reminderStage"]


class ExpiryRunRequest(RunRequest):
    """Start a password expiry run now; `sendReminders` false judges and reports without reminding anyone (the
    policy's expiryReminders.enabled must be on as well for reminders to go out)."""


class ExpiryRunAccepted(RunAccepted):
    """The password expiry run a start queued (202)."""


class ExpiryRunSummary(RunSummary):
    """A run with its totals, as of the run's start (the history lists these)."""

    sendReminders: bool = Field(description="reminders were asked for and the policy's expiryReminders.enabled was on")
    users: int
    expiring: int
    expired: int
    within7: int = Field(description="passwords that expire within 7 days of the run")
    within14: int
    within30: int
    remindersSent: int
    remindersByStage: dict[str, int] = Field(description="reminders queued, by stage (days before expiry)")
    errors: list[str]
    rowsPurged: bool


class ExpiryRunDocument(ExpiryRunSummary):
    """One run: its progress, its users by state and the rules it judged by."""

    usersTotal: int | None
    pagesDone: int
    pageCount: int | None
    byState: dict[str, int]
    rules: dict[str, Any] = Field(description="each domain's validity, the synced-users switch, stages and sms")
    tableTransactions: int


class ExpiryRunList(BaseModel):
    value: list[ExpiryRunSummary]


class ExpiryUser(BaseModel):
    userId: str
    userPrincipalName: str
    state: str
    expiresAt: datetime | None
    daysLeft: int | None
    source: str | None
    synced: bool
    passwordChangedAt: datetime | None
    reminderStage: int | None = Field(description="the reminder stage this run queued for the user, if any")


class ExpiryUserPage(BaseModel):
    value: list[ExpiryUser]
    continuation: str | None


class UserQuery(PageQuery):
    """Query string of GET /api/manage/password-expiry/runs/{id}/users."""

    within: Literal["7", "14", "30"] | None = None
    state: ExpiryState | None = None


_ID = "a run's id, or `latest` for the newest completed run"
OPERATIONS = [
    Operation("post", "manage/password-expiry/runs", "Start a password expiry run", "password-expiry", "admin-write",
              request=ExpiryRunRequest, responses={202: ExpiryRunAccepted}, extra_errors=(409,),
              description="Queues a run over every directory user: when each password expires (domain validity, "
                          "lastPasswordChangeDateTime, DisablePasswordExpiration; synced users by the policy's "
                          "expiryReminders.cloudPolicyForSyncedUsers), and, when the policy's expiryReminders.enabled "
                          "is on, the reminder of the stage due (each stage at most once per password). While a run "
                          "is queued or running: 409 with `runningRunId`. The body may be left out."),
    Operation("get", "manage/password-expiry/runs", "Password expiry run history with totals", "password-expiry",
              "admin-read", responses={200: ExpiryRunList}, parameters=[CSV_PARAMETER]),
    Operation("get", "manage/password-expiry/runs/{id}", "One password expiry run: progress, totals, rules",
              "password-expiry", "admin-read", responses={200: ExpiryRunDocument}, extra_errors=(404,),
              description=f"`id`: {_ID}."),
    Operation("get", "manage/password-expiry/runs/{id}/users", "Who expires when, per user", "password-expiry",
              "admin-read", responses={200: ExpiryUserPage}, extra_errors=(404,), description=f"`id`: {_ID}.",
              parameters=[
                  {"name": "within", "in": "query", "schema": {"type": "string", "enum": [str(w) for w in WINDOWS]},
                   "description": "only passwords that expire within this many days of the run"},
                  {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in ExpiryState]}},
                  *PAGE_PARAMETERS,
              ]),
]


def _summary(run: Run) -> dict[str, Any]:
    t = run.tally
    return ExpiryRunSummary(
        **summary_fields(run), sendReminders=run.send_reminders, users=t.users,
        expiring=t.by_state.get(ExpiryState.EXPIRING.value, 0), expired=t.by_state.get(ExpiryState.EXPIRED.value, 0),
        within7=t.within.get("7", 0), within14=t.within.get("14", 0), within30=t.within.get("30", 0),
        remindersSent=t.reminders_sent,
        remindersByStage={str(s): t.reminders.get(str(s), 0) for s in run.rules.get("stages") or ()},
    ).model_dump(mode="json")


def _document(run: Run) -> dict[str, Any]:
    return ExpiryRunDocument(
        **_summary(run), usersTotal=run.users_total, pagesDone=run.pages_done, pageCount=run.page_count,
        byState={s.value: run.tally.by_state.get(s.value, 0) for s in ExpiryState}, rules=dict(run.rules),
        tableTransactions=run.transactions,
    ).model_dump(mode="json")


async def _run(req: func.HttpRequest) -> Run:
    run_id = req.route_params.get("id", "")
    if run_id == LATEST:
        return await composition.root.expiry_reminders.latest_completed()
    if not is_guid(run_id):
        raise InvalidRequest([FieldError.of("id", "id.run", f"must be the GUID of a password expiry run, or {LATEST}")])
    return await composition.root.expiry_reminders.status(run_id.lower())


@bp.route(route="manage/password-expiry/runs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def start_expiry_run(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, ExpiryRunRequest) if req.get_body().strip() else ExpiryRunRequest()
    run = await composition.root.expiry_reminders.start("manual", principal.actor(), api.client_ip(req),
                                                        body.sendReminders)
    return accepted(run, "manage/password-expiry/runs")


@bp.route(route="manage/password-expiry/runs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_expiry_runs(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    return await history_response(req, composition.root.expiry_reminders.history, _summary, RUN_CSV_COLUMNS,
                                  "sspr-password-expiry-runs.csv")


@bp.route(route="manage/password-expiry/runs/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def read_expiry_run(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    return api.json_response(_document(await _run(req)))


@bp.route(route="manage/password-expiry/runs/{id}/users", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_expiry_users(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    run = await _run(req)
    q = query(UserQuery, req)
    where = ExpiryFilter(q.state, int(q.within) if q.within else None)
    return await users_response(req, run.id, q, lambda size, token: composition.root.expiry_reminders.users(
        run.id, where, size, token), USER_CSV_COLUMNS, f"sspr-password-expiry-{run.id}.csv")


@bp.timer_trigger(schedule="%SSPR_EXPIRY_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def expiry_timer(timer: func.TimerRequest) -> None:
    await start_on_timer(lambda: composition.root.expiry_reminders.start("timer", SYSTEM), "password expiry", log)


@bp.queue_trigger(arg_name="msg", queue_name=queues.trigger_queue(queues.EXPIRY_REMINDERS),
                  connection="AzureWebJobsStorage")
async def expiry_worker(msg: func.QueueMessage) -> None:
    await run_shard(msg, ExpiryReminderMessage, "expiry reminders", composition.root.expiry_reminders.process)
