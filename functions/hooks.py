"""POST /api/hooks/token-issuance-start: Entra's OnTokenIssuanceStart custom claims about SSPR registration.

Only the Entra authentication events service may call it (security.md D3): a token of this tenant for this API,
requested by app 99045fe1-... (`azp`, or `appid` in v1 tokens). Bad token -> 401; a body that is not a JSON object
-> 400; over 16 KiB -> 413; all as application/json, the one content type Entra reads. Everything else answers 200
with the claims, or with no claims when our side cannot tell (F7): a payload without the fields we use, signing
keys or storage slower than the deadline, any fault of ours. The user's sign-in never fails because of us.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import composition
from functions.api import bearer_token, field_errors, problem_members
from functions.json_body import load_json
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.domain.ids import GUID_PATTERN
from shared.domain.signin import MAX_RESPONSE_BYTES, token_issuance_start_response
from shared.errors import FieldError, InvalidRequest, PayloadTooLarge, SsprError, Unauthenticated
from shared.services.signin import HOOK_DEADLINE_SECONDS

log = logging.getLogger("sspr.hooks")

AUTHENTICATION_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
MAX_BODY_BYTES = 16 * 1024  # Entra's payload is about 2 KB


class _EntraShape(BaseModel):
    # Entra adds fields over time and guests arrive with fewer: unknown fields are ignored, so a new field can
    # never fail a sign-in. Only what we use is required and checked.
    model_config = ConfigDict(extra="ignore", frozen=True)


class CalloutUser(_EntraShape):
    id: Annotated[str, Field(pattern=GUID_PATTERN)]
    userType: str | None = None


class AuthenticationContext(_EntraShape):
    user: CalloutUser


class CalloutData(_EntraShape):
    authenticationContext: AuthenticationContext


class TokenIssuanceStartRequest(_EntraShape):
    """Entra's OnTokenIssuanceStart callout (contracts.md section 3); fields we do not use may be missing."""

    type: Literal["microsoft.graph.authenticationEvent.tokenIssuanceStart"]
    data: CalloutData


class ProvideClaimsForToken(BaseModel):
    odata_type: Literal["microsoft.graph.tokenIssuanceStart.provideClaimsForToken"] = Field(alias="@odata.type")
    claims: dict[str, str]


class TokenIssuanceStartResponseData(BaseModel):
    odata_type: Literal["microsoft.graph.onTokenIssuanceStartResponseData"] = Field(alias="@odata.type")
    actions: list[ProvideClaimsForToken]


class TokenIssuanceStartResponse(BaseModel):
    """Claims for the token: ssprRegistrationRequired, ssprRegistrationSkippable, ssprRegistrationUrl,
    ssprRegistrationSkipUntil (strings; none at all when the service cannot tell)."""

    data: TokenIssuanceStartResponseData


OPERATIONS = [
    Operation(
        "post", "hooks/token-issuance-start", "Entra OnTokenIssuanceStart: SSPR registration claims", "sign-in",
        "authentication-events", request=TokenIssuanceStartRequest, responses={200: TokenIssuanceStartResponse},
        extra_errors=(413,),
        description="Called by Entra during token issuance. Reads only Table Storage; a storage fault answers 200 "
                    "with no claims rather than failing the sign-in.",
    ),
]

bp = func.Blueprint()


@bp.route(route="hooks/token-issuance-start", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def token_issuance_start(req: func.HttpRequest) -> func.HttpResponse:
    # ANONYMOUS at the Functions level: Entra sends no function key; its token is the gate (D3).
    declared = _declared_length(req)
    if declared is not None and declared > MAX_BODY_BYTES:
        return _error(PayloadTooLarge(f"body of {declared} bytes declared"))
    try:
        # Entra fails the sign-in after its timeout (1000 ms by default): whatever is slow on our side (signing
        # keys, storage), answer "no claims" in time instead.
        async with asyncio.timeout(HOOK_DEADLINE_SECONDS):
            return await _answer(req)
    except TimeoutError:
        log.error("token issuance hook: no answer within %.0f ms (signing keys or storage slow); answering with "
                  "no claims", HOOK_DEADLINE_SECONDS * 1000)
        return _claims_response({})


async def _answer(req: func.HttpRequest) -> func.HttpResponse:
    try:
        await _authenticate_authentication_events(req)
    except Unauthenticated as error:
        log.info("token issuance hook -> 401: %s", error)
        return _error(error, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    except Exception as exc:  # noqa: BLE001 - keys unavailable or a bug: an empty answer reveals nothing (F7)
        log.error("token issuance hook: caller not checked (%s: %s); answering with no claims", type(exc).__name__, exc)
        return _claims_response({})
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:  # a chunked body declares no length
        return _error(PayloadTooLarge(f"body of {len(body)} bytes"))
    try:
        document = load_json(body)
    except InvalidRequest as invalid:  # not JSON, not UTF-8, nested too deep, an oversized number
        log.info("token issuance hook -> 400: %s", invalid)
        return _error(invalid)
    if not isinstance(document, dict):
        return _bad_body("must be a JSON object")
    try:
        event = TokenIssuanceStartRequest.model_validate(document)
    except ValidationError as exc:
        # Entra's payload, but not as we know it (a field missing, another event type): failing it would fail
        # the user's sign-in, so answer with no claims and leave the details to the log.
        fields = "; ".join(f"{e.field} {e.message}" for e in field_errors(exc))
        log.error("token issuance hook: payload not understood (%s); answering with no claims", fields)
        return _claims_response({})
    claims = await composition.root.signin_hook.claims_for(event.data.authenticationContext.user.id.lower())
    return _claims_response(claims)


async def _authenticate_authentication_events(req: func.HttpRequest) -> None:
    await composition.root.authenticate_calling_app(bearer_token(req), AUTHENTICATION_EVENTS_APP_ID)


def _declared_length(req: func.HttpRequest) -> int | None:
    """The Content-Length the caller declared, so an oversized body is refused before it is read."""
    try:
        return int(req.headers.get("Content-Length") or "")
    except ValueError:
        return None


def _bad_body(message: str) -> func.HttpResponse:
    invalid = InvalidRequest([FieldError.of("body", "body.invalid", message)])
    log.info("token issuance hook -> 400: %s", invalid)
    return _error(invalid)


def _claims_response(claims: dict[str, str]) -> func.HttpResponse:
    response = json_response(token_issuance_start_response(claims))
    if len(response.get_body()) > MAX_RESPONSE_BYTES:  # only a very long SSPR_PUBLIC_BASE_URL could do this
        log.error("token issuance hook: claims over %d bytes; answering with no claims", MAX_RESPONSE_BYTES)
        return json_response(token_issuance_start_response({}))
    return response


def _error(error: SsprError, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """The problem as every route words it (field errors with their plain text); Entra reads English."""
    problem = error.problem
    body = {"type": problem.type, "title": problem.title, "status": problem.status, **problem_members(error, "en")}
    return json_response(body, status=problem.status, headers=headers)
