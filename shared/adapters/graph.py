"""The service's one door to Microsoft Graph: msgraph-sdk over httpx, bounded, retried, errors translated.

The SDK's retry middleware retries 429/503/504 honouring `Retry-After` (security.md F5); a semaphore bounds
concurrent calls per process so scale-out stays inside the tenant's Graph quota (G4). SDK errors become
`GraphError` / `GraphUnavailable` (shared/errors.py) so no Graph error body ever reaches a response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.organization.organization_request_builder import OrganizationRequestBuilder
from msgraph_core import GraphClientFactory

from shared.config import Settings
from shared.errors import GraphError, GraphUnavailable

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRY = RetryHandlerOption(delay=0.5, max_retries=5, should_retry=True)

T = TypeVar("T")


@dataclass(frozen=True)
class Organization:
    id: str
    display_name: str
    verified_domains: tuple[str, ...]


class GraphGateway:
    """Typed Graph calls the services need; each goes through `_call` (bound, translated)."""

    def __init__(self, client: GraphServiceClient, http: httpx.AsyncClient, max_concurrency: int) -> None:
        self._client = client
        self._http = http
        self._slots = asyncio.Semaphore(max_concurrency)

    @classmethod
    def create(cls, settings: Settings, credential: AsyncTokenCredential) -> GraphGateway:
        host = urlsplit(settings.graph_base_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
        timeout = httpx.Timeout(settings.graph_timeout_seconds, connect=min(5.0, settings.graph_timeout_seconds))
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(timeout=timeout), options={RETRY.get_key(): RETRY}
        )
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = settings.graph_base_url
        return cls(GraphServiceClient(request_adapter=adapter), http, settings.graph_max_concurrency)

    @property
    def sdk(self) -> GraphServiceClient:
        return self._client

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            try:
                return await operation()
            except APIError as exc:
                status = exc.response_status_code or 0
                error = getattr(exc, "error", None)
                code = getattr(error, "code", None) or "unknown"
                if status == 429 or status >= 500:
                    raise GraphUnavailable(f"Graph answered {status} {code} after retries") from None
                raise GraphError(status, code) from None
            except (httpx.HTTPError, ClientAuthenticationError) as exc:
                raise GraphUnavailable(f"Graph unreachable: {type(exc).__name__}") from None

    async def organization(self) -> Organization:
        """GET /organization: the tenant's id, name and verified domains."""
        query = OrganizationRequestBuilder.OrganizationRequestBuilderGetQueryParameters(
            select=["id", "displayName", "verifiedDomains"]
        )
        config = RequestConfiguration(query_parameters=query)
        page = await self._call(lambda: self._client.organization.get(request_configuration=config))
        if page is None or not page.value:
            raise GraphError(404, "Request_ResourceNotFound")
        org = page.value[0]
        domains = tuple(d.name for d in (org.verified_domains or []) if d.name)
        return Organization(id=org.id or "", display_name=org.display_name or "", verified_domains=domains)

    async def warm_up(self) -> None:
        """Pay the SDK's lazy imports (request builders, models, serializers) now, not in a user's request."""
        try:
            await self.organization()
        except (GraphError, GraphUnavailable):
            pass  # warming is best effort; health reports reachability

    async def close(self) -> None:
        await self._http.aclose()
