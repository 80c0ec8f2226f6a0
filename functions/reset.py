"""/api/reset/...: the anonymous self-service password reset (docs/reset-api.md). The gates are proof-of-work,
the flow's secret (header X-Flow-Secret) and the limits of security.md G1-G4; the rules live in
shared/services/reset/."""

from __future__ import annotations

from typing import Annotated, Literal

import azure.functions as func
from pydantic import Field, StringConstraints, model_validator

from functions import api, composition
from functions.inputs import Input
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.domain.policy import Method
from shared.errors import NotFound
from shared.services.reset.answers import (
    AccountUnlocked,
    ChangeWaiting,
    FlowProgress,
    FlowStarted,
    LinkOpened,
    PasswordCheck,
    ProofRequested,
    ResetDone,
    ResetQuestions,
)

bp = func.Blueprint()

TAG = "reset"
SECRET_HEADER = "X-Flow-Secret"
FLOW = "reset/flows/{flowId}"


class StartInput(Input):
    """Who is resetting (their user name, e.g. casey@contoso.com) and the solved proof-of-work."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    altcha: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


ContactMethod = Literal["email", "mobilePhone", "officePhone"]


class ProofInput(Input):
    """Email or phone: the full contact you registered (a code is sent if it matches). App: the code it shows."""

    method: Literal["email", "mobilePhone", "officePhone", "authenticatorApp"]
    contact: Annotated[str | None, StringConstraints(min_length=1, max_length=254)] = None
    defaultRegion: Annotated[str | None, StringConstraints(pattern=r"^[A-Za-z]{2}$")] = None
    code: Annotated[str | None, StringConstraints(min_length=1, max_length=16)] = None

    @model_validator(mode="after")
    def _one_kind(self) -> ProofInput:
        if self.method == "authenticatorApp":
            if self.code is None or self.contact is not None:
                raise ValueError("authenticatorApp takes `code` (the app's current code) and no contact")
        elif self.contact is None or self.code is not None:
            raise ValueError(f"{self.method} takes `contact` (what you registered); the code comes later")
        return self


class CodeInput(Input):
    code: Annotated[str, StringConstraints(min_length=1, max_length=16)]


class AnswersInput(Input):
    """question id -> answer, for exactly the questions this flow asked."""

    answers: Annotated[dict[Annotated[str, StringConstraints(max_length=80)],
                            Annotated[str, StringConstraints(max_length=200)]], Field(max_length=5)]


class LinkInput(Input):
    """The token of a helpdesk's one-time link, as the reset page read it from its URL fragment (#link=...)."""

    link: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PasswordInput(Input):
    """The new password, exactly as typed (never trimmed: it reaches the directory byte-exact, B3)."""

    password: Annotated[str, StringConstraints(min_length=1, max_length=512)]


OPERATIONS = [
    Operation("get", "reset/pow", "A proof-of-work challenge (ALTCHA v1) for starting a reset", TAG, "anonymous",
              responses={200: "ALTCHA challenge: algorithm, challenge, maxnumber, salt, signature"}),
    Operation("post", "reset/flows", "Start a reset for a user name", TAG, "anonymous", request=StartInput,
              responses={201: FlowStarted}, extra_errors=(403, 429),
              description="Answers the same for every user name (C1); the methods are the policy's."),
    Operation("post", "reset/links", "Open a reset with a helpdesk's one-time link (single use)", TAG, "anonymous",
              request=LinkInput, responses={201: LinkOpened}, extra_errors=(403, 404, 429),
              description="The link a helpdesk agent had sent to the user's registered address opens the user's "
                          "flow, ready for the new password; wrong, expired, used or replaced links are one 404."),
    Operation("post", f"{FLOW}/proofs", "Prove possession: a contact (a code is sent if it matches) or an app code",
              TAG, "anonymous", request=ProofInput, responses={202: ProofRequested, 200: FlowProgress},
              extra_errors=(403, 404, 409, 429)),
    Operation("post", f"{FLOW}/proofs/{{method}}/resend", "Send a new code for a method", TAG, "anonymous",
              responses={202: ProofRequested}, extra_errors=(403, 404, 429)),
    Operation("post", f"{FLOW}/proofs/{{method}}/code", "Verify the code sent for a method", TAG, "anonymous",
              request=CodeInput, responses={200: FlowProgress}, extra_errors=(403, 404, 409, 429)),
    Operation("get", f"{FLOW}/questions", "The security questions this flow asks (a second method only)", TAG,
              "anonymous", responses={200: ResetQuestions}, extra_errors=(403, 404, 409)),
    Operation("post", f"{FLOW}/questions", "Answer the security questions", TAG, "anonymous", request=AnswersInput,
              responses={200: FlowProgress}, extra_errors=(403, 404, 409, 429)),
    Operation("post", f"{FLOW}/password/check", "Check a new password against the rules (no change)", TAG,
              "anonymous", request=PasswordInput, responses={200: PasswordCheck}, extra_errors=(404, 409)),
    Operation("post", f"{FLOW}/password", "Set the new password; sessions are revoked and the user told", TAG,
              "anonymous", request=PasswordInput, responses={200: ResetDone, 202: ChangeWaiting},
              extra_errors=(403, 404, 409, 422, 503),
              description="202: the password went to on-premises AD and its verdict is not in yet; ask GET .../password."),
    Operation("get", f"{FLOW}/password", "Where the flow's password change (or unlock) stands", TAG, "anonymous",
              responses={200: ResetDone, 202: ChangeWaiting}, extra_errors=(403, 404, 409, 422, 503),
              description="200 with the reset's (or unlock's) answer once done; 202 while on-premises AD works on it."),
    Operation("post", f"{FLOW}/unlock", "Unlock the account without a new password (on-premises AD)", TAG,
              "anonymous", responses={200: AccountUnlocked, 202: ChangeWaiting}, extra_errors=(403, 404, 409, 503),
              description="Offered when FlowProgress.unlock is true: the policy allows it and the user's password "
                          "lives in on-premises AD."),
]


def _secret(req: func.HttpRequest) -> str:
    return (req.headers.get(SECRET_HEADER) or "").strip()


def _method(req: func.HttpRequest) -> Method:
    try:
        return Method(req.route_params.get("method") or "")
    except ValueError:
        raise NotFound("no such method") from None


@bp.route(route="reset/pow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_pow(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(composition.root.reset.proof_of_work())


@bp.route(route="reset/flows", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_start(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, StartInput)
    started = await composition.root.reset.start(body.username, body.altcha, api.client_ip(req))
    return json_response(started.model_dump(mode="json"), status=201)


@bp.route(route="reset/flows/{flowId}/proofs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_proof(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, ProofInput)
    service, flow_id = composition.root.reset, req.route_params["flowId"]
    if body.method == "authenticatorApp":
        progress = await service.verify_app(flow_id, _secret(req), body.code or "", api.request_language(req),
                                            api.client_ip(req))
        return json_response(progress.model_dump(mode="json"))
    requested = await service.request_code(flow_id, _secret(req), Method(body.method), body.contact or "",
                                           body.defaultRegion, api.client_ip(req))
    return json_response(requested.model_dump(mode="json"), status=202)


@bp.route(route="reset/flows/{flowId}/proofs/{method}/resend", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_resend(req: func.HttpRequest) -> func.HttpResponse:
    requested = await composition.root.reset.resend(req.route_params["flowId"], _secret(req), _method(req),
                                                 api.client_ip(req))
    return json_response(requested.model_dump(mode="json"), status=202)


@bp.route(route="reset/flows/{flowId}/proofs/{method}/code", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_code(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, CodeInput)
    progress = await composition.root.reset.verify_code(req.route_params["flowId"], _secret(req), _method(req),
                                                     body.code, api.request_language(req), api.client_ip(req))
    return json_response(progress.model_dump(mode="json"))


@bp.route(route="reset/flows/{flowId}/questions", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_questions(req: func.HttpRequest) -> func.HttpResponse:
    service, flow_id, language = composition.root.reset, req.route_params["flowId"], api.request_language(req)
    if req.method == "GET":
        return json_response((await service.questions(flow_id, _secret(req), language)).model_dump(mode="json"))
    body = api.parse_json(req, AnswersInput)
    progress = await service.answer_questions(flow_id, _secret(req), body.answers, language, api.client_ip(req))
    return json_response(progress.model_dump(mode="json"))


@bp.route(route="reset/flows/{flowId}/password/check", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_password_check(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, PasswordInput)
    check = await composition.root.reset.check_password(req.route_params["flowId"], _secret(req), body.password,
                                                     api.request_language(req))
    return json_response(check.model_dump(mode="json"))


@bp.route(route="reset/flows/{flowId}/password", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_password(req: func.HttpRequest) -> func.HttpResponse:
    service, flow_id, language = composition.root.reset, req.route_params["flowId"], api.request_language(req)
    if req.method == "GET":
        return _change_answer(await service.change_status(flow_id, _secret(req), language))
    body = api.parse_json(req, PasswordInput)
    return _change_answer(await service.set_password(flow_id, _secret(req), body.password, language,
                                                     api.client_ip(req)))


@bp.route(route="reset/links", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_link(req: func.HttpRequest) -> func.HttpResponse:
    body = api.parse_json(req, LinkInput)
    opened = await composition.root.reset_links.open(body.link, api.request_language(req), api.client_ip(req))
    return json_response(opened.model_dump(mode="json"), status=201)


@bp.route(route="reset/flows/{flowId}/unlock", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_unlock(req: func.HttpRequest) -> func.HttpResponse:
    return _change_answer(await composition.root.reset.unlock(req.route_params["flowId"], _secret(req),
                                                              api.request_language(req), api.client_ip(req)))


def _change_answer(answer: ResetDone | AccountUnlocked | ChangeWaiting) -> func.HttpResponse:
    """200 with the change's answer, or 202 while on-premises AD has not given its verdict (Retry-After)."""
    if isinstance(answer, ChangeWaiting):
        return json_response(answer.model_dump(mode="json"), status=202,
                             headers={"Retry-After": str(answer.retryAfterSeconds)})
    return json_response(answer.model_dump(mode="json"))
