"""The Graph adapter: the real msgraph-sdk over HTTP against the emulator, retries and error translation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.processes import free_port
from devtools.stack import DEMO_TENANT_ID, SERVICE_APP_ID, GraphEmulator, app_settings
from shared.adapters.credentials import LocalAuthorityCredential, graph_credential
from shared.adapters.graph import GraphGateway
from shared.config import Settings, load_settings
from shared.errors import GraphError, GraphUnavailable

OTHER_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
OTHER_APP_SECRET = "dev-other-app-secret"


def settings_for(emulator_url: str, timeout_seconds: str = "5") -> Settings:
    port = int(emulator_url.rsplit(":", 1)[1])
    unused_storage = Azurite(Path("/nonexistent"), 9, 9, 9)  # never reached: these tests only call Graph
    values = app_settings(unused_storage, GraphEmulator(None, port), SSPR_GRAPH_TIMEOUT_SECONDS=timeout_seconds)  # type: ignore[arg-type]
    return load_settings(values)


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
    settings = settings_for(emulator.base_url)
    gateway = GraphGateway.create(settings, graph_credential(settings))
    try:
        org = await gateway.organization()
    finally:
        await gateway.close()
    assert org.id == DEMO_TENANT_ID
    assert org.display_name == "Contoso Demo"
    assert "contoso.example" in org.verified_domains


async def test_a_429_with_retry_after_is_waited_out_and_then_succeeds(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 429, "retryAfter": 1, "times": 2, "pathContains": "/organization"})
    settings = settings_for(emulator.base_url)
    gateway = GraphGateway.create(settings, graph_credential(settings))
    started = time.monotonic()
    try:
        org = await gateway.organization()
    finally:
        await gateway.close()
    assert org.id == DEMO_TENANT_ID
    assert time.monotonic() - started >= 2.0, "the SDK did not wait Retry-After twice"
    assert await organization_requests(emulator) == 3


async def test_a_persistent_503_becomes_graph_unavailable(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 503, "retryAfter": 1, "pathContains": "/organization"})
    settings = settings_for(emulator.base_url)
    gateway = GraphGateway.create(settings, graph_credential(settings))
    try:
        with pytest.raises(GraphUnavailable):
            await gateway.organization()
    finally:
        await gateway.close()
    assert await organization_requests(emulator) == 6  # the first try and 5 retries


async def test_a_403_is_not_retried_and_carries_only_the_code(emulator: GraphEmulator) -> None:
    settings = settings_for(emulator.base_url)
    credential = LocalAuthorityCredential(emulator.base_url, DEMO_TENANT_ID, OTHER_APP_ID, OTHER_APP_SECRET)
    gateway = GraphGateway.create(settings, credential)
    try:
        with pytest.raises(GraphError) as caught:
            await gateway.organization()
    finally:
        await gateway.close()
        await credential.close()
    assert (caught.value.status, caught.value.code) == (403, "Authorization_RequestDenied")
    assert await organization_requests(emulator) == 1


async def test_an_unreachable_graph_is_unavailable_not_a_crash() -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}")
    gateway = GraphGateway.create(settings, graph_credential(settings))
    try:
        with pytest.raises(GraphUnavailable):
            await gateway.organization()
    finally:
        await gateway.close()


async def test_a_wrong_client_secret_is_unavailable_without_echoing_it(emulator: GraphEmulator) -> None:
    settings = settings_for(emulator.base_url)
    credential = LocalAuthorityCredential(emulator.base_url, DEMO_TENANT_ID, SERVICE_APP_ID, "wrong-secret-value")
    gateway = GraphGateway.create(settings, credential)
    try:
        with pytest.raises(GraphUnavailable) as caught:
            await gateway.organization()
    finally:
        await gateway.close()
        await credential.close()
    assert "wrong-secret-value" not in str(caught.value)


async def test_a_transient_500_is_retried_like_503(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 500, "times": 1, "pathContains": "/organization"})
    settings = settings_for(emulator.base_url)
    gateway = GraphGateway.create(settings, graph_credential(settings))
    try:
        assert (await gateway.organization()).id == DEMO_TENANT_ID
    finally:
        await gateway.close()
    assert await organization_requests(emulator) == 2


async def test_a_long_retry_after_is_cut_at_the_call_deadline(emulator: GraphEmulator) -> None:
    await set_faults(emulator, {"status": 429, "retryAfter": 30, "pathContains": "/organization"})
    settings = settings_for(emulator.base_url, timeout_seconds="1")  # deadline: 6 request timeouts = 6 s
    gateway = GraphGateway.create(settings, graph_credential(settings))
    started = time.monotonic()
    try:
        with pytest.raises(GraphUnavailable):
            await gateway.organization()
    finally:
        await gateway.close()
    assert 5 <= time.monotonic() - started < 10
