"""Names and marks read from Graph through the real SDK against the emulator: groups by name with their counts and
pages, many users' names in one $batch, a UPN's id, and the company branding, read once, per language, with its
plain fallback when the tenant has none or Graph cannot be read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.stack import GraphEmulator
from shared.adapters.graph import GraphGateway
from shared.services.branding import BrandingService
from tests.fixtures import own_emulator
from tests.integration.test_graph_adapter import gateway_on, set_faults

CASEY = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
SVEN = "c0ffee00-5e1f-4ea5-b0a7-000000001004"


# An emulator of this module's own: its tests take the branding away and fail Graph, which no other module may see.
graph_emulator = own_emulator("module", "graph_emulator")


@pytest.fixture
async def gateway(graph_emulator: GraphEmulator) -> AsyncIterator[GraphGateway]:
    async with httpx.AsyncClient(base_url=graph_emulator.base_url) as http:
        try:
            async with gateway_on(graph_emulator.base_url) as gateway:
                yield gateway
        finally:
            await http.post("/_emulator/reset")


async def graph_calls(emulator: GraphEmulator, part: str) -> int:
    async with httpx.AsyncClient(base_url=emulator.base_url) as http:
        stats = (await http.get("/_emulator/stats")).json()
    return sum(n for key, n in stats["graph"]["byRoute"].items() if part in key)


async def test_groups_are_searched_by_name_paged_by_skiptoken_and_counted(gateway: GraphGateway) -> None:
    first = await gateway.search_groups("", None, 2)
    assert [g.display_name for g in first.groups] == ["All Staff (generated)", "Finance - Auditors"]
    assert first.total == 5 and first.skiptoken is not None
    second = await gateway.search_groups("", first.skiptoken, 2)
    assert [g.display_name for g in second.groups] == ["SSPR Helpdesk Readers", "SSPR Pilot"]
    auditors = (await gateway.search_groups('Audi"tors\\', None, 10)).groups  # quotes and backslashes escaped
    assert auditors == []
    found = (await gateway.search_groups("auditors", None, 10)).groups
    assert [(g.display_name, g.user_count) for g in found] == [("Finance - Auditors", 2)]


async def test_many_users_names_come_in_one_batch_and_a_upn_names_its_id(graph_emulator: GraphEmulator,
                                                                       gateway: GraphGateway) -> None:
    before = await graph_calls(graph_emulator, "$batch")
    unknown = [f"0000{n:04x}-0000-0000-0000-000000000000" for n in range(28)]
    names = await gateway.user_names([CASEY, SVEN, *unknown])  # 30 ids: two filters of 15 in one $batch
    assert await graph_calls(graph_emulator, "$batch") == before + 1
    assert {k: (v.display_name, v.user_principal_name) for k, v in names.items()} == {
        CASEY: ("Casey Jensen", "casey@contoso.example"), SVEN: ("Sven Svensson", "sven@contoso.example")}
    assert await gateway.user_id_by_upn("Sven@Contoso.example") == SVEN
    assert await gateway.user_id_by_upn("nobody.here@contoso.example") is None


async def test_the_branding_is_read_once_per_language_with_its_images(graph_emulator: GraphEmulator,
                                                                    gateway: GraphGateway) -> None:
    branding = BrandingService(gateway, lambda: datetime.now(UTC))
    english, swedish = await branding.brand("en"), await branding.brand("sv")
    assert english.name == swedish.name == "Contoso Demo"
    assert english.background_colour == "#0B3D6B" and english.ink == "#ffffff"
    assert english.sign_in_text and english.sign_in_text.startswith("Contoso IT never asks")
    assert swedish.sign_in_text and swedish.sign_in_text.startswith("Contosos IT ber aldrig")
    assert english.logo is not None and english.logo.content_type == "image/png"
    assert english.background is not None and swedish.background == english.background  # sv has none of its own
    before = await graph_calls(graph_emulator, "/organization")
    await branding.brand("sv")
    assert await graph_calls(graph_emulator, "/organization") == before, "read once, then kept"


async def test_without_branding_or_graph_the_pages_fall_back_to_the_plain_look(graph_emulator: GraphEmulator,
                                                                             gateway: GraphGateway) -> None:
    async with httpx.AsyncClient(base_url=graph_emulator.base_url) as http:
        (await http.put("/_emulator/branding", json={})).raise_for_status()
    plain = await BrandingService(gateway, lambda: datetime.now(UTC)).brand("sv")
    assert (plain.name, plain.logo, plain.sign_in_text, plain.background_colour) == ("Contoso Demo", None, None, None)

    now = [datetime.now(UTC)]
    branding = BrandingService(gateway, lambda: now[0])
    await set_faults(graph_emulator, {"status": 403, "code": "Authorization_RequestDenied", "pathContains": "/organization"})
    down = await branding.brand("en")
    assert (down.name, down.logo) == ("", None)
    await set_faults(graph_emulator)
    now[0] += branding.retry_after + timedelta(seconds=1)  # a passing outage does not stick
    assert (await branding.brand("en")).name == "Contoso Demo"
