"""GET /api/health: storage and Graph reachability and the app version (anonymous, no secrets)."""

import azure.functions as func

from functions import composition
from functions.openapi_spec import Operation
from functions.responses import json_response
from shared.services.health import HealthDocument, check_health

bp = func.Blueprint()

OPERATIONS = [
    Operation(
        "get", "health", "Storage and Graph reachability, and the app version", "meta", "anonymous",
        responses={200: HealthDocument, 503: HealthDocument},
    ),
]


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await check_health(composition.storage(), composition.graph())
    return json_response(report.as_dict(), status=200 if report.ok else 503)
