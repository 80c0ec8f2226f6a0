"""Streamed sign-in logs in, registration reminders out.

POST /api/hooks/signin-events takes the `{"records": [...]}` batches a log-stream forwarder (diagnostic settings ->
Event Hub -> forwarder) posts, with the function key (auth level FUNCTION: the caller is our own plumbing, not a
user or Entra). Bodies up to 1 MiB (an Event Hub event is at most 1 MB) and 5,000 records; successful interactive
sign-ins with a GUID user id are kept, one message per distinct user goes to queue sspr-signin-events (ids only),
and the answer is 202. The queue worker decides whether that user gets a registration reminder mail.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import composition
from functions.api import endpoint, field_errors
from functions.json_body import load_json
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared import queues
from shared.domain.signin import SignInEventMessage, SignInRecord, signed_in_users
from shared.errors import InvalidRequest, PayloadTooLarge

log = logging.getLogger("sspr.signin")

MAX_BATCH_BYTES = 1024 * 1024
MAX_RECORDS = 5000


class SignInBatch(BaseModel):
    """A batch of streamed SignInLogs records; records that are not sign-ins we use are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    records: Annotated[list[Any], Field(max_length=MAX_RECORDS)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SignInProperties(_Lenient):
    userId: str | None = Field(None, max_length=64)


class StreamedSignIn(_Lenient):
    category: str | None = Field(None, max_length=64)
    resultType: str | int | None = None
    properties: SignInProperties | None = None


class SignInBatchAccepted(BaseModel):
    """How many records came and how many distinct users were queued."""

    records: int
    users: int


OPERATIONS = [
    Operation(
        "post", "hooks/signin-events", "Streamed SignInLogs records: queue registration reminders", "sign-in",
        "anonymous", request=SignInBatch, responses={202: SignInBatchAccepted}, extra_errors=(401, 413),
        description="Needs the function key (x-functions-key): called by the log-stream forwarder, not by users.",
    ),
]

bp = func.Blueprint()


@bp.route(route="hooks/signin-events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def signin_events(req: func.HttpRequest) -> func.HttpResponse:
    declared = _declared_length(req)
    if declared is not None and declared > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"sign-in batch of {declared} bytes declared")
    body = req.get_body() or b""
    if len(body) > MAX_BATCH_BYTES:  # a chunked body declares no length
        raise PayloadTooLarge(f"sign-in batch of {len(body)} bytes")
    try:
        batch = SignInBatch.model_validate(load_json(body))
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None
    users = signed_in_users(_record(r) for r in batch.records)
    queued = await composition.root.signin_events.enqueue(users)
    return json_response(SignInBatchAccepted(records=len(batch.records), users=queued).model_dump(), status=202)


@bp.queue_trigger(arg_name="message", queue_name=queues.trigger_queue(queues.SIGNIN_EVENTS), connection="AzureWebJobsStorage")
async def signin_event_worker(message: func.QueueMessage) -> None:
    # An invalid message raises, so after the retries it lands in sspr-signin-events-poison with no side effect.
    event = SignInEventMessage.model_validate(json.loads(message.get_body()))
    await composition.root.registration_reminders.after_sign_in(event.userId)


def _record(raw: Any) -> SignInRecord:
    try:
        record = StreamedSignIn.model_validate(raw)
    except ValidationError:
        return SignInRecord(None, None, None)  # not a record we can read: ignored
    result = None if record.resultType is None else str(record.resultType)
    return SignInRecord(record.category, result, record.properties.userId if record.properties else None)


def _declared_length(req: func.HttpRequest) -> int | None:
    """The Content-Length the forwarder declared, so an oversized batch is refused before it is read."""
    try:
        return int(req.headers.get("Content-Length") or "")
    except ValueError:
        return None
