"""How a blueprint describes its HTTP operations for the OpenAPI document (served at /api/openapi.json).

Each blueprint module declares `OPERATIONS: list[Operation]`; request and response bodies are the same pydantic
models the endpoints validate with, so the document cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared import __version__
from shared.errors import SsprError

AccessKind = Literal["anonymous", "admin-read", "admin-write", "user", "authentication-events", "helpdesk"]

ACCESS_TEXT = {
    "anonymous": "No sign-in.",
    "admin-read": "Entra access token with app role SSPR.Reader or SSPR.Admin.",
    "admin-write": "Entra access token with app role SSPR.Admin.",
    "user": "The signed-in user's own Entra access token.",
    "helpdesk": "A helpdesk agent's own Entra access token (a person, not an app) with app role SSPR.Helpdesk.",
    "authentication-events": "Token of the Entra authentication events service for this API.",
}
ERROR_STATUSES = {
    "anonymous": (400, 429, 500, 503),
    "admin-read": (400, 401, 403, 500, 503),
    "admin-write": (400, 401, 403, 413, 500, 503),
    "user": (400, 401, 403, 413, 500, 503),
    "helpdesk": (400, 401, 403, 413, 500, 503),
    "authentication-events": (400, 401),
}


@dataclass(frozen=True)
class Operation:
    method: Literal["get", "put", "post", "patch", "delete"]
    path: str  # under /api, with {param} templates
    summary: str
    tag: str
    access: AccessKind
    request: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    extra_errors: tuple[int, ...] = ()  # e.g. 404, 409, 412, 428


class FieldProblem(BaseModel):
    """One violated rule of one field: `message` in English for programs, `text` in the caller's language for a
    person (Accept-Language or ?lang=), `code` the rule's stable name."""

    field: str
    message: str
    code: str
    text: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None


def document(operations: list[Operation]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for op in operations:
        if op.request:
            models.add(op.request)
        models.update(m for m in op.responses.values() if isinstance(m, type))
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}", by_alias=True
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        for status, body in sorted(op.responses.items()):
            if isinstance(body, str):
                responses[str(status)] = {"description": body}
            else:
                responses[str(status)] = {
                    "description": body.__doc__.strip().splitlines()[0] if body.__doc__ else body.__name__,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
                }
        if _exports_csv(op) and "content" in responses.get("200", {}):
            responses["200"]["content"]["text/csv"] = {"schema": {"$ref": f"#/components/schemas/{CSV_SCHEMA}"}}
            schemas.setdefault("$defs", {})[CSV_SCHEMA] = {"type": "string", "description": "RFC 4180 CSV, header row first"}
        # Entra reads the hook's answers as JSON whatever they say, so its problems are application/json.
        problem_type = "application/json" if op.access == "authentication-events" else "application/problem+json"
        for status in sorted({*ERROR_STATUSES[op.access], *op.extra_errors}):
            responses.setdefault(str(status), {
                "description": _error_description(status),
                "content": {problem_type: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            })
        entry: dict[str, Any] = {
            "operationId": f"{op.method}{''.join(p.title() for p in op.path.replace('{', '').replace('}', '').replace('-', '/').split('/'))}",
            "summary": op.summary,
            "description": (op.description + "\n\n" if op.description else "") + ACCESS_TEXT[op.access],
            "tags": [op.tag],
            "responses": responses,
        }
        params = list(op.parameters)
        for name in _template_names(op.path):
            if not any(p.get("name") == name and p.get("in") == "path" for p in params):
                params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
        if params:
            entry["parameters"] = params
        if op.request:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.request.__name__}"}}},
            }
        if op.access in ("admin-read", "admin-write", "user", "authentication-events", "helpdesk"):
            entry["security"] = [{"entraToken": []}]
        paths.setdefault(f"/api/{op.path}", {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SSPR for Microsoft Entra",
            "version": __version__,
            "description": "Self-service password reset for a Microsoft Entra tenant, run as an Azure Functions app.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "entraToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (Entra v2 access token)"}
            },
        },
    }


CSV_SCHEMA = "CsvExport"


def _exports_csv(op: Operation) -> bool:
    """An operation with `?format=csv` also answers 200 as text/csv (api.wants_csv)."""
    return any(p.get("name") == "format" and p.get("in") == "query" and "csv" in p.get("schema", {}).get("enum", ())
               for p in op.parameters)


def _template_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0].rstrip("?") for part in path.split("/") if part.startswith("{")]


def _error_description(status: int) -> str:
    for cls in _all_errors(SsprError):
        if cls.problem.status == status:
            return f"{cls.problem.title} ({cls.problem.type})"
    return {429: "Too many requests."}.get(status, "Error.")


def _all_errors(root: type[SsprError]) -> list[type[SsprError]]:
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_all_errors(sub))
    return found
