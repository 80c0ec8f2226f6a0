"""What the admin endpoints of every report-keeping run share (compliance, password expiry): their query strings,
the start's 202, the history and the per-user pages as JSON or CSV (a next page's link with each CSV page), and
the daily timer's start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import api
from shared.domain.compliance_report import CSV_PAGE_ROWS, decode_continuation
from shared.domain.runs import ReportedRun, RunState
from shared.errors import Conflict, FieldError, InvalidRequest

HISTORY = 30  # runs the history lists

CSV_PARAMETER = {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]},
                 "description": "csv exports (so does Accept: text/csv)"}
PAGE_PARAMETERS = [
    {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "continuation", "in": "query", "schema": {"type": "string"}},
    {**CSV_PARAMETER, "description": f"csv exports (so does Accept: text/csv), {CSV_PAGE_ROWS:,} rows per "
                                     "response; when more follow, `Link: <url>; rel=\"next\"` and "
                                     "`X-Continuation` name the next page"},
]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sendReminders: bool = True


class RunAccepted(BaseModel):
    id: str
    state: str


class RunSummary(BaseModel):
    """Who started a run, when, and where it is; each job's summary adds its totals."""

    id: str
    state: Literal["queued", "running", "completed", "failed"]
    trigger: Literal["manual", "timer"]
    requestedBy: str
    createdAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None


class RunsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(None, pattern="^(json|csv)$")


class PageQuery(RunsQuery):
    """The paging part of a per-user query string; each job adds its filters."""

    pageSize: Annotated[int, Field(ge=1, le=1000)] = 100
    continuation: Annotated[str | None, Field(max_length=400)] = None


class StartedRun(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def state(self) -> RunState: ...


Rows = tuple[list[dict[str, Any]], str | None]
R = TypeVar("R")


def summary_fields(run: ReportedRun) -> dict[str, Any]:
    """A run's `RunSummary` fields, and its `errors` and `rowsPurged`."""
    return {"id": run.id, "state": run.state.value, "trigger": run.trigger, "requestedBy": run.requested_by,
            "createdAt": run.created_at, "startedAt": run.started_at, "completedAt": run.completed_at,
            "errors": list(run.errors), "rowsPurged": run.rows_purged}


def query(model: type[BaseModel], req: func.HttpRequest) -> Any:
    """The request's query string as `model`, or 400 naming each field."""
    try:
        return model.model_validate(dict(req.params))
    except ValidationError as exc:
        raise InvalidRequest(api.field_errors(exc)) from None


def wants_csv(req: func.HttpRequest, q: RunsQuery) -> bool:
    return q.format == "csv" or (q.format is None and api.wants_csv(req))


def accepted(run: StartedRun, collection: str) -> func.HttpResponse:
    """202 for a started run, `Location` naming it under `collection` (its runs' path below /api)."""
    return api.json_response({"id": run.id, "state": run.state.value}, status=202,
                             headers={"Location": f"/api/{collection}/{run.id}"})


async def history_response(req: func.HttpRequest, read: Callable[[int], Awaitable[Sequence[R]]],
                           summary: Callable[[R], dict[str, Any]], columns: list[str],
                           filename: str) -> func.HttpResponse:
    """The newest HISTORY runs `read` returns as `summary` says, JSON `{"value": [...]}` or CSV when asked for."""
    q = query(RunsQuery, req)
    runs = [summary(r) for r in await read(HISTORY)]
    if wants_csv(req, q):
        return api.csv_response(columns, runs, filename)
    return api.json_response({"value": runs})


async def users_response(req: func.HttpRequest, run_id: str, q: PageQuery,
                         read: Callable[[int, dict[str, str] | None], Awaitable[Rows]], columns: Sequence[str],
                         filename: str) -> func.HttpResponse:
    """A page of the run's per-user rows that `read(page size, continuation)` returns: JSON with the next page's
    continuation, or CSV_PAGE_ROWS rows of CSV with the next page named in `X-Continuation` and `Link`."""
    continuation = _continuation(run_id, q)
    if wants_csv(req, q):
        rows, following = await read(CSV_PAGE_ROWS, continuation)
        response = api.csv_response(list(columns), ({k: _csv_value(v) for k, v in r.items()} for r in rows),
                                    filename)
        if following:
            response.headers["X-Continuation"] = following
            response.headers["Link"] = f'<{_next_page_url(req, following)}>; rel="next"'
        return response
    rows, following = await read(q.pageSize, continuation)
    return api.json_response({"value": rows, "continuation": following})


async def start_on_timer(start: Callable[[], Awaitable[StartedRun]], what: str, log: logging.Logger) -> None:
    """The daily timer's run (`start()`); skipped, with a warning, while one is going."""
    try:
        run = await start()
    except Conflict as exc:
        log.warning("scheduled %s run skipped: %s", what, exc)
        return
    log.info("scheduled %s run %s started", what, run.id)


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def _continuation(run_id: str, q: PageQuery) -> dict[str, str] | None:
    if not q.continuation:
        return None
    token = decode_continuation(run_id, q.continuation)
    if token is None:
        raise InvalidRequest([FieldError.of("continuation", "continuation.unknown", "is not a token of this run's rows")])
    return token


def _next_page_url(req: func.HttpRequest, continuation: str) -> str:
    params = {k: v for k, v in req.params.items() if k != "continuation"}
    return f"{urlsplit(req.url).path}?{urlencode({**params, 'continuation': continuation})}"
