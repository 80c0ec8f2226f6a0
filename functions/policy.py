"""GET/PUT /api/manage/policy: read the SSPR policy with its ETag, replace it whole with If-Match.

A PUT that changes `scope`, `groupId` or `includeGuests` also starts an enablement run after the save (the policy
is the one source of truth of the scope): the response's `Location` names the run. 409 while a run is going and
400 for a group that does not exist are decided before anything is saved.
"""

import azure.functions as func

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.domain.policy import Policy

bp = func.Blueprint()

OPERATIONS = [
    Operation(
        "get", "manage/policy", "Read the SSPR policy", "policy", "admin-read",
        responses={200: Policy},
        description="The `ETag` response header names this version; send it back as `If-Match` to change it.",
    ),
    Operation(
        "put", "manage/policy", "Replace the SSPR policy", "policy", "admin-write",
        request=Policy,
        responses={200: Policy},
        parameters=[{"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
                     "description": "The ETag of the policy you read (`\"0\"` while none was ever saved)."}],
        description="Every setting is replaced; every violated rule is listed at once in `errors`. "
                    "412 when someone saved since you read it, 428 without If-Match. Each change is audited. "
                    "A change of `scope`, `groupId` or `includeGuests` starts an enablement run after the save; "
                    "`Location` then names it (GET /api/manage/enablement/{id}). While another run is queued or "
                    "running such a change is refused with 409 (`runningRequestId`), and a `groupId` naming no "
                    "group in the directory with 400; in both cases nothing is saved.",
        extra_errors=(409, 412, 428),
    ),
]


@bp.route(route="manage/policy", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def read_policy(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    current = await composition.root.policy.read_policy()
    return api.json_response(current.policy.as_document(), headers={"ETag": current.etag})


@bp.route(route="manage/policy", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def replace_policy(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    expected = api.if_match(req)
    new = api.parse_json(req, Policy)
    saved = await composition.root.policy.update_policy(new, expected, principal.actor(), api.client_ip(req))
    headers = {"ETag": saved.etag}
    if saved.run is not None:
        headers["Location"] = f"/api/manage/enablement/{saved.run.id}"
    return api.json_response(saved.policy.as_document(), headers=headers)
