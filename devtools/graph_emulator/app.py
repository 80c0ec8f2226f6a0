"""Builds the emulator's aiohttp application (Graph v1.0 + identity + control API) around one state."""

from __future__ import annotations

import asyncio
import math
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from . import (
    admin_graph,  # noqa: F401  (registers the deployment routes on graph.py's router)
    authentication_methods,
    authorize,
    control,
    directory_graph,  # noqa: F401  (registers group listing and company branding on graph.py's router)
    graph,
    identity,
)
from .errors import default_code
from .identity_keys import SigningKeys
from .state import STATE, EmulatorState
from .tenant import Tenant, load_fixture


@web.middleware
async def identity_faults(request: web.Request, handler: Any) -> web.StreamResponse:
    """Fault rules with target "identity" or "all" hit the login endpoints (Graph applies its own)."""
    if request.path.startswith(("/v1.0/", "/_emulator/")):
        return await handler(request)
    state = request.app[STATE]
    decision = state.faults.decide(request.method, request.path, "identity")
    if decision.latency_ms:
        await asyncio.sleep(decision.latency_ms / 1000)
    rule = decision.error
    if rule is None:
        return await handler(request)
    state.stats.faults_fired += 1
    status = rule.status or 503
    headers = {"Retry-After": str(math.ceil(rule.retryAfter))} if rule.retryAfter is not None else {}
    return web.json_response(
        {"error": rule.code or ("temporarily_unavailable" if status in (429, 503, 504) else "server_error"),
         "error_description": rule.message or f"AADSTS90033: {default_code(status)[1]}",
         "error_codes": [90033], "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())},
        status=status, headers=headers)


async def not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": "not_found", "error_description": f"No emulator route for {request.path}"},
                             status=404)


def create_app(*, fixture: str | Path | dict[str, Any] | None = None, users: int | None = None,
               seed: int | None = None, base_url: str | None = None) -> web.Application:
    """The emulator as an aiohttp application.

    ``users`` replaces the fixture's generated filler users by that many generated users (same ``seed``, same
    users). ``base_url`` fixes the public origin used in issuers and links; by default each request's own.
    """
    data = fixture if isinstance(fixture, dict) else load_fixture(fixture)
    state = EmulatorState(fixture=data, generated_users=users, seed=seed, tenant=Tenant(data, users, seed),
                          keys=SigningKeys(), base_url=base_url.rstrip("/") if base_url else None)
    app = web.Application(middlewares=[authorize.cors, identity_faults], client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    control.add_routes(app)
    authentication_methods.add_control_routes(app)
    graph.add_routes(app)
    identity.add_routes(app)
    authorize.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
