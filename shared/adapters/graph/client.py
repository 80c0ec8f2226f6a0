"""The one Graph client every part shares: msgraph-sdk over httpx, bounded, retried, errors translated.

The SDK's retry middleware retries 429 honouring `Retry-After` and every transient 5xx with backoff; other
statuses are never retried (security.md F5). A semaphore bounds concurrent calls per process so scale-out
stays inside the tenant's Graph quota (G4). SDK errors become `GraphError` / `GraphUnavailable`
(shared/errors.py) so no Graph error body ever reaches a response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.config import Settings
from shared.errors import GraphError, GraphUnavailable

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRY = RetryHandlerOption(delay=0.5, max_retries=5, should_retry=True)
# F5: throttling and every transient 5xx are retried (the SDK's default leaves out 500 and 502).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# However many Retry-After waits Graph asks for, one call gives up after this many request timeouts: a user's
# request must not hang for the SDK's worst case (5 waits of up to 180 s); queue work is redelivered instead.
CALL_DEADLINE_TIMEOUTS = 6

T = TypeVar("T")


def next_link(body: dict[str, Any]) -> str | None:
    """A page's `@odata.nextLink`, or None on the last page."""
    link = body.get("@odata.nextLink")
    return link if isinstance(link, str) else None


class GraphClient:
    """The SDK client and its httpx transport, and `call`: every Graph request goes through it."""

    def __init__(self, client: GraphServiceClient, http: httpx.AsyncClient, max_concurrency: int,
                 call_deadline_seconds: float = 60.0) -> None:
        self.sdk = client
        self._http = http
        self._slots = asyncio.Semaphore(max_concurrency)
        self._deadline = call_deadline_seconds

    @classmethod
    def create(cls, settings: Settings, credential: AsyncTokenCredential) -> GraphClient:
        host = urlsplit(settings.graph_base_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
        timeout = httpx.Timeout(settings.graph_timeout_seconds, connect=min(5.0, settings.graph_timeout_seconds))
        middleware = KiotaClientFactory.get_default_middleware({RETRY.get_key(): RETRY})
        for handler in middleware:
            if isinstance(handler, RetryHandler):
                handler.retry_on_status_codes = set(RETRY_STATUSES)
        http = GraphClientFactory.create_with_custom_middleware(middleware, client=httpx.AsyncClient(timeout=timeout))
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = settings.graph_base_url
        return cls(GraphServiceClient(request_adapter=adapter), http, settings.graph_max_concurrency,
                   call_deadline_seconds=settings.graph_timeout_seconds * CALL_DEADLINE_TIMEOUTS)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK operation inside the concurrency bound and the call deadline, errors translated."""
        async with self._slots:
            try:
                async with asyncio.timeout(self._deadline):
                    return await operation()
            except TimeoutError:
                raise GraphUnavailable(f"Graph did not answer within {self._deadline:.0f} s") from None
            except APIError as exc:
                status = exc.response_status_code or 0
                error = getattr(exc, "error", None)
                code = getattr(error, "code", None) or "unknown"
                if status == 429 or status >= 500:
                    raise GraphUnavailable(f"Graph answered {status} {code} after retries") from None
                raise GraphError(status, code) from None
            except (httpx.HTTPError, ClientAuthenticationError) as exc:
                raise GraphUnavailable(f"Graph unreachable: {type(exc).__name__}") from None

    @property
    def base_url(self) -> str:
        """The Graph base URL without a trailing slash (https://graph.microsoft.com/v1.0 in production)."""
        return str(self.sdk.request_adapter.base_url).rstrip("/")

    def check_link(self, link: str) -> str:
        """A stored nextLink / deltaLink, refused unless it points inside the Graph base URL: a tampered
        checkpoint row never sends the app's token anywhere else."""
        if not link.startswith(self.base_url + "/"):
            raise GraphError(400, "cursor_outside_graph")
        return link

    async def get_json(self, info: RequestInformation) -> dict[str, Any]:
        """Send a request through the SDK's adapter (auth, retries, errors) and parse the body with `json`:
        the SDK's model parsing costs milliseconds per object, minutes for a 100,000-user tenant."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        send: Any = self.sdk.request_adapter.send_primitive_async
        raw = await self.call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
        return body if isinstance(body, dict) else {}

    async def pages(self, first: RequestInformation,
                    follow: Callable[[str], RequestInformation]) -> AsyncIterator[list[dict[str, Any]]]:
        """The objects (`value`) of each page of a list: `first`, then `follow(link)` of each page's nextLink
        (checked to stay inside Graph) until the last page."""
        request: RequestInformation | None = first
        while request is not None:
            body = await self.get_json(request)
            yield [item for item in body.get("value") or [] if isinstance(item, dict)]
            link = next_link(body)
            request = follow(self.check_link(link)) if link else None

    async def send_no_content(self, info: RequestInformation) -> None:
        """Send a request whose answer has no body (a PATCH written as plain JSON)."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        send: Any = self.sdk.request_adapter.send_no_response_content_async
        await self.call(lambda: send(info, {"XXX": ODataError}))

    async def close(self) -> None:
        await self._http.aclose()


class GraphPart:
    """Base of each use-case part: the shared client, held once."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    @property
    def _sdk(self) -> GraphServiceClient:
        return self._graph.sdk

    async def _found(self, operation: Callable[[], Awaitable[T]], missing: tuple[int, ...] = (404,)) -> T | None:
        """`operation()`'s answer, or None when Graph answers that the object is not there (`missing`)."""
        try:
            return await operation()
        except GraphError as error:
            if error.status in missing:
                return None
            raise

    def _user_request(self, user_id: str, select: list[str]) -> RequestInformation:
        """GET /users/{id}?$select=..., for `get_json`."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=select)
        return self._sdk.users.by_user_id(user_id).to_get_request_information(
            RequestConfiguration(query_parameters=query))
