"""Graph-shaped error responses: ``{"error":{"code","message","innerError":{"request-id","date"}}}``."""

from __future__ import annotations

import json
from typing import Any

from .tenant import iso, utc_now


class GraphError(Exception):
    """Raised by a Graph handler; becomes a Graph error response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": iso(utc_now()), "request-id": request_id,
                                     "client-request-id": request_id}}}


def graph_headers(request_id: str, client_request_id: str | None = None) -> dict[str, str]:
    return {"request-id": request_id, "client-request-id": client_request_id or request_id,
            "x-ms-ags-diagnostic": json.dumps({"ServerInfo": {"DataCenter": "Emulator", "Slice": "E"}})}


# Default code for fault rules and unknown routes.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource not found."),
    429: ("TooManyRequests", "Too many requests have been sent; please retry after the time in Retry-After."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


def default_code(status: int) -> tuple[str, str]:
    return STATUS_CODES.get(status, ("UnknownError", f"Emulated failure with status {status}."))
