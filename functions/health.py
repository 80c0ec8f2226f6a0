"""GET /api/health: storage and Graph reachability and the app version (anonymous, no secrets, probed at most
every 5 s per instance)."""

import azure.functions as func

from functions import api, composition
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.services.health import HealthDocument

bp = func.Blueprint()

OPERATIONS = [
    Operation(
        "get", "health", "Storage and Graph reachability, and the app version", "meta", "anonymous",
        responses={200: HealthDocument, 503: HealthDocument},
    ),
]


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await composition.root.health.report()
    return json_response(report.as_dict(), status=200 if report.ok else 503)
