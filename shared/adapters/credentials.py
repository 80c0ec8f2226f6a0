"""Credentials the service uses to get app tokens for Microsoft Graph.

In Azure: a managed identity or a client secret through azure-identity. Against the local Graph + identity
emulator: `LocalAuthorityCredential`, because azure-identity refuses authorities that are not https, and the
emulator is plain http on localhost. It speaks the same client-credentials grant as Entra's token endpoint.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.config import ConfigurationError, GraphCredentialKind, Settings
from shared.endpoints import is_loopback_url

# Ask for a new token this long before the old one expires.
REFRESH_MARGIN_SECONDS = 300


class LocalAuthorityCredential(AsyncTokenCredential):
    """Client-credentials tokens from an Entra-shaped token endpoint on localhost (the dev emulator only)."""

    def __init__(self, authority_host: str, tenant_id: str, client_id: str, client_secret: str) -> None:
        if not is_loopback_url(authority_host):
            raise ValueError("LocalAuthorityCredential only talks to an authority on localhost")
        self._token_url = f"{authority_host.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._cache: dict[str, AccessToken] = {}
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        scope = " ".join(scopes)
        cached = self._cache.get(scope)
        if cached and cached.expires_on - REFRESH_MARGIN_SECONDS > time.time():
            return cached
        async with self._lock:
            cached = self._cache.get(scope)
            if cached and cached.expires_on - REFRESH_MARGIN_SECONDS > time.time():
                return cached
            try:
                response = await self._http.post(
                    self._token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                        "scope": scope,
                    },
                )
            except httpx.HTTPError as exc:
                raise ClientAuthenticationError(message=f"token endpoint unreachable: {type(exc).__name__}") from None
            if response.status_code != 200:
                error = response.json().get("error", "unknown") if response.content else "unknown"
                raise ClientAuthenticationError(message=f"token endpoint refused the client: {error}")
            body = response.json()
            token = AccessToken(body["access_token"], int(time.time()) + int(body.get("expires_in", 3599)))
            self._cache[scope] = token
            return token

    async def close(self) -> None:
        await self._http.aclose()

    async def __aexit__(self, *args: Any) -> None:
        await self.close()


def graph_credential(settings: Settings) -> AsyncTokenCredential:
    """The credential the Graph client uses, chosen by the settings alone."""
    client_id = str(settings.api_client_id)
    tenant_id = str(settings.tenant_id)
    if settings.graph_uses_local_authority:
        return LocalAuthorityCredential(settings.authority_host, tenant_id, client_id, _client_secret(settings))
    if settings.graph_credential is GraphCredentialKind.CLIENT_SECRET:
        from azure.identity.aio import ClientSecretCredential

        return ClientSecretCredential(tenant_id, client_id, _client_secret(settings), authority=settings.authority_host)
    from azure.identity.aio import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)


def _client_secret(settings: Settings) -> str:
    """The Graph client secret; load_settings refuses these settings without one, so its absence is a broken
    Settings object built some other way, reported by setting name rather than as a failed sign-in later."""
    if settings.graph_client_secret is None:
        raise ConfigurationError(["SSPR_GRAPH_CLIENT_SECRET must be set for the configured Graph credential"])
    return settings.graph_client_secret
