"""GET /api/openapi.json: the OpenAPI 3.1 document of every operation the registered blueprints declare."""

import sys

import azure.functions as func

from functions.openapi_spec import Operation, document
from functions.responses import json_response

bp = func.Blueprint()

OPERATIONS = [
    Operation("get", "openapi.json", "This document", "meta", "anonymous", responses={200: "OpenAPI 3.1 document"}),
]

_document: dict[str, object] | None = None


def _collect() -> list[Operation]:
    """Every `OPERATIONS` list of the loaded `functions.*` modules (function_app imports them all first)."""
    operations: list[Operation] = []
    for name, module in sorted(sys.modules.items()):
        if name.startswith("functions.") and module is not None:
            operations.extend(getattr(module, "OPERATIONS", []))
    return operations


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    global _document
    if _document is None:
        _document = document(_collect())
    return json_response(_document)
