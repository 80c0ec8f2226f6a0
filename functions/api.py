"""What every HTTP endpoint shares: error-to-problem mapping, token checks, body parsing, ETags, CSV.

Bodies are limited to 16 KiB, are read by `functions/json_body.py` (depth, number and duplicate-key limits), must
be one JSON object without control characters, and are validated by the endpoint's pydantic model; every
violation comes back at once, naming its field (security.md D5, D9).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from functions import composition
from functions.field_errors import field_error, field_text
from functions.json_body import load_json
from functions.responses import API_HEADERS, json_response, problem_response
from shared import i18n
from shared.domain.access import Access, Principal
from shared.domain.client_address import client_address
from shared.errors import (
    FieldError,
    Forbidden,
    InvalidRequest,
    PayloadTooLarge,
    PreconditionRequired,
    Problem,
    SsprError,
    Unauthenticated,
)

log = logging.getLogger("sspr.api")

MAX_BODY_BYTES = 16 * 1024
M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[func.HttpResponse]]

__all__ = [
    "authenticate",
    "authenticate_agent",
    "authenticate_user",
    "bearer_token",
    "client_ip",
    "csv_response",
    "endpoint",
    "field_errors",
    "if_match",
    "json_response",
    "parse_json",
    "problem_members",
    "problem_response",
    "request_language",
    "require_allowed_client",
    "wants_csv",
]


def endpoint(handler: Handler) -> Handler:
    """Wrap an async HTTP function: a raised SsprError becomes its problem response, anything else a generic 500."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await handler(req, *args, **kwargs)
        except SsprError as error:
            level = logging.ERROR if error.problem.status >= 500 else logging.INFO
            log.log(level, "%s %s -> %s: %s", req.method, _path(req), error.problem.status, error)
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if isinstance(error, Unauthenticated) else None
            members = problem_members(error, request_language(req))
            return problem_response(localised(error.problem, req), headers=headers, **members)
        except Exception:
            log.exception("%s %s -> 500", req.method, _path(req))
            return problem_response(localised(SsprError.problem, req))

    return wrapper


def problem_members(error: SsprError, language: str) -> dict[str, Any]:
    """The problem's members beyond RFC 9457's, each field error with its plain text in `language` (FieldProblem)."""
    members = error.problem_extensions()
    if isinstance(error, InvalidRequest):
        members["errors"] = [{**e.as_dict(), "text": field_text(e, language)} for e in error.errors]
    return members


def request_language(req: func.HttpRequest) -> str:
    """The caller's language: `?lang=sv|en` (the pages' switch), else their Accept-Language."""
    chosen = (req.params.get("lang") or "").lower()
    return chosen if chosen in i18n.LANGUAGES else i18n.choose_language(req.headers.get("Accept-Language"))


def localised(problem: Problem, req: func.HttpRequest) -> Problem:
    """The problem with its title in the caller's language (web/i18n/problems.<lang>.json, keyed by type)."""
    title = i18n.catalog("problems", request_language(req)).get(problem.type.rsplit(":", 1)[-1])
    return replace(problem, title=title) if title else problem


def _path(req: func.HttpRequest) -> str:
    return req.url.split("?", 1)[0]  # query strings may carry codes or keys: never logged


async def authenticate(req: func.HttpRequest, access: Access) -> Principal:
    """The caller's validated Entra token, holding an app role that grants `access` (401 / 403 otherwise).

    A user's token must have been requested by a configured client app (D8): an administrator's token that an
    unrelated app of the tenant obtained must not read or change anything, so Conditional Access on the pages app
    also guards this API. App-only tokens carry the app's own roles and are judged by those."""
    principal = await composition.root.tokens.principal(bearer_token(req))
    if not principal.is_app:
        require_allowed_client(principal)
    if not principal.may(access):
        raise Forbidden(f"principal {principal.object_id} lacks a role granting {access}")
    return principal


USER_SCOPE = "access_as_user"


async def authenticate_agent(req: func.HttpRequest) -> Principal:
    """A helpdesk agent: a person's delegated token from a configured client app, with app role SSPR.Helpdesk
    (security.md D8). An app-only token is never an agent: every helpdesk action names the person who took it."""
    principal = await authenticate(req, Access.HELPDESK)
    if principal.is_app or not principal.object_id:
        raise Forbidden(f"token of {principal.app_id} is not a person's: helpdesk actions name their agent")
    return principal


async def authenticate_user(req: func.HttpRequest) -> Principal:
    """The signed-in user's own delegated token (scope access_as_user); app-only tokens are refused (D2).

    The user is `principal.object_id`: an endpoint never takes a user id from the request, so nobody can touch
    another user's security info.
    """
    principal = await composition.root.tokens.principal(bearer_token(req))
    if principal.is_app or USER_SCOPE not in principal.scopes or not principal.object_id:
        raise Forbidden(f"token of {principal.app_id} is not a user's delegated token for this API")
    # Another app the user consented to must not add a phone number that later resets their password.
    require_allowed_client(principal)
    return principal


def require_allowed_client(principal: Principal) -> None:
    """403 unless a user's token was requested by one of SSPR_ALLOWED_CLIENT_APP_IDS (the pages app by default)."""
    if principal.app_id.lower() not in composition.settings.allowed_client_app_ids:
        raise Forbidden(f"user token requested by {principal.app_id or 'no app'}, not by a configured client app")


def bearer_token(req: func.HttpRequest) -> str:
    """The token of an `Authorization: Bearer <token>` header (401 when there is none)."""
    header = req.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("no bearer token")
    return token.strip()


def parse_json(req: func.HttpRequest, model: type[M]) -> M:
    """The body as `model`, or 413 / 400 with every field error listed."""
    declared = req.headers.get("Content-Length") or ""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"declared body of {declared} bytes")
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body of {len(body)} bytes")
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest([FieldError.of("body", "body.notObject", "must be a JSON object")])
    control = list(_control_character_fields(data, ""))
    if control:
        raise InvalidRequest([FieldError.of(path or "body", "text.controlCharacters", "must not contain control characters")
                              for path in control])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None


def parse_query(req: func.HttpRequest, model: type[M]) -> M:
    """The query string as `model`, or 400 with every field error listed."""
    try:
        return model.model_validate(dict(req.params))
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None


def field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic's errors as FieldErrors with JSON paths (`answers[2].answer`), never echoing the input."""
    return [field_error(e) for e in error.errors(include_url=False, include_input=False)]


def _control_character_fields(value: Any, path: str) -> Iterable[str]:
    if isinstance(value, str):
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if any(unicodedata.category(ch) == "Cc" for ch in str(key)):
                # The key itself goes into the answer and the log: show it escaped, never raw (E3).
                yield f"{path}.{json.dumps(key)}" if path else json.dumps(key)
                continue
            child = f"{path}.{key}" if path else str(key)
            yield from _control_character_fields(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_character_fields(item, f"{path}[{index}]")


def if_match(req: func.HttpRequest) -> str:
    """The If-Match ETag a change must name (428 when missing)."""
    value = (req.headers.get("If-Match") or "").strip()
    if not value:
        raise PreconditionRequired("If-Match missing")
    return value


def client_ip(req: func.HttpRequest) -> str | None:
    """The caller's IP address: the X-Forwarded-For entry SSPR_TRUSTED_PROXY_HOPS hops left of the one Azure's
    front end appended (the last), folded to one spelling (`shared/domain/client_address.py`, security.md G6).

    Entries further left came from the caller and can be forged: trusting them would let anyone dodge the per-IP
    budgets or fake the audit's client IP."""
    return client_address(req.headers.get("X-Forwarded-For"), composition.settings.trusted_proxy_hops)


def wants_csv(req: func.HttpRequest) -> bool:
    return req.params.get("format") == "csv" or "text/csv" in (req.headers.get("Accept") or "")


_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting like a formula would run in Excel (CSV injection): make it text.
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def csv_response(columns: list[str], rows: Iterable[Mapping[str, Any]], filename: str) -> func.HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return func.HttpResponse(
        buffer.getvalue(),
        status_code=200,
        mimetype="text/csv",
        charset="utf-8",
        headers={**API_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )
