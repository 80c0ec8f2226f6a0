"""/api/me/security-info/authenticatorApp and /securityQuestions: the signed-in user registers an authenticator app
(TOTP) or security questions."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import Field, StringConstraints

from functions import api, composition
from functions.inputs import Guid, Input
from functions.openapi_spec import Operation
from shared.domain.security_questions import MAX_SUBMITTED_ANSWER_LENGTH, Answer
from shared.i18n import choose_language
from shared.services.registration.answers import AppSetup, QuestionCatalog, Verified

bp = func.Blueprint()

TAG = "security info"


class AppCodeInput(Input):
    """The setup to confirm and the 6-digit code the authenticator app shows now."""

    setupId: Guid
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class QuestionAnswer(Input):
    questionId: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    answer: Annotated[str, StringConstraints(max_length=MAX_SUBMITTED_ANSWER_LENGTH)]


class AnswersInput(Input):
    """One answer per chosen question; exactly the policy's registerCount of them."""

    answers: Annotated[list[QuestionAnswer], Field(max_length=10)]


OPERATIONS = [
    Operation("post", "me/security-info/authenticatorApp", "Start adding an authenticator app (TOTP)", TAG, "user",
              responses={201: AppSetup}, extra_errors=(429,),
              description="Returns the otpauth URI, its QR code (SVG) and the seed; confirm within 10 minutes."
                          " Starting again replaces an unconfirmed setup."),
    Operation("post", "me/security-info/authenticatorApp/verify", "Confirm the app with a code; the app is saved",
              TAG, "user", request=AppCodeInput, responses={200: Verified}, extra_errors=(409, 429),
              description="A wrong code answers 400 code-not-accepted and counts toward the SSPR throttle; an"
                          " unknown, replaced or expired setup answers 409 challenge-closed."),
    Operation("get", "me/security-info/securityQuestions/catalog", "The security questions I may answer", TAG,
              "user", responses={200: QuestionCatalog},
              parameters=[{"name": "Accept-Language", "in": "header", "required": False,
                           "schema": {"type": "string"}, "description": "sv for Swedish texts, else English"}],
              description="403 when the policy does not allow security questions, or for administrators."),
    Operation("put", "me/security-info/securityQuestions", "Register my security questions (replaces earlier ones)",
              TAG, "user", request=AnswersInput, responses={200: Verified},
              description="Every broken rule is listed at once (e.g. answers[2].answer). 403 when the policy does"
                          " not allow security questions, or for administrators."),
]


@bp.route(route="me/security-info/authenticatorApp", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def start_authenticator_app(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    setup = await composition.root.authenticator_app.start(principal, api.client_ip(req))
    return api.json_response(setup.model_dump(mode="json"), status=201)


@bp.route(route="me/security-info/authenticatorApp/verify", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def confirm_authenticator_app(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    body = api.parse_json(req, AppCodeInput)
    verified = await composition.root.authenticator_app.confirm(principal, body.setupId, body.code, api.client_ip(req))
    return api.json_response(verified.model_dump(mode="json"))


@bp.route(route="me/security-info/securityQuestions/catalog", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def security_question_catalog(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    language = choose_language(req.headers.get("Accept-Language"))
    catalog = await composition.root.security_questions.catalog(principal, language)
    return api.json_response(catalog.model_dump(mode="json"),
                             headers={"Content-Language": language, "Vary": "Accept-Language"})


@bp.route(route="me/security-info/securityQuestions", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def register_security_questions(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate_user(req)
    body = api.parse_json(req, AnswersInput)
    answers = [Answer(a.questionId, a.answer) for a in body.answers]
    verified = await composition.root.security_questions.register(principal, answers, api.client_ip(req))
    return api.json_response(verified.model_dump(mode="json"))
