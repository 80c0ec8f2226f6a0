"""The pages (reset, change, register, admin, helpdesk, dev outbox) and their static assets, served from web/ with
strict headers.

Why under /api/pages: the Functions host puts every HTTP route under host.json's `routePrefix` ("api"), and an
empty prefix would move all existing API routes; besides, the real host refuses any route template that starts
with "admin" (its own management API), so a page at /admin could never be served. Pages therefore live at
/api/pages/<page>, and SSPR_PUBLIC_BASE_URL names that folder (e.g. https://sspr.contoso.com/api/pages).

Each page carries the organisation's own marks, its name and Entra company branding (shared/services/branding.py):
the banner logo and background image are served from /api/pages/branding/<image>, the colours from
/api/pages/branding.css, and the sign-in page text is written into the page, all in the page's language.

Files are read once per process and cached. Every answer carries the page headers of security.md C5: a strict
Content-Security-Policy (own scripts only, no inline code, no third-party origin but the identity authority the
sign-in talks to), Referrer-Policy no-referrer and X-Content-Type-Options nosniff.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from functools import cache
from pathlib import Path, PurePosixPath

import azure.functions as func

from functions.openapi_spec import Operation
from shared import i18n
from shared.config import Environment
from shared.services.branding import Brand

bp = func.Blueprint()

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ASSETS_DIR = WEB_DIR / "assets"
PAGES = {"reset": "reset", "change": "change", "register": "register", "admin": "admin", "helpdesk": "helpdesk",
         "dev/outbox": "outbox"}
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
LANG_PARAMETER = {"name": "lang", "in": "query", "schema": {"enum": list(i18n.LANGUAGES)}}
BRANDING_IMAGES = {"bannerLogo": "logo", "backgroundImage": "background"}
PLACEHOLDER = re.compile(r"\{\{\w+\}\}")
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
    Operation("get", "pages/branding", "The organisation's name and sign-in page text in one language (JSON)", TAG,
              "anonymous", responses={200: "{name, signInText, logo, background}"}, parameters=[LANG_PARAMETER]),
    Operation("get", "pages/branding.css", "The organisation's colours and background image as a stylesheet", TAG,
              "anonymous", responses={200: "text/css (empty without company branding)"}, parameters=[LANG_PARAMETER]),
    Operation("get", "pages/branding/{image}", "The organisation's banner logo or background image", TAG,
              "anonymous", responses={200: "image/png or image/jpeg", 404: NOT_FOUND},
              parameters=[{"name": "image", "in": "path", "required": True,
                           "schema": {"enum": sorted(BRANDING_IMAGES)}}, LANG_PARAMETER]),
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
        "signInUrl": settings.sign_in_url,
    }, separators=(",", ":"))


HEAD_END = "<!-- the page's own head ends here; web/pages/layout.html holds the rest -->\n"


@cache
def _template(name: str) -> str:
    """Page `name` inside the frame every page shares: its own head (title, scripts) above HEAD_END, its body below."""
    head, body = _read(WEB_DIR / "pages" / name / "index.html").decode("utf-8").split(HEAD_END, 1)
    layout = _read(WEB_DIR / "pages" / "layout.html").decode("utf-8")
    return layout.replace("{{head}}\n", head).replace("{{body}}\n", body)


def _language(req: func.HttpRequest) -> str:
    chosen = req.params.get("lang") or ""
    return chosen if chosen in i18n.LANGUAGES else i18n.choose_language(req.headers.get("Accept-Language"))


async def _brand(language: str) -> Brand:
    from functions import composition

    return await composition.root.branding.brand(language)


def brand_marks(brand: Brand, language: str) -> dict[str, str]:
    """The layout's branding placeholders, every value escaped: the logo (with the organisation's name as its
    text alternative), the name (the catalog's "Password service" when the tenant's is unknown) and the text."""
    name = html.escape(brand.name)
    logo = (f'<img class="brand-logo" src="/api/pages/branding/bannerLogo?lang={language}" alt="{name}">'
            if brand.logo else "")
    return {
        "{{brandLogo}}": logo,
        "{{brandName}}": name or html.escape(i18n.catalog("pages", language)["brand"]),
        "{{brandNameI18n}}": "" if brand.name else ' data-i18n="brand"',
        "{{brandText}}": html.escape(brand.sign_in_text or ""),
        "{{brandTextHidden}}": "" if brand.sign_in_text else " hidden",
    }


async def _page(name: str, req: func.HttpRequest) -> func.HttpResponse:
    language = _language(req)
    values = {"{{lang}}": language, "{{config}}": html.escape(_page_config(), quote=True),
              **brand_marks(await _brand(language), language)}
    # One pass, so a value (a tenant's name or text) is never read again as a placeholder.
    body = PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), _template(name))
    return func.HttpResponse(body.encode("utf-8"), status_code=200,
                             headers={**_headers(PAGE_CACHE), "Content-Type": CONTENT_TYPES[".html"]})


@bp.route(route="pages/reset", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def reset_page(req: func.HttpRequest) -> func.HttpResponse:
    return await _page("reset", req)


@bp.route(route="pages/change", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def change_page(req: func.HttpRequest) -> func.HttpResponse:
    return await _page("change", req)


@bp.route(route="pages/register", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def register_page(req: func.HttpRequest) -> func.HttpResponse:
    return await _page("register", req)


@bp.route(route="pages/admin", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def admin_page(req: func.HttpRequest) -> func.HttpResponse:
    return await _page("admin", req)


@bp.route(route="pages/helpdesk", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def helpdesk_page(req: func.HttpRequest) -> func.HttpResponse:
    return await _page("helpdesk", req)


@bp.route(route="pages/dev/outbox", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def outbox_page(req: func.HttpRequest) -> func.HttpResponse:
    from functions import composition

    return await _page("outbox", req) if outbox_enabled(composition.settings.environment) else _not_found()


@bp.route(route="pages/branding", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def branding(req: func.HttpRequest) -> func.HttpResponse:
    """What the pages swap when the reader changes language: the name, the text and the images' addresses."""
    language = _language(req)
    brand = await _brand(language)
    body = json.dumps({
        "name": brand.name, "signInText": brand.sign_in_text,
        "logo": f"/api/pages/branding/bannerLogo?lang={language}" if brand.logo else None,
        "background": f"/api/pages/branding/backgroundImage?lang={language}" if brand.background else None,
    }, ensure_ascii=False)
    return func.HttpResponse(body.encode("utf-8"), status_code=200,
                             headers={**_headers(ASSET_CACHE), "Content-Type": CONTENT_TYPES[".json"]})


@bp.route(route="pages/branding.css", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def branding_css(req: func.HttpRequest) -> func.HttpResponse:
    language = _language(req)
    css = branding_stylesheet(await _brand(language), language)
    return func.HttpResponse(css.encode("utf-8"), status_code=200,
                             headers={**_headers(ASSET_CACHE), "Content-Type": CONTENT_TYPES[".css"]})


def branding_stylesheet(brand: Brand, language: str) -> str:
    """The header in the organisation's colour (with readable ink) and its background image behind the page; the
    colour passed the `#RRGGBB` rule before it got here, so nothing else can reach the stylesheet."""
    rules = []
    if brand.background_colour:
        rules.append(f"header {{ background: {brand.background_colour}; color: {brand.ink}; }}")
    if brand.background:
        rules.append(f"body {{ min-height: 100vh; background: {brand.background_colour or '#f4f5f7'} "
                     f"url(\"/api/pages/branding/backgroundImage?lang={language}\") center top / cover no-repeat; }}")
        rules.append("body > main, body > footer > p { background: #fff; border-radius: 6px; }")
    return "\n".join(rules) + "\n"


@bp.route(route="pages/branding/{image}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def branding_image(req: func.HttpRequest) -> func.HttpResponse:
    which = BRANDING_IMAGES.get(req.route_params.get("image", ""))
    brand = await _brand(_language(req))
    image = getattr(brand, which) if which else None
    if image is None:
        return _not_found()
    return func.HttpResponse(image.data, status_code=200,
                             headers={**_headers(ASSET_CACHE), "Content-Type": image.content_type})


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
