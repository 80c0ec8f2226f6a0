"""Passkeys: the signed-in user registers and removes theirs (/api/me/security-info/passkeys), and a reset proves
possession with one (/api/reset/flows/{flowId}/passkey). The ceremonies' rules live in shared/services (methods/
passkey.py, registration/passkeys.py, reset/passkey.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import StringConstraints

from functions import api, composition
from functions.inputs import Guid, Input
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.domain.passkeys import MAX_NAME_LENGTH
from shared.services.registration.answers import PasskeyOptions, StatusInfo, Verified
from shared.services.reset.answers import FlowProgress, PasskeyRequest

bp = func.Blueprint()

Base64Url = Annotated[str, StringConstraints(max_length=8192, pattern=r"^[A-Za-z0-9_-]*={0,2}$")]
CredentialId = Annotated[str, StringConstraints(min_length=1, max_length=1400, pattern=r"^[A-Za-z0-9_-]+$")]


class AttestationResponse(Input):
    clientDataJSON: Base64Url
    attestationObject: Base64Url
    transports: list[Annotated[str, StringConstraints(max_length=32)]] | None = None


class AssertionResponse(Input):
    clientDataJSON: Base64Url
    authenticatorData: Base64Url
    signature: Base64Url
    userHandle: Base64Url | None = None


class _Credential(Input):
    id: CredentialId
    rawId: CredentialId
    type: Literal["public-key"]
    authenticatorAttachment: Literal["platform", "cross-platform"] | None = None
    clientExtensionResults: dict[str, Any] = {}  # noqa: RUF012  (pydantic copies a default per model)


class NewPasskeyCredential(_Credential):
    """What navigator.credentials.create made (PublicKeyCredential as JSON, binary fields base64url)."""

    response: AttestationResponse


class PasskeyAssertion(_Credential):
    """What navigator.credentials.get made (PublicKeyCredential as JSON, binary fields base64url)."""

    response: AssertionResponse


class NewPasskeyInput(Input):
    """The setup it answers, a name for the passkey (e.g. "Work laptop") and the new credential."""

    setupId: Guid
    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
    credential: NewPasskeyCredential


class AssertionInput(Input):
    credential: PasskeyAssertion


OPERATIONS = [
    Operation("post", "me/security-info/passkeys/options", "Start adding a passkey", "security info", "user",
              responses={201: PasskeyOptions}, extra_errors=(409, 429),
              description="Options for navigator.credentials.create (a discoverable credential, user verification"
                          " required); finish within 5 minutes. 409 passkeys-full at 10 passkeys."),
    Operation("post", "me/security-info/passkeys", "Add the passkey the browser made; the method is saved",
              "security info", "user", request=NewPasskeyInput, responses={200: Verified}, extra_errors=(409, 429),
              description="400 passkey-not-accepted when the ceremony does not hold (origin, RP id, challenge,"
                          " user verification); 409 challenge-closed for an unknown, used or expired setup."),
    Operation("delete", "me/security-info/passkeys/{id}", "Remove one passkey", "security info", "user",
              responses={200: StatusInfo}, extra_errors=(404, 409),
              parameters=[{"name": "confirm", "in": "query", "required": False, "schema": {"type": "boolean"},
                           "description": "Required (true) when removing the last passkey leaves too few methods."}]),
    Operation("post", "reset/flows/{flowId}/passkey/options", "A passkey challenge (the same for every user name)",
              "reset", "anonymous", responses={200: PasskeyRequest}, extra_errors=(403, 404, 409)),
    Operation("post", "reset/flows/{flowId}/passkey", "Prove possession with a passkey", "reset", "anonymous",
              request=AssertionInput, responses={200: FlowProgress}, extra_errors=(403, 404, 409, 429),
              description="Unknown, removed, cloned (sign counter going back) and other relying parties' passkeys,"
                          " and a used or expired challenge, all answer 400 passkey-not-accepted."),
]


def _secret(req: func.HttpRequest) -> str:
    return (req.headers.get("X-Flow-Secret") or "").strip()


@bp.route(route="me/security-info/passkeys/options", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def passkey_options(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    options = await composition.root.passkey_registration.begin(principal, api.client_ip(req))
    return api.json_response(options.model_dump(mode="json"), status=201)


@bp.route(route="me/security-info/passkeys", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def add_passkey(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    body = api.parse_json(req, NewPasskeyInput)
    verified = await composition.root.passkey_registration.finish(
        principal, body.setupId, body.name, body.credential.model_dump(exclude_none=True), api.client_ip(req))
    return api.json_response(verified.model_dump(mode="json"))


@bp.route(route="me/security-info/passkeys/{id}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def remove_passkey(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    confirm = (req.params.get("confirm") or "").lower() == "true"
    status = await composition.root.passkey_registration.remove(principal, req.route_params.get("id", ""), confirm,
                                                                api.client_ip(req))
    return api.json_response(status.model_dump(mode="json"))


@bp.route(route="reset/flows/{flowId}/passkey/options", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_passkey_options(req: func.HttpRequest) -> func.HttpResponse:
    request = await composition.root.reset_passkeys.options(req.route_params["flowId"], _secret(req))
    return json_response(request.model_dump(mode="json"))


@bp.route(route="reset/flows/{flowId}/passkey", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_passkey(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, AssertionInput)
    progress = await composition.root.reset_passkeys.verify(
        req.route_params["flowId"], _secret(req), body.credential.model_dump(exclude_none=True),
        api.request_language(req), api.client_ip(req))
    return json_response(progress.model_dump(mode="json"))
