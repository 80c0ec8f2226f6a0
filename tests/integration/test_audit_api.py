"""GET /api/manage/audit through the local host: who may read it, filters, paging, CSV, bad input."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.stack import FunctionHost, GraphEmulator, app_settings
from shared.adapters.audit_store import AuditStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from tests.integration.tokens import bearer, user_token

ADMIN = "admin@contoso.example"
READER = "reader@contoso.example"
CASEY = "casey@contoso.example"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def seeded(azurite: Azurite, graph_emulator: GraphEmulator) -> dict[str, str]:
    """Seven events across three days for one fresh target user, plus one whose reason looks like a formula."""
    user = str(uuid.uuid4())
    storage = StorageClients.from_settings(load_settings(app_settings(azurite, graph_emulator)))
    store = AuditStore(storage)
    actor = Actor("c0ffee00-5e1f-4ea5-b0a7-000000001001", "admin@contoso.example")
    try:
        for i in range(6):
            await store.write(AuditEvent(
                time=NOW - timedelta(days=i // 2, minutes=i), activity=Activity.FLOW_PROGRESS,
                service=AuditService.SSPR, actor=actor, target_user_id=user, method="email", flow_id=f"flow-{i}",
                client_ip="203.0.113.7", details={"step": i},
            ))
        await store.write(AuditEvent(
            time=NOW - timedelta(minutes=30), activity=Activity.BLOCKED, service=AuditService.SSPR, actor=actor,
            outcome=Outcome.FAILURE, target_user_id=user, reason="=HYPERLINK(\"http://evil\")",
        ))
    finally:
        await storage.close()
    return {"user": user}


def get(host: FunctionHost, emulator: GraphEmulator, upn: str | None, **params: str) -> httpx.Response:
    headers = bearer(user_token(emulator, upn)) if upn else {}
    return httpx.get(f"{host.base_url}/api/manage/audit", params=params, headers=headers, timeout=15)


def test_no_token_is_401_problem_with_www_authenticate(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = get(service_host, graph_emulator, None)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"] == "urn:sspr:problem:unauthenticated"


def test_a_user_without_an_admin_role_is_403(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = get(service_host, graph_emulator, CASEY)
    assert response.status_code == 403
    assert response.json()["type"] == "urn:sspr:problem:forbidden"


def test_a_reader_finds_a_users_events_newest_first(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                                    seeded: dict[str, str]) -> None:
    response = get(service_host, graph_emulator, READER, user=seeded["user"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    events = response.json()["value"]
    assert len(events) == 7
    times = [e["time"] for e in events]
    assert times == sorted(times, reverse=True)
    assert events[0]["activity"] == "Self-service password reset flow activity progress"
    assert {e["targetUserId"] for e in events} == {seeded["user"]}


def test_activity_filter_and_paging_cover_every_event_once(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                                           seeded: dict[str, str]) -> None:
    blocked = get(service_host, graph_emulator, ADMIN, user=seeded["user"],
                  activity="Blocked from self-service password reset").json()["value"]
    assert [e["outcome"] for e in blocked] == ["failure"]
    seen: list[str] = []
    continuation = None
    pages = 0
    while True:
        params = {"user": seeded["user"], "pageSize": "2"}
        if continuation:
            params["continuation"] = continuation
        body = get(service_host, graph_emulator, ADMIN, **params).json()
        seen.extend(e["flowId"] or e["activity"] for e in body["value"])
        pages += 1
        continuation = body["continuation"]
        if not continuation:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    assert pages >= 4


def test_csv_export_parses_back_and_neutralises_formulas(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                                         seeded: dict[str, str]) -> None:
    response = get(service_host, graph_emulator, ADMIN, user=seeded["user"], format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 7
    [blocked] = [r for r in rows if r["activity"] == "Blocked from self-service password reset"]
    assert blocked["reason"].startswith("'=HYPERLINK")
    steps = sorted(json.loads(r["details"])["step"] for r in rows if r["details"])  # JSON, not Python's repr
    assert steps == [0, 1, 2, 3, 4, 5]


async def test_events_name_their_target_and_a_upn_finds_them(azurite: Azurite, service_host: FunctionHost,
                                                              graph_emulator: GraphEmulator) -> None:
    """Names are read for the whole page at once; a UPN is searched as its user's object id."""
    sven = "c0ffee00-5e1f-4ea5-b0a7-000000001004"
    storage = StorageClients.from_settings(load_settings(app_settings(azurite, graph_emulator)))
    try:
        await AuditStore(storage).write(AuditEvent(
            time=datetime.now(UTC), activity=Activity.DELETED_INFO, service=AuditService.AUTH_METHODS,
            actor=Actor(sven, "sven@contoso.example"), target_user_id=sven, method="email"))
    finally:
        await storage.close()
    found = get(service_host, graph_emulator, READER, user="Sven@Contoso.example").json()["value"]
    assert found and {(e["targetUserId"], e["targetDisplayName"], e["targetUserPrincipalName"]) for e in found} == {
        (sven, "Sven Svensson", "sven@contoso.example")}
    assert get(service_host, graph_emulator, READER, user="nobody.here@contoso.example").json()["value"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"user": "not-a-guid"}, "user"),
        ({"user": "two@at@signs"}, "user"),
        ({"activity": "Dance"}, "activity"),
        ({"pageSize": "0"}, "pageSize"),
        ({"from": "2026-11-01T00:00:00"}, "from"),
        ({"continuation": "garbage!"}, "continuation"),
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
        ({"sort": "asc"}, "sort"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_field(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                                       params: dict[str, str], field: str) -> None:
    response = get(service_host, graph_emulator, ADMIN, **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "urn:sspr:problem:invalid-request"
    assert field in [e["field"] for e in body["errors"]]
