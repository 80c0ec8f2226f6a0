"""The pages (reset, register, admin, dev outbox) and their static assets, served from web/ with strict headers.

Why under /api/pages: the Functions host puts every HTTP route under host.json's `routePrefix` ("api"), and an
empty prefix would move all existing API routes; besides, the real host refuses any route template that starts
with "admin" (its own management API), so a page at /admin could never be served. Pages therefore live at
/api/pages/<page>, and SSPR_PUBLIC_BASE_URL names that folder (e.g. https://sspr.contoso.com/api/pages).

Files are read once per process and cached. Every answer carries the page headers of security.md C5: a strict
Content-Security-Policy (own scripts only, no inline code, no third-party origin but the identity authority the
sign-in talks to), Referrer-Policy no-referrer and X-Content-Type-Options nosniff.
"""

from __future__ import annotations

import html
import json
import mimetypes
from functools import cache
from pathlib import Path, PurePosixPath

import azure.functions as func

from functions.openapi_spec import Operation
from shared import i18n
from shared.config import Environment

bp = func.Blueprint()

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ASSETS_DIR = WEB_DIR / "assets"
PAGES = {"reset": "reset", "register": "register", "admin": "admin", "dev/outbox": "outbox"}
TAG = "pages"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
    ".ico": "image/x-icon", ".woff2": "font/woff2",
}
# Assets change only with a deployment; an hour keeps a phone on a slow link fast without pinning old code long.
ASSET_CACHE = "public, max-age=3600"
PAGE_CACHE = "no-store"  # a page carries the deployment's settings and is part of a reset flow: never stored

NOT_FOUND = "Not found (text/plain, like a missing static file)"
OPERATIONS = [
    *[Operation("get", f"pages/{route}", f"The {name} page (HTML)", TAG, "anonymous", responses={200: "HTML page"})
      for route, name in PAGES.items()],
    # Named as the route template is (`{*path}` catches the rest of the URL), so the document lists the route.
    Operation("get", "pages/assets/{*path}", "A static asset of the pages (scripts, styles, vendored libraries)",
              TAG, "anonymous", responses={200: "the file", 404: NOT_FOUND},
              parameters=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}]),
    Operation("get", "pages/i18n/{lang}", "The pages' texts in one language (en or sv)", TAG, "anonymous",
              responses={200: "flat JSON object of texts", 404: NOT_FOUND},
              parameters=[{"name": "lang", "in": "path", "required": True, "schema": {"enum": list(i18n.LANGUAGES)}}]),
    Operation("get", "pages/dev/outbox.json", "Mails and SMS the dev run sent, newest first (404 in Azure)", TAG,
              "anonymous", responses={200: "the emulator's outbox", 404: NOT_FOUND}),
]


def content_security_policy(authority_host: str) -> str:
    """Own origin only, plus the identity authority the sign-in redeems its code at (connect-src)."""
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        f"connect-src 'self' {authority_host}", "worker-src 'self'", "font-src 'self'", "manifest-src 'self'",
        "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
    ])


def outbox_enabled(environment: Environment) -> bool:
    """The outbox shows codes that were sent: only a dev run may show it; in Azure the route answers 404."""
    return environment is not Environment.AZURE


def asset_path(requested: str) -> Path | None:
    """The file under web/assets that `requested` names, or None for anything outside it, hidden or unknown."""
    if not requested or "\\" in requested or "\x00" in requested:
        return None
    parts = PurePosixPath(requested).parts
    if not parts or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or parts[0] == "/":
        return None
    candidate = (ASSETS_DIR / Path(*parts)).resolve()
    if ASSETS_DIR.resolve() not in candidate.parents or candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate if candidate.is_file() else None


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


def _headers(cache_control: str) -> dict[str, str]:
    from functions import composition  # lazily: the settings are read once the app runs, not at import

    return {
        "Content-Security-Policy": content_security_policy(composition.settings.authority_host),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": cache_control,
    }


def _not_found() -> func.HttpResponse:
    return func.HttpResponse(b"Not found", status_code=404, headers={**_headers("no-store"),
                                                                  "Content-Type": "text/plain; charset=utf-8"})


@cache
def _page_config() -> str:
    """The settings a page needs (public values only), embedded as a meta tag so that no inline script exists."""
    from functions import composition

    settings = composition.settings
    return json.dumps({
        "authority": f"{settings.authority_host}/{settings.tenant_id}",
        "clientId": str(settings.pages_client_id),
        "apiScope": f"api://{settings.api_client_id}/access_as_user",
        "environment": settings.environment.value,
    }, separators=(",", ":"))


HEAD_END = "<!-- the page's own head ends here; web/pages/layout.html holds the rest -->\n"


@cache
def _template(name: str) -> str:
    """Page `name` inside the frame every page shares: its own head (title, scripts) above HEAD_END, its body below."""
    head, body = _read(WEB_DIR / "pages" / name / "index.html").decode("utf-8").split(HEAD_END, 1)
    layout = _read(WEB_DIR / "pages" / "layout.html").decode("utf-8")
    return layout.replace("{{head}}\n", head).replace("{{body}}\n", body)


def _page(name: str, req: func.HttpRequest) -> func.HttpResponse:
    template = _template(name)
    language = req.params.get("lang") if req.params.get("lang") in i18n.LANGUAGES else \
        i18n.choose_language(req.headers.get("Accept-Language"))
    body = (template.replace("{{lang}}", language)
            .replace("{{config}}", html.escape(_page_config(), quote=True)))
    return func.HttpResponse(body.encode("utf-8"), status_code=200,
                             headers={**_headers(PAGE_CACHE), "Content-Type": CONTENT_TYPES[".html"]})


@bp.route(route="pages/reset", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def reset_page(req: func.HttpRequest) -> func.HttpResponse:
    return _page("reset", req)


@bp.route(route="pages/register", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def register_page(req: func.HttpRequest) -> func.HttpResponse:
    return _page("register", req)


@bp.route(route="pages/admin", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def admin_page(req: func.HttpRequest) -> func.HttpResponse:
    return _page("admin", req)


@bp.route(route="pages/dev/outbox", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def outbox_page(req: func.HttpRequest) -> func.HttpResponse:
    from functions import composition

    return _page("outbox", req) if outbox_enabled(composition.settings.environment) else _not_found()


@bp.route(route="pages/dev/outbox.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def outbox_messages(req: func.HttpRequest) -> func.HttpResponse:
    """The emulator's outbox, relayed so that the page needs no other origin (dev runs with the emulator only)."""
    from functions import composition

    settings = composition.settings
    if not outbox_enabled(settings.environment) or not settings.graph_uses_local_authority:
        return _not_found()
    import httpx  # dev only: the emulator's control API is no product dependency worth an adapter

    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        answer = await client.get(f"{settings.authority_host}/_emulator/outbox")
    answer.raise_for_status()
    return func.HttpResponse(answer.content, status_code=200,
                             headers={**_headers("no-store"), "Content-Type": CONTENT_TYPES[".json"]})


@bp.route(route="pages/i18n/{lang}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def page_texts(req: func.HttpRequest) -> func.HttpResponse:
    language = req.route_params.get("lang", "")
    if language not in i18n.LANGUAGES:
        return _not_found()
    body = json.dumps(i18n.catalog("pages", language), ensure_ascii=False).encode("utf-8")
    return func.HttpResponse(body, status_code=200,
                             headers={**_headers(ASSET_CACHE), "Content-Type": CONTENT_TYPES[".json"]})


@bp.route(route="pages/assets/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def asset(req: func.HttpRequest) -> func.HttpResponse:
    path = asset_path(req.route_params.get("path", ""))
    if path is None:
        return _not_found()
    content_type = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return func.HttpResponse(_read(path), status_code=200,
                             headers={**_headers(ASSET_CACHE), "Content-Type": content_type})
