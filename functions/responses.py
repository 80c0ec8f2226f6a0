"""HTTP response shapes shared by every blueprint: JSON and RFC 9457 problems, with no-store caching."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from shared.errors import Problem

API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={**API_HEADERS, **(headers or {})},
    )


def problem_response(
    problem: Problem, detail: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> func.HttpResponse:
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=problem.status,
        mimetype="application/problem+json",
        charset="utf-8",
        headers={**API_HEADERS, **(headers or {})},
    )
