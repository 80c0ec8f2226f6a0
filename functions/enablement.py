"""Enablement: POST/GET /api/manage/enablement for admins, and the worker of queue `sspr-enablement`.

The policy is the one source of truth of the scope (shared/services/policy.py): POST {"scope","groupId"} writes
both into the policy (audited as the policy change it is) and starts a run for it. Guests follow the policy's
`includeGuests`; the request body does not carry it (an `includeGuests` member is refused as an unknown field):
change it with PUT /api/manage/policy, which starts a run too. A new request while a run is queued or running is
refused with 409 naming it (`runningRequestId`) and saves nothing; a run with no progress for 15 minutes counts as
stalled and no longer blocks.
"""

from datetime import datetime
from typing import Annotated, Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from functions import api, composition
from functions.openapi_spec import Operation
from functions.shard_worker import run_shard
from shared import queues
from shared.domain.access import Access
from shared.domain.clock import utc_now
from shared.domain.enablement import PARTITION_BUCKETS, EnablementMessage, Run, progress
from shared.domain.ids import GUID_PATTERN, is_guid
from shared.domain.policy import GROUP_ONLY_WHEN_SELECTED, GROUP_REQUIRED_WHEN_SELECTED, Scope
from shared.errors import FieldError, InvalidRequest

bp = func.Blueprint()



class EnablementRequest(BaseModel):
    """Enable SSPR for every enabled member (all), the members of one group, nested included (selected), or nobody;
    saved as the policy's scope. Guests follow the policy's `includeGuests`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    scope: Literal["all", "selected", "none"]
    groupId: Annotated[str | None, Field(pattern=GUID_PATTERN, max_length=36, validate_default=True)] = None

    @field_validator("groupId")
    @classmethod
    def _group_iff_selected(cls, value: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope == "selected" and value is None:
            raise GROUP_REQUIRED_WHEN_SELECTED.violated()
        if scope in ("all", "none") and value is not None:
            raise GROUP_ONLY_WHEN_SELECTED.violated()
        return value


class EnablementAccepted(BaseModel):
    """The request is queued; follow `Location` for its progress. `policyETag` is the policy's version now."""

    id: str
    state: str
    policyETag: str


class EnablementRunDocument(BaseModel):
    """An enablement run and its progress."""

    id: str
    state: Literal["queued", "running", "completed", "failed"]
    scope: Literal["all", "selected", "none"]
    groupId: str | None
    includeGuests: bool
    requestedBy: str
    createdAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None
    phase: Literal["waiting", "checking", "finishing", "done", "failed"] = Field(
        description="checking the directory's users, then finishing: removing the rows of users who left the scope")
    sweepsDone: int = Field(description="finishing: partitions tidied up so far")
    sweepsTotal: int
    usersProcessed: int = Field(description="directory users examined so far")
    usersTotal: int | None = Field(description="directory users to examine (Graph $count); null until known")
    percent: float | None
    rate: float | None = Field(description="users examined per second")
    etaSeconds: float | None
    inScope: int = Field(description="users found in scope: their rows are written")
    added: int | None = Field(description="users newly enabled by this run; null until completed or when unknown")
    removed: int = Field(description="rows of users who left the scope, removed")
    pagesDone: int
    tableTransactions: int
    errors: list[str]


class EnablementRunList(BaseModel):
    """The latest enablement runs, newest first."""

    value: list[EnablementRunDocument]


OPERATIONS = [
    Operation(
        "post", "manage/enablement", "Enable SSPR for all users, one group, or nobody", "enablement", "admin-write",
        request=EnablementRequest, responses={202: EnablementAccepted}, extra_errors=(409,),
        description="Saves `scope` and `groupId` as the policy's (the policy is the one source of truth of the "
                    "scope; the change is audited as a policy update with old and new values) and queues a run that "
                    "materialises one row per user in scope. `Location` names the run. A request while another run "
                    "is queued or running is refused with 409 and `runningRequestId`, and nothing is saved (a run "
                    "without progress for 15 minutes no longer blocks). A `groupId` that is not a GUID, or names no "
                    "group in the directory, is a 400 naming `groupId`, and nothing is saved. Guests are included "
                    "as the policy's `includeGuests` says; the body does not take it (change it with PUT "
                    "/api/manage/policy).",
    ),
    Operation("get", "manage/enablement", "The latest enablement runs", "enablement", "admin-read",
              responses={200: EnablementRunList}),
    Operation("get", "manage/enablement/{id}", "One enablement run and its progress", "enablement", "admin-read",
              responses={200: EnablementRunDocument}, extra_errors=(404,)),
]


def _document(run: Run) -> dict[str, object]:
    now = utc_now()
    p = progress(run, now)
    return EnablementRunDocument(
        id=run.id, state=run.state.value, scope=run.scope.value, groupId=run.group_id,
        includeGuests=run.include_guests, requestedBy=run.requested_by, createdAt=run.created_at,
        startedAt=run.started_at, completedAt=run.completed_at, phase=p.phase, sweepsDone=run.sweeps_done,
        sweepsTotal=PARTITION_BUCKETS, usersProcessed=run.users_processed,
        usersTotal=run.users_total, percent=p.percent, rate=p.rate, etaSeconds=p.eta_seconds, inScope=run.in_scope,
        added=run.added, removed=run.removed, pagesDone=run.pages_done, tableTransactions=run.transactions,
        errors=list(run.errors),
    ).model_dump(mode="json")


@bp.route(route="manage/enablement", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def request_enablement(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, EnablementRequest)
    saved = await composition.root.policy.apply_scope(Scope(body.scope), body.groupId, principal.actor(),
                                                   api.client_ip(req))
    run = saved.run
    if run is None:  # apply_scope always starts a run for the scope it saved
        raise RuntimeError("the scope was saved without an enablement run")
    return api.json_response({"id": run.id, "state": run.state.value, "policyETag": saved.etag},
                             status=202, headers={"Location": f"/api/manage/enablement/{run.id}"})


@bp.route(route="manage/enablement", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def list_enablement(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    runs = await composition.root.enablement.latest(20)
    return api.json_response({"value": [_document(r) for r in runs]})


@bp.route(route="manage/enablement/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def read_enablement(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    run_id = req.route_params.get("id", "")
    if not is_guid(run_id):
        raise InvalidRequest([FieldError.of("id", "id.run", "must be the GUID of an enablement request")])
    return api.json_response(_document(await composition.root.enablement.status(run_id)))


@bp.queue_trigger(arg_name="msg", queue_name=queues.trigger_queue(queues.ENABLEMENT), connection="AzureWebJobsStorage")
async def enablement_worker(msg: func.QueueMessage) -> None:
    await run_shard(msg, EnablementMessage, "enablement", composition.root.enablement.process)
