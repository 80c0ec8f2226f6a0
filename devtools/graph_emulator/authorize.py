"""Interactive sign-in for browser tests: the authorization-code flow with PKCE, and CORS for SPA clients.

``GET /{tenant}/oauth2/v2.0/authorize`` shows a plain username/password form; a valid sign-in redirects to the
client's ``redirect_uri`` (localhost only) with a one-time ``code`` that the token endpoint redeems with
``grant_type=authorization_code`` and the PKCE ``code_verifier``.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from .identity import (
    GRANTS,
    TokenError,
    authenticate_client,
    delegated_grant,
    sign_in,
    tenant_or_error,
    user_tokens,
)
from .identity_keys import b64url
from .state import STATE, EmulatorState

CODE_LIFETIME_S = 600
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization, client-request-id, x-client-SKU, "
                                                "x-client-VER, x-client-OS, x-client-CPU, x-ms-lib-capability",
                "Access-Control-Max-Age": "600"}


@dataclass(slots=True)
class PendingCode:
    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    code_challenge: str | None
    challenge_method: str
    nonce: str | None
    expires_at: float


def _local_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOCAL_HOSTS


def _page(params: dict[str, str], error: str | None = None) -> web.Response:
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in params.items() if k not in ("username", "password"))
    hint = html.escape(params.get("login_hint", params.get("username", "")))
    message = f'<p id="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Contoso Demo</title></head>
<body><main><h1>Sign in</h1><p>Graph emulator (dev only). Demo password: see devtools/graph_emulator/README.md.</p>
{message}<form method="post">{hidden}
<label>Username <input id="username" name="username" type="email" autocomplete="username" value="{hint}"></label>
<label>Password or Temporary Access Pass <input id="password" name="password" type="password"
autocomplete="current-password"></label>
<button id="signin" type="submit">Sign in</button></form></main></body></html>"""
    return web.Response(text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; "
                                 "form-action 'self' http://localhost:* http://127.0.0.1:*"})


def _redirect(uri: str, mode: str, values: dict[str, str]) -> web.Response:
    if mode == "form_post":
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in values.items())
        return web.Response(content_type="text/html", text=(
            f'<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
            f'action="{html.escape(uri)}">{fields}<noscript><button>Continue</button></noscript></form></body></html>'))
    separator = "#" if mode == "fragment" else ("&" if "?" in uri else "?")
    raise web.HTTPFound(f"{uri}{separator}{urlencode(values)}")


def _client_error(message: str) -> web.Response:
    return web.Response(status=400, text=f"<!doctype html><p>{html.escape(message)}</p>", content_type="text/html")


async def authorize(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (error := tenant_or_error(request)) is not None:
        return error
    params = dict(request.query) if request.method == "GET" else {k: str(v) for k, v in (await request.post()).items()}
    tenant = state.tenant
    app = tenant.apps.get(params.get("client_id", "").lower())
    redirect_uri = params.get("redirect_uri", "")
    if app is None:
        return _client_error(f"AADSTS700016: Application with identifier '{params.get('client_id')}' was not found.")
    if not _local_redirect(redirect_uri):
        return _client_error("AADSTS50011: The redirect URI must be an http(s) URL on localhost or 127.0.0.1 "
                             "in the emulator.")
    mode = params.get("response_mode") or "query"
    reply = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, mode, {**reply, "error": "unsupported_response_type",
                                              "error_description": "AADSTS70005: only response_type=code"})
    try:
        delegated_grant(tenant, app, params.get("scope", ""))
    except TokenError as err:
        return _redirect(redirect_uri, mode, {**reply, "error": "invalid_scope" if err.error != "invalid_grant"
                                              else "consent_required",
                                              "error_description": f"AADSTS{err.code}: {err.description}"})
    if request.method == "GET":
        return _page(params)
    try:
        user = sign_in(tenant, params.get("username", ""), params.get("password", ""), allow_pass=True)
    except TokenError as err:
        return _page(params, f"AADSTS{err.code}: {err.description}")
    code = secrets.token_urlsafe(32)
    state.auth_codes[code] = PendingCode(
        client_id=app.app_id, redirect_uri=redirect_uri, user_id=user.id, scope=params.get("scope", ""),
        code_challenge=params.get("code_challenge"), challenge_method=params.get("code_challenge_method", "plain"),
        nonce=params.get("nonce"), expires_at=time.monotonic() + CODE_LIFETIME_S)
    return _redirect(redirect_uri, mode, {"code": code, **reply, "session_state": b64url(secrets.token_bytes(12))})


def authorization_code(state: EmulatorState, issuer: str, form: dict[str, str]) -> dict[str, Any]:
    """Redeem a code from /authorize once, checking client, redirect_uri and the PKCE verifier."""
    tenant = state.tenant
    app = authenticate_client(tenant, form, secret_required=False)
    pending = state.auth_codes.pop(form.get("code", ""), None)
    if pending is None or pending.expires_at < time.monotonic():
        raise TokenError(400, "invalid_grant", 70008,
                         "The provided authorization code or refresh token has expired due to inactivity or was "
                         "already redeemed. Send a new interactive authorization request for this user and resource.")
    if pending.client_id != app.app_id or pending.redirect_uri != form.get("redirect_uri", ""):
        raise TokenError(400, "invalid_grant", 50148 if pending.client_id == app.app_id else 70002,
                         "The redirect_uri or client_id does not match the authorization request.")
    if pending.code_challenge is not None:
        verifier = form.get("code_verifier", "")
        expected = (b64url(hashlib.sha256(verifier.encode()).digest()) if pending.challenge_method == "S256"
                    else verifier)
        if not verifier or not secrets.compare_digest(expected, pending.code_challenge):
            raise TokenError(400, "invalid_grant", 501481,
                             "The Code_Verifier does not match the code_challenge supplied in the authorization "
                             "request.")
    user = tenant.users.get(pending.user_id)
    if user is None or not user.account_enabled:
        raise TokenError(400, "invalid_grant", 50057, "The user account is disabled.")
    grant = delegated_grant(tenant, app, form.get("scope") or pending.scope)
    return user_tokens(state, issuer, app, user, grant, nonce=pending.nonce)


@web.middleware
async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
    """SPA sign-in (MSAL.js) calls discovery, keys and token endpoints cross-origin."""
    identity_path = not request.path.startswith(("/v1.0/", "/_emulator/"))
    if identity_path and request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if identity_path:
            exc.headers.update(CORS_HEADERS)
        raise
    if identity_path:
        response.headers.update(CORS_HEADERS)
    return response


GRANTS["authorization_code"] = authorization_code


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", authorize)
    app.router.add_post("/{tenant}/oauth2/v2.0/authorize", authorize)
