"""Real Entra-shaped tokens from the emulator, for tests that act as a user, an app or an attacker."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.stack import DEMO_TENANT_ID, SERVICE_APP_ID, GraphEmulator

PAGES_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a2"
AUTH_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
AUTH_EVENTS_SECRET = "dev-authevents-secret"
OTHER_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
OTHER_APP_SECRET = "dev-other-app-secret"
DEMO_PASSWORD = "Demo-Pass-2026!"
API_SCOPE = f"api://{SERVICE_APP_ID}/access_as_user"

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
