"""GET /api/health through the local host: 200 with both dependencies up, 503 naming the one that is down."""

from __future__ import annotations

import time

import httpx

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT, free_port
from devtools.stack import (
    SERVICE_APP_SECRET,
    FunctionHost,
    GraphEmulator,
    app_settings,
    azurite_running,
    host_running,
    start_function_host,
)


def _poll_until(url: str, status: int, seconds: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(url, timeout=10)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_many_requests_share_one_probe(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    before = _organization_calls(graph_emulator)
    for _ in range(20):
        assert httpx.get(f"{service_host.base_url}/api/health", timeout=10).status_code == 200
    assert _organization_calls(graph_emulator) - before <= 2  # 20 anonymous requests, at most 2 Graph calls


def _organization_calls(emulator: GraphEmulator) -> int:
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats", timeout=10).json()
    return sum(n for route, n in stats["graph"]["byRoute"].items() if "/organization" in route)


def test_health_reports_storage_graph_and_version(service_host: FunctionHost) -> None:
    response = httpx.get(f"{service_host.base_url}/api/health", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["graph"]["status"] == "ok"
    assert SERVICE_APP_SECRET not in response.text and "AccountKey" not in response.text


def test_health_needs_no_key(service_host: FunctionHost) -> None:
    assert httpx.get(f"{service_host.base_url}/api/health", timeout=10).status_code == 200


def test_health_goes_503_when_azurite_stops_and_recovers_when_it_returns(graph_emulator: GraphEmulator) -> None:
    with azurite_running("sspr-azurite-health-") as azurite, \
            host_running(app_settings(azurite, graph_emulator)) as host:
        url = f"{host.base_url}/api/health"
        assert httpx.get(url, timeout=10).status_code == 200
        azurite.stop()
        down = _poll_until(url, 503)  # the probe result is reused for up to 5 s
        assert down.json()["checks"]["storage"]["status"] == "unavailable"
        assert down.json()["checks"]["graph"]["status"] == "ok"
        assert "AccountKey" not in down.text and "Traceback" not in down.text
        azurite.start()
        assert _poll_until(url, 200).status_code == 200


def test_health_goes_503_when_graph_is_unreachable(azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = app_settings(azurite, graph_emulator, SSPR_AUTHORITY_HOST=nowhere, SSPR_GRAPH_BASE_URL=f"{nowhere}/v1.0")
    with host_running(settings) as host:
        response = httpx.get(f"{host.base_url}/api/health", timeout=10)
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["graph"] == {"status": "unavailable", "latencyMs": checks["graph"]["latencyMs"], "reason": "unreachable"}
        assert checks["storage"]["status"] == "ok"


def test_the_app_refuses_to_start_with_a_bad_setting_and_names_it(azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    settings = app_settings(azurite, graph_emulator, SSPR_CORS_ALLOWED_ORIGINS="*")
    try:
        host = start_function_host(REPO_ROOT, settings, timeout=30)
    except RuntimeError as exc:
        assert "SSPR_CORS_ALLOWED_ORIGINS: a wildcard origin is refused" in str(exc)
    else:
        host.stop()
        raise AssertionError("the host started with a wildcard CORS origin")
