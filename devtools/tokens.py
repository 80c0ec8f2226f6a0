"""Real Entra-shaped tokens from the emulator (and the sign-in event Entra posts with one), for tests and benchmarks
that act as a user, an app or an attacker."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from devtools.stack import DEMO_TENANT_ID, PAGES_APP_ID, SERVICE_APP_ID, SERVICE_APP_SECRET, GraphEmulator

AUTH_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
AUTH_EVENTS_SECRET = "dev-authevents-secret"  # the emulator's public dev secret
OTHER_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
OTHER_APP_SECRET = "dev-other-app-secret"
DEMO_PASSWORD = "Demo-Pass-2026!"
API_SCOPE = f"api://{SERVICE_APP_ID}/access_as_user"
GRAPH_RESOURCE = "https://graph.microsoft.com"

_cache: dict[tuple[str, str], str] = {}


def user_token(emulator: GraphEmulator, upn: str, password: str = DEMO_PASSWORD) -> str:
    """An access token for this API as the user signed in through the pages app (password grant)."""
    key = (emulator.base_url, upn)
    if key not in _cache or password != DEMO_PASSWORD:
        response = httpx.post(
            f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
            data={"grant_type": "password", "client_id": PAGES_APP_ID, "username": upn,
                  "password": password, "scope": API_SCOPE},
            timeout=10,
        )
        response.raise_for_status()
        token = str(response.json()["access_token"])
        if password != DEMO_PASSWORD:
            return token
        _cache[key] = token
    return _cache[key]


def app_token(emulator: GraphEmulator, client_id: str, secret: str, resource: str = SERVICE_APP_ID) -> str:
    """A client-credentials token of `client_id` for `resource`."""
    response = httpx.post(
        f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
              "scope": f"{resource}/.default"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def graph_token(emulator: GraphEmulator) -> str:
    """The service app's own Graph token (client credentials), as the service holds it."""
    return app_token(emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, GRAPH_RESOURCE)


def events_token(emulator: GraphEmulator) -> str:
    """The authentication-events app's token for this API: what Entra signs a sign-in hook call with."""
    return app_token(emulator, AUTH_EVENTS_APP_ID, AUTH_EVENTS_SECRET)


def crafted_token(emulator: GraphEmulator, claims: dict[str, Any], *, expires_in: int = 3600,
                  sign_with: str = "current", header: dict[str, Any] | None = None) -> str:
    """A token with exactly these claim changes, signed by the tenant's key, an unknown key, or nothing."""
    response = httpx.post(
        f"{emulator.base_url}/_emulator/tokens",
        json={"claims": claims, "expiresIn": expires_in, "signWith": sign_with, "header": header or {}},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_issuance_start(user_id: str) -> dict[str, Any]:
    """Entra's OnTokenIssuanceStart payload for a member signing in, as the sign-in hook receives it."""
    return {"type": "microsoft.graph.authenticationEvent.tokenIssuanceStart",
            "source": f"/tenants/{DEMO_TENANT_ID}/applications/{SERVICE_APP_ID}",
            "data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartCalloutData", "tenantId": DEMO_TENANT_ID,
                     "authenticationContext": {"correlationId": str(uuid.uuid4()), "protocol": "OAUTH2.0",
                                               "client": {"ip": "30.51.176.110", "locale": "en-us"},
                                               "user": {"id": user_id, "userType": "Member",
                                                        "userPrincipalName": "user@contoso.example"}}}}
