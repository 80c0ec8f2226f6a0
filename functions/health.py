"""GET /api/health: storage and Graph reachability and the app version (anonymous, no secrets)."""

import azure.functions as func

from functions import composition
from functions.responses import json_response
from shared.services.health import check_health

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await check_health(composition.storage(), composition.graph())
    return json_response(report.as_dict(), status=200 if report.ok else 503)
