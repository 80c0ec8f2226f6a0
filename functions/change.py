"""/api/change/...: the anonymous self-service change of a synced user's password in on-premises AD (the change page,
docs/reset-api.md). The gates are proof-of-work on every try, the budgets and pauses of shared/domain/
password_change.py, and one answer at one deadline for every wrong try; the rules live in shared/services/change/."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import StringConstraints

from functions import api, composition
from functions.inputs import Input
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.services.change.answers import ChangeDone, ChangeStarted, ChangeWaiting
from shared.services.reset.answers import PasswordCheck

bp = func.Blueprint()

TAG = "change"
SECRET_HEADER = "X-Change-Secret"

Password = Annotated[str, StringConstraints(min_length=1, max_length=512)]
UserName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChangeInput(Input):
    """The user name, the current password and the new one (each exactly as typed: never trimmed, B3), and the
    solved proof-of-work (a new one for every try)."""

    username: UserName
    currentPassword: Password
    newPassword: Password
    altcha: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class CheckInput(Input):
    """The new password and the user name it is for (the name's own words count against it, B2)."""

    username: Annotated[str, StringConstraints(max_length=256)] = ""
    password: Password


OPERATIONS = [
    Operation("get", "change/pow", "A proof-of-work challenge (ALTCHA v1) for one change try", TAG, "anonymous",
              responses={200: "ALTCHA challenge: algorithm, challenge, maxnumber, salt, signature"}),
    Operation("post", "change/password/check", "Check a new password against Entra's rules (no lookup, no change)",
              TAG, "anonymous", request=CheckInput, responses={200: PasswordCheck}),
    Operation("post", "change", "Change a synced user's password in on-premises AD with the current one", TAG,
              "anonymous", request=ChangeInput, responses={200: ChangeDone, 202: ChangeStarted},
              extra_errors=(403, 409, 422),
              description="Every answer leaves at SSPR_CHANGE_DEADLINE_MS from the request's start. 400 "
                          "change-not-accepted is the one answer for a wrong user name or current password, a cloud "
                          "account or one this service does not manage; 429 change-paused after too many wrong tries "
                          "for the name from this network; 202 while AD's verdict is not in (ask GET change/requests/{changeId})."),
    Operation("get", "change/requests/{changeId}", "Where a pending change stands", TAG, "anonymous",
              responses={200: ChangeDone, 202: ChangeWaiting}, extra_errors=(404, 422),
              parameters=[{"name": "changeId", "in": "path", "required": True, "schema": {"type": "string"}},
                          {"name": SECRET_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}]),
]


@bp.route(route="change/pow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def change_pow(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(composition.root.password_change.proof_of_work())


@bp.route(route="change/password/check", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def change_password_check(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, CheckInput)
    check = await composition.root.password_change.check_password(body.username, body.password,
                                                                  api.request_language(req), api.client_ip(req))
    return json_response(check.model_dump(mode="json"))


@bp.route(route="change", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def change_password(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, ChangeInput)
    answer = await composition.root.password_change.change(body.username, body.currentPassword, body.newPassword,
                                                           body.altcha, api.request_language(req), api.client_ip(req))
    return _answer(answer)


@bp.route(route="change/requests/{changeId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def change_status(req: func.HttpRequest) -> func.HttpResponse:
    secret = (req.headers.get(SECRET_HEADER) or "").strip()
    return _answer(await composition.root.password_change.status(req.route_params["changeId"], secret,
                                                                 api.request_language(req)))


def _answer(answer: ChangeDone | ChangeStarted | ChangeWaiting) -> func.HttpResponse:
    """200 once AD took the new password; 202 while its verdict is not in (Retry-After)."""
    if isinstance(answer, ChangeStarted | ChangeWaiting):
        return json_response(answer.model_dump(mode="json"), status=202,
                             headers={"Retry-After": str(answer.retryAfterSeconds)})
    return json_response(answer.model_dump(mode="json"))
