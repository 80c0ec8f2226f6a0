"""The HTTP side of the host: an aiohttp server for HTTP triggers (routes, methods, keys) and the admin API."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from . import logs
from .invoker import Invoker
from .loader import HTTP, FunctionSpec
from .routes import Route, compile_route, order

log = logging.getLogger("funchost")

MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the real host's default request size limit
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class Keys:
    """The function key and master key that FUNCTION and ADMIN routes accept."""

    function: str
    master: str

    def allows(self, level: str, presented: str | None) -> bool:
        if level == "ANONYMOUS":
            return True
        if not presented:
            return False
        accepted = [self.master] if level == "ADMIN" else [self.function, self.master]
        return any(hmac.compare_digest(presented.encode(), key.encode()) for key in accepted)


AdminInvoke = Callable[[FunctionSpec, str], Awaitable[None]]


class HttpFrontend:
    """Dispatches every request: `/admin/...` to the admin API, everything else to the matching HTTP trigger."""

    def __init__(self, specs: list[FunctionSpec], route_prefix: str, keys: Keys, invoker: Invoker,
                 admin_invoke: AdminInvoke, all_specs: list[FunctionSpec],
                 warm_up: Callable[[], Awaitable[None]]) -> None:
        self.routes: list[Route] = order([compile_route(s, route_prefix) for s in specs if s.kind == HTTP])
        self._keys = keys
        self._invoker = invoker
        self._admin_invoke = admin_invoke
        self._warm_up = warm_up
        self._functions = {s.name.lower(): s for s in all_specs}
        self._started = time.monotonic()
        self._host_id = uuid.uuid4().hex[:16]
        self._background: set[asyncio.Task[None]] = set()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.dispatch)  # [\s\S]: also paths with %0A in them
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/admin" or path.startswith("/admin/"):
            return await self._admin(request, path)
        matched = [(route, params) for route in self.routes if (params := route.match(path)) is not None]
        if not matched:
            return web.Response(status=404)
        for route, params in matched:
            if route.allows(request.method):
                return await self._trigger(request, route, params)
        allowed = sorted({m for route, _ in matched for m in (route.methods or ())})
        return web.Response(status=405, headers={"Allow": ", ".join(allowed)})

    async def _trigger(self, request: web.Request, route: Route, route_params: dict[str, str]) -> web.StreamResponse:
        if not self._keys.allows(route.auth_level, _presented_key(request)):
            return web.Response(status=401)
        body = await request.read()
        headers = {name: ", ".join(request.headers.getall(name)) for name in request.headers.keys()}
        http_request = func.HttpRequest(
            request.method,
            str(request.url),
            headers=with_forwarded_peer(headers, request),
            params={name: ",".join(request.query.getall(name)) for name in request.query.keys()},
            route_params=route_params,
            body=body,
        )
        detail = f"HTTP {request.method} {request.path}"
        started = time.perf_counter()
        try:
            result = await self._invoker.invoke(route.spec, http_request)
            response = to_response(result)
        except Exception:
            log.exception("function %s failed (%s)", route.spec.name, detail)
            response = web.Response(status=500)
        logs.invocation(route.spec.name, detail, (time.perf_counter() - started) * 1000, str(response.status))
        return response

    async def _admin(self, request: web.Request, path: str) -> web.StreamResponse:
        if not self._keys.allows("ADMIN", _presented_key(request)):
            return web.Response(status=401)
        parts = [p for p in path.split("/") if p]
        if parts == ["admin", "host", "status"] and request.method in ("GET", "HEAD"):
            return web.json_response({
                "id": self._host_id,
                "state": "Running",
                "version": "funchost",
                "processUptime": int((time.monotonic() - self._started) * 1000),
            })
        if parts == ["admin", "warmup"] and request.method in ("GET", "POST"):
            await self._warm_up()
            return web.Response(status=200)
        if parts == ["admin", "functions"] and request.method == "GET":
            return web.json_response([
                {"name": s.name, "trigger": s.trigger["type"]} for s in self._functions.values()])
        if len(parts) == 3 and parts[:2] == ["admin", "functions"]:
            spec = self._functions.get(parts[2].lower())
            if spec is None:
                return web.Response(status=404)
            if request.method == "GET":
                return web.json_response({"name": spec.name, "config": {"bindings": [spec.trigger]}}, dumps=_dumps)
            if request.method != "POST":
                return web.Response(status=405, headers={"Allow": "GET, POST"})
            if spec.kind == HTTP:
                return web.json_response({"error": "HTTP functions are invoked through their route"}, status=400)
            try:
                payload = await request.json() if await request.read() else {}
            except ValueError:
                return web.json_response({"error": "body must be JSON like {\"input\": \"...\"}"}, status=400)
            text = payload.get("input", "") if isinstance(payload, dict) else ""
            if not isinstance(text, str):
                text = json.dumps(text)
            task = asyncio.ensure_future(self._admin_invoke(spec, text))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return web.Response(status=202)
        return web.Response(status=404)


def with_forwarded_peer(headers: dict[str, str], request: web.Request) -> dict[str, str]:
    """The headers with the connection's peer appended to X-Forwarded-For as `ip:port`, as Azure's front end does.

    The Python worker has no peer address of its own: in Azure the function sees the client only through the
    entry App Service appends (anything left of it is the caller's own text), so the local host writes it too."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return headers
    host, port = str(peer[0]), int(peer[1])
    entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = next((n for n in headers if n.lower() == "x-forwarded-for"), "X-Forwarded-For")
    supplied = headers.get(name, "").strip()
    return {**headers, name: f"{supplied}, {entry}" if supplied else entry}


def _presented_key(request: web.Request) -> str | None:
    return request.headers.get("x-functions-key") or request.query.get("code")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def to_response(result: Any) -> web.Response:
    """Map what an HTTP function returned to an aiohttp response, the way the Python worker does."""
    if isinstance(result, func.HttpResponse) or (hasattr(result, "status_code") and hasattr(result, "get_body")):
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in result.headers.items():
            if name.lower() not in _HOP_HEADERS:
                headers.add(name, str(value))
        if "content-type" not in headers:
            mimetype = result.mimetype or "text/plain"
            charset = result.charset or "utf-8"
            headers["Content-Type"] = f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype
        status = int(result.status_code)
        if not 100 <= status <= 599:
            raise ValueError(f"invalid HTTP status code {status}")
        return web.Response(status=status, body=result.get_body() or b"", headers=headers)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str):
        return web.Response(status=200, body=result.encode("utf-8"),
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    if isinstance(result, (bytes, bytearray)):
        return web.Response(status=200, body=bytes(result), headers={"Content-Type": "application/octet-stream"})
    if isinstance(result, (dict, list)):
        return web.Response(status=200, body=json.dumps(result).encode("utf-8"),
                            headers={"Content-Type": "application/json"})
    raise TypeError(f"HTTP function returned {type(result).__name__}, expected func.HttpResponse, str or dict")
