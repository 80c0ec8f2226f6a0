"""/api/me/security-info: the signed-in user's own methods, status, code verification, removal, reconfirmation."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import StringConstraints

from functions import api, composition
from functions.inputs import Input
from functions.openapi_spec import Operation
from shared.domain.policy import Method
from shared.errors import FieldError, InvalidRequest
from shared.services.registration.answers import ChallengeStarted, SecurityInfoView, StatusInfo, Verified
from shared.services.registration.user import User

bp = func.Blueprint()

TAG = "security info"


class EmailInput(Input):
    """An alternate email address that will receive a code."""

    address: Annotated[str, StringConstraints(min_length=3, max_length=254)]


class PhoneInput(Input):
    """A phone number, in E.164 (+46701234567) or national form with `defaultRegion` (SE, US, ...)."""

    number: Annotated[str, StringConstraints(min_length=3, max_length=32)]
    defaultRegion: Annotated[str, StringConstraints(min_length=2, max_length=2)] | None = None


class CodeInput(Input):
    """The code that was sent."""

    code: Annotated[str, StringConstraints(min_length=6, max_length=10, pattern=r"^[0-9]+$")]


OPERATIONS = [
    Operation("get", "me/security-info", "My security info, registration status and the methods I may add", TAG,
              "user", responses={200: SecurityInfoView}),
    Operation("post", "me/security-info/email", "Add an alternate email: a code is mailed to it", TAG, "user",
              request=EmailInput, responses={202: ChallengeStarted}, extra_errors=(409, 429)),
    Operation("post", "me/security-info/mobilePhone", "Add a mobile phone: a code is sent by SMS", TAG, "user",
              request=PhoneInput, responses={202: ChallengeStarted}, extra_errors=(409, 429)),
    Operation("post", "me/security-info/officePhone", "Add an office phone: a code is read out in a call", TAG,
              "user", request=PhoneInput, responses={202: ChallengeStarted}, extra_errors=(409, 429),
              description="Refused (409 method-unavailable) when the configured phone provider cannot call."),
    Operation("post", "me/security-info/challenges/{id}/verify", "Verify the code; the method is saved", TAG,
              "user", request=CodeInput, responses={200: Verified}, extra_errors=(429,),
              description="Wrong, expired, used and unknown codes all answer 400 code-not-accepted; after 5 wrong"
                          " codes the challenge is locked (403 code-locked)."),
    Operation("post", "me/security-info/challenges/{id}/resend", "Send a new code (the previous one stops working)",
              TAG, "user", responses={202: ChallengeStarted}, extra_errors=(404, 409, 429)),
    Operation("delete", "me/security-info/{method}", "Remove a method", TAG, "user", responses={200: StatusInfo},
              parameters=[{"name": "confirm", "in": "query", "required": False, "schema": {"type": "boolean"},
                           "description": "Required (true) when the removal leaves fewer methods than required."}],
              extra_errors=(404, 409)),
    Operation("post", "me/security-info/reconfirm", "Confirm that my security info is still right", TAG, "user",
              responses={200: StatusInfo}, extra_errors=(409,)),
]


async def _user(req: func.HttpRequest) -> User:
    principal = await api.authenticate_user(req)
    return User(principal.object_id, principal.actor())


@bp.route(route="me/security-info", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def my_security_info(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    view = await composition.root.registration.overview(user)
    return api.json_response(view.model_dump(mode="json"))


@bp.route(route="me/security-info/email", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def add_email(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    body = api.parse_json(req, EmailInput)
    started = await composition.root.registration.start(user, Method.EMAIL, body.address, None, api.client_ip(req))
    return api.json_response(started.model_dump(mode="json"), status=202)


@bp.route(route="me/security-info/mobilePhone", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def add_mobile_phone(req: func.HttpRequest) -> func.HttpResponse:
    return await _add_phone(req, Method.MOBILE_PHONE)


@bp.route(route="me/security-info/officePhone", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def add_office_phone(req: func.HttpRequest) -> func.HttpResponse:
    return await _add_phone(req, Method.OFFICE_PHONE)


async def _add_phone(req: func.HttpRequest, method: Method) -> func.HttpResponse:
    user = await _user(req)
    body = api.parse_json(req, PhoneInput)
    started = await composition.root.registration.start(user, method, body.number, body.defaultRegion,
                                                     api.client_ip(req))
    return api.json_response(started.model_dump(mode="json"), status=202)


@bp.route(route="me/security-info/challenges/{id}/verify", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def verify_code(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    body = api.parse_json(req, CodeInput)
    verified = await composition.root.registration.verify(user, req.route_params.get("id", ""), body.code,
                                                       api.client_ip(req))
    return api.json_response(verified.model_dump(mode="json"))


@bp.route(route="me/security-info/challenges/{id}/resend", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def resend_code(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    started = await composition.root.registration.resend(user, req.route_params.get("id", ""), api.client_ip(req))
    return api.json_response(started.model_dump(mode="json"), status=202)


@bp.route(route="me/security-info/reconfirm", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reconfirm(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    status = await composition.root.registration.reconfirm(user, api.client_ip(req))
    return api.json_response(status.model_dump(mode="json"))


@bp.route(route="me/security-info/{method}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def remove_method(req: func.HttpRequest) -> func.HttpResponse:
    user = await _user(req)
    try:
        method = Method(req.route_params.get("method", ""))
    except ValueError:
        raise InvalidRequest([FieldError.of("method", "method.unknown",
                                            "is not a method: " + ", ".join(m.value for m in Method))]) from None
    confirm = (req.params.get("confirm") or "").lower() == "true"
    status = await composition.root.registration.remove(user, method, confirm, api.client_ip(req))
    return api.json_response(status.model_dump(mode="json"))
