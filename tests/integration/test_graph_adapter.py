"""The Graph adapter: the real msgraph-sdk over HTTP against the emulator, retries and error translation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.processes import free_port
from devtools.stack import DEMO_TENANT_ID, SERVICE_APP_ID, SERVICE_APP_SECRET, GraphEmulator, app_settings
from shared.adapters.credentials import LocalAuthorityCredential, graph_credential
from shared.adapters.graph import GraphGateway, GraphUsers
from shared.config import Settings, load_settings
from shared.errors import GraphError, GraphUnavailable
from tests.integration.tokens import app_token

OTHER_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
OTHER_APP_SECRET = "dev-other-app-secret"
PILOT = "c0ffee00-5e1f-4ea5-b0a7-000000002001"


def settings_for(emulator_url: str, timeout_seconds: str = "5") -> Settings:
    port = int(emulator_url.rsplit(":", 1)[1])
    unused_storage = Azurite(Path("/nonexistent"), 9, 9, 9)  # never reached: these tests only call Graph
    values = app_settings(unused_storage, GraphEmulator(None, port), SSPR_GRAPH_TIMEOUT_SECONDS=timeout_seconds)  # type: ignore[arg-type]
    return load_settings(values)


@asynccontextmanager
async def gateway_on(emulator_url: str, timeout_seconds: str = "5") -> AsyncIterator[GraphGateway]:
    """The service's Graph gateway to the emulator at `emulator_url`, closed on exit."""
    settings = settings_for(emulator_url, timeout_seconds)
    gateway = GraphGateway.create(settings, graph_credential(settings))
    try:
        yield gateway
    finally:
        await gateway.close()


@pytest.fixture
async def emulator(graph_emulator: GraphEmulator) -> AsyncIterator[GraphEmulator]:
    async with httpx.AsyncClient(base_url=graph_emulator.base_url) as http:
        await http.post("/_emulator/reset")
        yield graph_emulator
        await http.post("/_emulator/reset")


async def set_faults(emulator: GraphEmulator, *rules: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        response = await http.put("/_emulator/faults", json={"rules": list(rules)})
        response.raise_for_status()


async def organization_requests(emulator: GraphEmulator) -> int:
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        stats = (await http.get("/_emulator/stats")).json()
    return sum(count for key, count in stats["graph"]["byRoute"].items() if "/organization" in key)


async def test_the_organization_is_read_through_the_sdk(emulator: GraphEmulator) -> None:
    async with gateway_on(emulator.base_url) as gateway:
        org = await gateway.organization()
    assert org.id == DEMO_TENANT_ID
    assert org.display_name == "Contoso Demo"
    assert "contoso.example" in org.verified_domains


async def test_a_429_with_retry_after_is_waited_out_and_then_succeeds(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 429, "retryAfter": 1, "times": 2, "pathContains": "/organization"})
    async with gateway_on(emulator.base_url) as gateway:
        started = time.monotonic()
        org = await gateway.organization()
    assert org.id == DEMO_TENANT_ID
    assert time.monotonic() - started >= 2.0, "the SDK did not wait Retry-After twice"
    assert await organization_requests(emulator) == 3


async def organization_fails(graph_url: str, error: type[Exception], app_id: str = SERVICE_APP_ID,
                             secret: str | None = None) -> pytest.ExceptionInfo[Any]:
    """What GET /organization raises for the app `app_id` (with `secret`, or the service's own credential)."""
    settings = settings_for(graph_url)
    credential = (graph_credential(settings) if secret is None else
                  LocalAuthorityCredential(graph_url, DEMO_TENANT_ID, app_id, secret))
    gateway = GraphGateway.create(settings, credential)
    try:
        with pytest.raises(error) as caught:
            await gateway.organization()
    finally:
        await gateway.close()
        await credential.close()
    return caught


async def test_a_persistent_503_becomes_graph_unavailable(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 503, "retryAfter": 1, "pathContains": "/organization"})
    await organization_fails(emulator.base_url, GraphUnavailable)
    assert await organization_requests(emulator) == 6  # the first try and 5 retries


async def test_a_403_is_not_retried_and_carries_only_the_code(emulator: GraphEmulator) -> None:
    caught = await organization_fails(emulator.base_url, GraphError, OTHER_APP_ID, OTHER_APP_SECRET)
    assert (caught.value.status, caught.value.code) == (403, "Authorization_RequestDenied")
    assert await organization_requests(emulator) == 1


async def test_an_unreachable_graph_is_unavailable_not_a_crash() -> None:
    await organization_fails(f"http://127.0.0.1:{free_port()}", GraphUnavailable)


async def test_a_wrong_client_secret_is_unavailable_without_echoing_it(emulator: GraphEmulator) -> None:
    caught = await organization_fails(emulator.base_url, GraphUnavailable, SERVICE_APP_ID, "wrong-secret-value")
    assert "wrong-secret-value" not in str(caught.value)


async def test_a_transient_500_is_retried_like_503(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 500, "times": 1, "pathContains": "/organization"})
    async with gateway_on(emulator.base_url) as gateway:
        assert (await gateway.organization()).id == DEMO_TENANT_ID
    assert await organization_requests(emulator) == 2


async def test_a_long_retry_after_is_cut_at_the_call_deadline(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 429, "retryAfter": 30, "pathContains": "/organization"})
    async with gateway_on(emulator.base_url, timeout_seconds="1") as gateway:  # deadline: 6 request timeouts = 6 s
        started = time.monotonic()
        with pytest.raises(GraphUnavailable):
            await gateway.organization()
    assert 5 <= time.monotonic() - started < 10


# ---- where Microsoft's Graph documentation asks more than a lenient emulator would ---------------------------


@pytest.fixture
async def gateway(emulator: GraphEmulator) -> AsyncIterator[GraphGateway]:
    async with gateway_on(emulator.base_url) as built:
        yield built


async def test_the_gateway_parts_share_one_client_and_keep_the_old_names(gateway: GraphGateway) -> None:
    assert isinstance(gateway.users, GraphUsers)
    parts = (gateway.users, gateway.groups, gateway.tenant, gateway.reports, gateway.mail)
    assert {id(part._graph) for part in parts} == {id(gateway.client)}
    by_part = await gateway.users.reset_user("casey@contoso.example")
    assert by_part is not None and by_part == await gateway.reset_user("casey@contoso.example")


async def test_directory_roles_send_the_advanced_query_settings_of_a_cast(gateway: GraphGateway) -> None:
    assert await gateway.directory_roles("admin@contoso.example") == ["Global Administrator"]
    assert await gateway.users.directory_roles("casey@contoso.example") == []


async def test_a_groups_cast_sends_the_advanced_query_settings_on_every_page(
        emulator: GraphEmulator, gateway: GraphGateway) -> None:
    first = await gateway.enablement_page(PILOT, None, with_count=False)  # the re-sync's first page: no count asked
    assert first.users and first.count is None
    token = app_token(emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, resource="https://graph.microsoft.com")
    listed = httpx.get(f"{emulator.graph_url}/groups/{PILOT}/transitiveMembers/microsoft.graph.user",
                       params={"$select": "id", "$top": "2", "$count": "true"}, timeout=10,
                       headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"})
    next_link = listed.json()["@odata.nextLink"]  # a nextLink as Graph writes it: the header is the caller's
    second = await gateway.enablement_page(PILOT, next_link, with_count=False)
    assert len(second.users) == 2 and second.next_link
    bare = next_link.replace("$count=true&", "").replace("&$count=true", "")  # a nextLink without $count
    assert bare != next_link and len((await gateway.enablement_page(PILOT, bare, with_count=False)).users) == 2


async def users_delta_link(gateway: GraphGateway) -> str:
    page = await gateway.users_delta_page(None)
    while page.delta_link is None:
        assert page.next_link is not None
        page = await gateway.users_delta_page(page.next_link)
    return page.delta_link


async def test_an_expired_delta_token_is_a_lost_sync_state_like_410(
        emulator: GraphEmulator, gateway: GraphGateway) -> None:
    users_link = await users_delta_link(gateway)
    groups_link = (await gateway.groups_delta_page([PILOT], None)).delta_link
    assert groups_link is not None
    httpx.post(f"{emulator.base_url}/_emulator/reset", timeout=10).raise_for_status()  # Graph: 400 syncStateNotFound
    with pytest.raises(GraphError) as users_lost:
        await gateway.users_delta_page(users_link)
    with pytest.raises(GraphError) as groups_lost:
        await gateway.groups_delta_page([PILOT], groups_link)
    assert (users_lost.value.status, users_lost.value.code) == (410, "syncStateNotFound")
    assert (groups_lost.value.status, groups_lost.value.code) == (410, "syncStateNotFound")

    users_link = await users_delta_link(gateway)
    httpx.post(f"{emulator.base_url}/_emulator/delta/resync", timeout=10).raise_for_status()  # Graph: 410 Gone
    with pytest.raises(GraphError) as resync:
        await gateway.users_delta_page(users_link)
    assert resync.value.status == 410


async def test_the_registration_report_is_asked_only_with_documented_options(gateway: GraphGateway) -> None:
    entries, next_link = await gateway.user_registration_details_page(None)
    assert entries and {"id", "isSsprRegistered", "isSsprCapable", "methodsRegistered"} <= set(entries[0])
    assert next_link is None or next_link.startswith("http")
