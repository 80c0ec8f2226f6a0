"""/api/reset/flows/{flowId}/access-pass: a verified reset ends with a Temporary Access Pass, instead of a new
password or right after it, as the policy says (shared/services/reset/access_pass.py)."""

from __future__ import annotations

import azure.functions as func

from functions import api, composition
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.services.reset.answers import AccessPassIssued

bp = func.Blueprint()

OPERATIONS = [
    Operation("post", "reset/flows/{flowId}/access-pass", "Get a Temporary Access Pass (shown once)", "reset",
              "anonymous", responses={201: AccessPassIssued}, extra_errors=(403, 404, 409, 502, 503),
              description="Instead of a new password (the flow ends) or right after it, when the policy's"
                          " temporaryAccessPass says so; 409 access-pass-unavailable when the tenant's TAP policy is"
                          " off or does not target the user, or the flow's pass was made already."),
]


@bp.route(route="reset/flows/{flowId}/access-pass", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def reset_access_pass(req: func.HttpRequest) -> func.HttpResponse:
    issued = await composition.root.reset_access_pass.issue(req.route_params["flowId"],
                                                            (req.headers.get("X-Flow-Secret") or "").strip(),
                                                            api.request_language(req))
    return json_response(issued.model_dump(mode="json"), status=201)
