"""/api/helpdesk/...: helpdesk-verified recovery (docs/helpdesk.md). Every route but the two the caller's own page
calls (helpdesk/confirmations: a passkey confirmation the agent asked for) needs a person's token from a configured
client app with app role SSPR.Helpdesk (security.md D8); the rules live in shared/services/helpdesk/.

No route takes a phone number or an address: a code goes to a contact the user registered, named by its method
(VERIFY_THROUGH_REGISTERED). No answer holds a code, a link or a password.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

import azure.functions as func
from pydantic import StringConstraints

from functions import api, composition
from functions.inputs import Input
from functions.openapi_spec import Operation
from functions.passkeys import AssertionInput
from functions.responses import json_response
from shared.domain.audit import Actor
from shared.domain.clock import utc_now
from shared.domain.helpdesk import HelpdeskAction
from shared.domain.ids import GUID_PATTERN, is_guid
from shared.domain.policy import Method
from shared.errors import FieldError, InvalidRequest, NotFound
from shared.services.helpdesk.answers import (
    ActionDone,
    ApprovalDecided,
    ApprovalList,
    ApprovalPending,
    CallerPage,
    CallerView,
    CodeSent,
    VerificationView,
)
from shared.services.reset.answers import PasskeyRequest

bp = func.Blueprint()

TAG = "helpdesk"
VERIFICATION = "helpdesk/verifications/{verificationId}"
DIGEST_NAMESPACE = uuid.UUID("9a3c1f0e-5d2b-4e8a-b7c6-1d0e2f3a4b5c")  # one digest message per day


class StartInput(Input):
    """The caller, as found by the search: their object id. Nothing the caller says is taken."""

    userId: Annotated[str, StringConstraints(pattern=GUID_PATTERN)]


class CodeInput(Input):
    """Which of the user's registered contacts gets the code: named by its method, never typed."""

    method: Literal["email", "mobilePhone", "officePhone"]


class VerifyInput(Input):
    """The code the caller reads back: from the code sent, or their authenticator app's current code."""

    method: Literal["email", "mobilePhone", "officePhone", "authenticatorApp"]
    code: Annotated[str, StringConstraints(min_length=1, max_length=16)]


class ActionInput(Input):
    action: Literal["clear-block", "unlock", "reset-link", "access-pass"]


class DecisionInput(Input):
    decision: Literal["approve", "deny"]


OPERATIONS = [
    Operation("get", "helpdesk/users", "Find callers by name, UPN or mail (paged)", TAG, "helpdesk",
              responses={200: CallerPage},
              parameters=[{"name": "search", "in": "query", "required": True,
                           "schema": {"type": "string", "minLength": 2, "maxLength": 100}},
                          {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}]),
    Operation("get", "helpdesk/users/{userId}", "What a decision about one caller needs (contacts masked)", TAG,
              "helpdesk", responses={200: CallerView}, extra_errors=(404,)),
    Operation("post", "helpdesk/verifications", "Start verifying a caller", TAG, "helpdesk", request=StartInput,
              responses={201: VerificationView}, extra_errors=(404,)),
    Operation("get", VERIFICATION, "A verification of this agent: state, where codes can go, actions", TAG,
              "helpdesk", responses={200: VerificationView}, extra_errors=(404,)),
    Operation("post", f"{VERIFICATION}/codes", "Send a one-time code to one of the user's registered contacts", TAG,
              "helpdesk", request=CodeInput, responses={202: CodeSent}, extra_errors=(404, 409, 429)),
    Operation("post", f"{VERIFICATION}/verify", "The code the caller read back (or their app's current code)", TAG,
              "helpdesk", request=VerifyInput, responses={200: VerificationView}, extra_errors=(404, 409, 429)),
    Operation("post", f"{VERIFICATION}/actions", "Take an action for the verified caller (or ask for approval)",
              TAG, "helpdesk", request=ActionInput, responses={200: ActionDone, 202: ApprovalPending},
              extra_errors=(404, 409, 503),
              description="clear-block, unlock (on-premises AD), reset-link (one-time link to the user's registered "
                          "address), access-pass. A privileged caller's action waits for a second agent (202)."),
    Operation("post", f"{VERIFICATION}/passkey", "Ask the caller to confirm with a passkey on their own device", TAG,
              "helpdesk", responses={202: VerificationView}, extra_errors=(404, 409, 429),
              description="A mail to the user's registered address links to their own reset page, where they "
                          "confirm with one of their passkeys; the verification's state then reads verified."),
    Operation("post", "helpdesk/confirmations/{verificationId}/options",
              "The caller's own page: a passkey challenge for the confirmation the agent asked for", TAG,
              "anonymous", responses={200: PasskeyRequest}, extra_errors=(404, 429)),
    Operation("post", "helpdesk/confirmations/{verificationId}", "The caller's own page: confirm with a passkey",
              TAG, "anonymous", request=AssertionInput, responses={200: "confirmed"}, extra_errors=(404, 429),
              description="Wrong, cloned, removed or another user's passkeys, and a used or expired challenge, all "
                          "answer 400 passkey-not-accepted, counted on the verification (5 lock it)."),
    Operation("get", "helpdesk/approvals", "Actions on privileged callers waiting for a second agent", TAG,
              "helpdesk", responses={200: ApprovalList}),
    Operation("post", "helpdesk/approvals/{requestId}", "Approve or deny another agent's action (four eyes)", TAG,
              "helpdesk", request=DecisionInput, responses={200: ApprovalDecided}, extra_errors=(404, 409, 503)),
]


async def _agent(req: func.HttpRequest) -> Actor:
    principal = await api.authenticate_agent(req)
    return Actor(id=principal.object_id, display=principal.name or principal.upn or principal.object_id, kind="user")


def _guid(req: func.HttpRequest, name: str) -> str:
    value = req.route_params.get(name, "")
    if not is_guid(value):
        raise NotFound(f"{name} is not an id")
    return value.lower()


@bp.route(route="helpdesk/users", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_search(req: func.HttpRequest) -> func.HttpResponse:
    await _agent(req)
    text = (req.params.get("search") or "").strip()
    if not 2 <= len(text) <= 100 or any(ord(c) < 32 for c in text):
        raise InvalidRequest([FieldError.of("search", "search.length", "type 2 to 100 characters of a name, UPN or mail")])
    cursor = req.params.get("cursor") or None
    return json_response((await composition.root.helpdesk.search(text, cursor)).model_dump(mode="json"))


@bp.route(route="helpdesk/users/{userId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_caller(req: func.HttpRequest) -> func.HttpResponse:
    await _agent(req)
    return json_response((await composition.root.helpdesk.caller(_guid(req, "userId"))).model_dump(mode="json"))


@bp.route(route="helpdesk/verifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_start(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    body = api.parse_json(req, StartInput)
    view = await composition.root.helpdesk.start(agent, body.userId.lower(), api.client_ip(req))
    return json_response(view.model_dump(mode="json"), status=201)


@bp.route(route=VERIFICATION, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_verification(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    view = await composition.root.helpdesk.status(agent, _guid(req, "verificationId"))
    return json_response(view.model_dump(mode="json"))


@bp.route(route=f"{VERIFICATION}/codes", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_code(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    body = api.parse_json(req, CodeInput)
    sent = await composition.root.helpdesk.send_code(agent, _guid(req, "verificationId"), Method(body.method),
                                                     api.client_ip(req))
    return json_response(sent.model_dump(mode="json"), status=202)


@bp.route(route=f"{VERIFICATION}/verify", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_verify(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    body = api.parse_json(req, VerifyInput)
    view = await composition.root.helpdesk.verify(agent, _guid(req, "verificationId"), Method(body.method),
                                                  body.code, api.client_ip(req))
    return json_response(view.model_dump(mode="json"))


@bp.route(route=f"{VERIFICATION}/actions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_action(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    body = api.parse_json(req, ActionInput)
    result = await composition.root.helpdesk.act(agent, _guid(req, "verificationId"), HelpdeskAction(body.action),
                                                 api.client_ip(req))
    waiting = isinstance(result, ApprovalPending) or (isinstance(result, ActionDone) and result.pending)
    return json_response(result.model_dump(mode="json"), status=202 if waiting else 200)


@bp.route(route=f"{VERIFICATION}/passkey", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_passkey(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    view = await composition.root.helpdesk.ask_passkey(agent, _guid(req, "verificationId"), api.client_ip(req))
    return json_response(view.model_dump(mode="json"), status=202)


@bp.route(route="helpdesk/confirmations/{verificationId}/options", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_confirmation_options(req: func.HttpRequest) -> func.HttpResponse:
    await composition.root.throttle.admit_flow_start(api.client_ip(req))  # anonymous: the reset's start budget
    request = await composition.root.helpdesk.passkey_options(_guid(req, "verificationId"))
    return json_response(request.model_dump(mode="json"))


@bp.route(route="helpdesk/confirmations/{verificationId}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_confirmation(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, AssertionInput)
    await composition.root.helpdesk.passkey_confirm(_guid(req, "verificationId"),
                                                    body.credential.model_dump(exclude_none=True), api.client_ip(req))
    return json_response({"confirmed": True})


@bp.route(route="helpdesk/approvals", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_approvals(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    return json_response((await composition.root.helpdesk.approvals(agent)).model_dump(mode="json"))


@bp.route(route="helpdesk/approvals/{requestId}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def helpdesk_decide(req: func.HttpRequest) -> func.HttpResponse:
    agent = await _agent(req)
    body = api.parse_json(req, DecisionInput)
    decided = await composition.root.helpdesk.decide(agent, _guid(req, "requestId"), body.decision == "approve",
                                                     api.client_ip(req))
    return json_response(decided.model_dump(mode="json"))


@bp.timer_trigger(schedule="%SSPR_HELPDESK_DIGEST_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def helpdesk_digest(timer: func.TimerRequest) -> None:
    """Once a day: yesterday's helpdesk activity to the Global Administrators (one message per day, mailed once)."""
    day = (utc_now() - timedelta(days=1)).date().isoformat()
    await composition.root.notification_queue.helpdesk_digest(day, str(uuid.uuid5(DIGEST_NAMESPACE, day)))

