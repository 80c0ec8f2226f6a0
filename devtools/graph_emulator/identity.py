"""Entra-shaped identity endpoints: OIDC discovery, JWKS, the v2 token endpoint, and Graph token checks.

Tokens are RS256 v2 access tokens signed with the emulator's own keys; issuer ``<base>/<tenantId>/v2.0``.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from .errors import GraphError
from .identity_keys import SigningKey, b64url
from .state import STATE, EmulatorState
from .tenant import App, Tenant, User, iso, utc_now

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TOKEN_LIFETIME = 3600
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
TENANT_ALIASES = frozenset({"common", "organizations"})


# ---- token errors ------------------------------------------------------------------------------------


class TokenError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description

    def response(self) -> web.Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = iso(utc_now())
        return web.json_response(
            {"error": self.error,
             "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                                  f"Correlation ID: {correlation} Timestamp: {stamp}",
             "error_codes": [self.code], "timestamp": stamp, "trace_id": trace, "correlation_id": correlation,
             "error_uri": f"https://login.microsoftonline.com/error?code={self.code}"},
            status=self.status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# ---- issuing -------------------------------------------------------------------------------------------


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid})


def base_claims(issuer: str, tenant_id: str, lifetime: int = TOKEN_LIFETIME) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "iat": now, "nbf": now, "exp": now + lifetime, "tid": tenant_id, "ver": "2.0",
            "uti": b64url(uuid.uuid4().bytes), "rh": "0.emulator."}


@dataclass(slots=True)
class Resource:
    """What a scope names: Microsoft Graph, or one of the tenant's apps (an API)."""

    audience: str
    app: App | None  # None for Graph
    identifier: str  # as written in the scope, e.g. api://<guid> or https://graph.microsoft.com

    @property
    def is_graph(self) -> bool:
        return self.app is None


def parse_scope(tenant: Tenant, scope: str) -> tuple[Resource | None, list[str], list[str]]:
    """Split a v2 scope string into (resource, scope names on it, OIDC scopes)."""
    resource: Resource | None = None
    names: list[str] = []
    oidc: list[str] = []
    for item in scope.split():
        if item in OIDC_SCOPES:
            oidc.append(item)
            continue
        if "/" in item and not item.startswith("/"):
            identifier, _, name = item.rpartition("/")
        else:
            identifier, name = GRAPH_RESOURCE, item
        found = resolve_resource(tenant, identifier)
        if found is None:
            raise TokenError(400, "invalid_resource", 500011,
                             f"The resource principal named {identifier} was not found in the tenant named "
                             f"{tenant.display_name}. This can happen if the application has not been installed "
                             f"by the administrator of the tenant or consented to by any user in the tenant.")
        if resource is not None and resource.audience != found.audience:
            raise TokenError(400, "invalid_request", 28000,
                             "Provided value for the input parameter scope is not valid because it contains more "
                             "than one resource. Scope " + scope + " is not valid.")
        resource = found
        names.append(name)
    return resource, names, oidc


def resolve_resource(tenant: Tenant, identifier: str) -> Resource | None:
    ident = identifier.rstrip("/")
    if ident.lower() in (GRAPH_RESOURCE, GRAPH_APP_ID, "https://graph.microsoft.com/v1.0"):
        return Resource(GRAPH_RESOURCE, None, GRAPH_RESOURCE)
    app_id = ident[len("api://"):] if ident.lower().startswith("api://") else ident
    app = tenant.apps.get(app_id.lower())
    return None if app is None else Resource(app.app_id, app, identifier)


def authenticate_client(tenant: Tenant, form: dict[str, str], *, secret_required: bool) -> App:
    client_id = form.get("client_id", "").lower()
    if not client_id:
        raise TokenError(400, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'client_id'.")
    app = tenant.apps.get(client_id)
    if app is None:
        raise TokenError(400, "unauthorized_client", 700016,
                         f"Application with identifier '{client_id}' was not found in the directory "
                         f"'{tenant.display_name}'. This can happen if the application has not been installed "
                         f"by the administrator of the tenant or consented to by any user in the tenant.")
    secret = form.get("client_secret")
    if app.public_client:
        if secret_required:
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        return app
    if not secret:
        raise TokenError(401, "invalid_client", 7000218,
                         "The request body must contain the following parameter: 'client_assertion' or "
                         "'client_secret'.")
    if secret != app.secret:
        raise TokenError(401, "invalid_client", 7000215,
                         "Invalid client secret provided. Ensure the secret being sent in the request is the "
                         f"client secret value, not the client secret ID, for a secret added to app '{app.app_id}'.")
    return app


def client_credentials(state: EmulatorState, issuer: str, form: dict[str, str]) -> dict[str, Any]:
    tenant = state.tenant
    app = authenticate_client(tenant, form, secret_required=True)
    scope = form.get("scope", "")
    if not scope:
        raise TokenError(400, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'scope'.")
    resource, names, _ = parse_scope(tenant, scope)
    if resource is None or names != [".default"]:
        raise TokenError(400, "invalid_scope", 1002012,
                         f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                         "scope value with /.default suffixed to the resource identifier (application ID URI).")
    roles = app.graph_permissions if resource.is_graph else app.api_permissions.get(resource.audience, [])
    claims = base_claims(issuer, tenant.id)
    claims.update({"aud": resource.audience, "azp": app.app_id, "azpacr": "1", "idtyp": "app",
                   "oid": app.service_principal_id, "sub": app.service_principal_id})
    if roles:
        claims["roles"] = list(roles)
    if resource.is_graph:
        claims.update({"app_displayname": app.display_name, "appid": app.app_id})
    token = sign(claims, state.keys.current)
    return {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME - 1, "ext_expires_in": TOKEN_LIFETIME - 1,
            "access_token": token}


def pairwise_sub(user_id: str, client_id: str) -> str:
    return b64url(hashlib.sha256(f"{user_id}|{client_id}".encode()).digest())


def sign_in(tenant: Tenant, username: str, password: str, allow_pass: bool = False) -> User:
    """The user these credentials prove, or the AADSTS error Entra would give. With `allow_pass` (the browser
    sign-in) the user's usable Temporary Access Pass stands in for the password (authentication_methods.py)."""
    user = tenant.find_user(username)
    if user is None:
        raise TokenError(400, "invalid_grant", 50034,
                         f"The user account {{EUII Hidden}} does not exist in the {tenant.id} directory. To sign "
                         "into this application, the account must be added to the directory.")
    if allow_pass and tenant.auth_methods.redeem(user.id, password, utc_now()):
        pass  # the pass proves the user (a one-time pass is used up now)
    elif password != tenant.password_of(user):
        raise TokenError(400, "invalid_grant", 50126,
                         "Error validating credentials due to invalid username or password.")
    if not user.account_enabled:
        raise TokenError(400, "invalid_grant", 50057, "The user account is disabled.")
    if user.force_change:
        raise TokenError(400, "invalid_grant", 50055, "The password is expired.")
    return user


@dataclass(slots=True)
class DelegatedGrant:
    resource: Resource
    scopes: list[str]  # granted scope names on the resource, e.g. ["access_as_user"]
    oidc: list[str]


def delegated_grant(tenant: Tenant, app: App, scope: str) -> DelegatedGrant:
    """Resolve a user-flow scope string against what the client app has been consented."""
    resource, names, oidc = parse_scope(tenant, scope or "openid profile")
    if resource is None:
        resource, names = Resource(GRAPH_RESOURCE, None, GRAPH_RESOURCE), ["User.Read"]
    consented = app.delegated.get(resource.audience, [])
    granted = list(consented) if names == [".default"] else names
    if not granted or any(n not in consented for n in granted):
        raise TokenError(400, "invalid_grant", 65001,
                         f"The user or administrator has not consented to use the application with ID "
                         f"'{app.app_id}' named '{app.display_name}'. Send an interactive authorization request "
                         f"for this user and resource.")
    return DelegatedGrant(resource, granted, oidc)


def preferred_language_claim(user: User) -> dict[str, str]:
    """The optional claim `xms_pl` (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference:
    "User preferred language ... if set", formatted LL-CC, e.g. "en-us"), as an app that asked for it in its
    optionalClaims gets it in ID and access tokens; absent when the user has no preferred language."""
    language = user.graph_property("preferredLanguage")
    return {"xms_pl": str(language).lower()} if language else {}


def user_tokens(state: EmulatorState, issuer: str, app: App, user: User, grant: DelegatedGrant,
                nonce: str | None = None) -> dict[str, Any]:
    """Access token (and id_token with openid) for a signed-in user, as the v2 token endpoint returns them."""
    resource = grant.resource
    claims = base_claims(issuer, state.tenant.id)
    claims.update({"aud": resource.audience, "azp": app.app_id, "azpacr": "0" if app.public_client else "1",
                   "name": user.graph_property("displayName"), "oid": user.id, "preferred_username": user.upn,
                   "scp": " ".join(grant.scopes), "sub": pairwise_sub(user.id, app.app_id),
                   "aio": b64url(uuid.uuid4().bytes)})
    claims.update(preferred_language_claim(user))
    if not resource.is_graph:
        roles = state.tenant.app_roles_of_user(user.id, resource.audience)
        if roles:
            claims["roles"] = roles
    result: dict[str, Any] = {
        "token_type": "Bearer", "scope": " ".join(f"{resource.identifier}/{n}" for n in grant.scopes),
        "expires_in": TOKEN_LIFETIME - 1, "ext_expires_in": TOKEN_LIFETIME - 1,
        "access_token": sign(claims, state.keys.current),
    }
    if "openid" in grant.oidc:
        result["id_token"] = id_token(state, issuer, user, app, nonce)
    if "offline_access" in grant.oidc:
        result["refresh_token"] = b64url(uuid.uuid4().bytes) + ".emulator-refresh-token-not-redeemable"
    return result


def resource_owner_password(state: EmulatorState, issuer: str, form: dict[str, str]) -> dict[str, Any]:
    tenant = state.tenant
    app = authenticate_client(tenant, form, secret_required=False)
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        missing = "username" if not username else "password"
        raise TokenError(400, "invalid_request", 900144,
                         f"The request body must contain the following parameter: '{missing}'.")
    grant = delegated_grant(tenant, app, form.get("scope", ""))
    return user_tokens(state, issuer, app, sign_in(tenant, username, password), grant)


def id_token(state: EmulatorState, issuer: str, user: User, app: App, nonce: str | None = None) -> str:
    claims = base_claims(issuer, state.tenant.id)
    claims.update({"aud": app.app_id, "name": user.graph_property("displayName"), "oid": user.id,
                   "preferred_username": user.upn, "sub": pairwise_sub(user.id, app.app_id),
                   **preferred_language_claim(user)})
    if nonce:
        claims["nonce"] = nonce
    return sign(claims, state.keys.current)


Grant = Callable[[EmulatorState, str, dict[str, str]], dict[str, Any]]
# Token endpoint grant types; authorize.py adds "authorization_code".
GRANTS: dict[str, Grant] = {"client_credentials": client_credentials, "password": resource_owner_password}


# ---- validating tokens sent to Graph -------------------------------------------------------------------


def validate_graph_token(state: EmulatorState, issuer: str, authorization: str | None) -> dict[str, Any]:
    """Claims of a valid Graph access token, else GraphError 401 InvalidAuthenticationToken."""
    if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    token = authorization[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise GraphError(401, "InvalidAuthenticationToken",
                         "IDX14100: JWT is not well formed, there are no dots (.).") from None
    key = state.keys.find(header.get("kid"))
    if key is None or header.get("alg") != "RS256":
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature.")
    try:
        return jwt.decode(token, key.private_key.public_key(), algorithms=["RS256"], audience=GRAPH_RESOURCE,
                          issuer=issuer, options={"require": ["exp", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.") from None
    except jwt.InvalidAudienceError:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.") from None
    except jwt.InvalidIssuerError:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.") from None
    except jwt.ImmatureSignatureError:
        raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is not yet valid.") from None
    except jwt.PyJWTError:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None


# ---- routes --------------------------------------------------------------------------------------------


def _tenant_matches(tenant: Tenant, segment: str) -> bool:
    segment = segment.lower()
    return segment == tenant.id or segment in TENANT_ALIASES or segment in tenant.domains


def _check_tenant(request: web.Request) -> EmulatorState:
    state = request.app[STATE]
    state.stats.identity[f"{request.method} {request.match_info.route.resource.canonical}"] += 1  # type: ignore[union-attr]
    if not _tenant_matches(state.tenant, request.match_info["tenant"]):
        raise TokenError(400, "invalid_tenant", 90002,
                         f"Tenant '{request.match_info['tenant']}' not found. Check to make sure you have the "
                         "correct tenant ID and are signing into the correct cloud.")
    return state


def tenant_or_error(request: web.Request) -> web.Response | None:
    """Count the identity request; an Entra-shaped error when the path names another tenant."""
    try:
        _check_tenant(request)
    except TokenError as err:
        return err.response()
    return None


async def openid_configuration(request: web.Request) -> web.Response:
    if (error := tenant_or_error(request)) is not None:
        return error
    state = request.app[STATE]
    base, tid = state.origin(request), state.tenant.id
    return web.json_response({
        "issuer": state.issuer(request),
        "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
        "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
        "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "grant_types_supported": sorted(GRANTS),
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "preferred_username",
                             "tid", "ver", "azp", "roles", "scp"],
        "tenant_region_scope": "EU", "cloud_instance_name": "emulator.local", "request_uri_parameter_supported": False,
    })


async def jwks(request: web.Request) -> web.Response:
    if (error := tenant_or_error(request)) is not None:
        return error
    return web.json_response(request.app[STATE].keys.jwks())


async def token(request: web.Request) -> web.Response:
    try:
        state = _check_tenant(request)
        if request.content_type != "application/x-www-form-urlencoded":
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'grant_type'.")
        form = {k: str(v) for k, v in (await request.post()).items()}
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", client_id)
            form.setdefault("client_secret", secret)
        grant = form.get("grant_type", "")
        if not grant:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'grant_type'.")
        if grant not in GRANTS:
            raise TokenError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant}'.")
        body = GRANTS[grant](state, state.issuer(request), form)
    except TokenError as err:
        return err.response()
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", jwks)
    app.router.add_get("/{tenant}/discovery/keys", jwks)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
