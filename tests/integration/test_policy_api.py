"""GET/PUT /api/manage/policy through the local host on Azurite + the emulator, and the store and cache beneath it.

The module runs its own host with a table (and queue) prefix of its own, so "never saved" is a state these tests
control (each test starts by deleting the stored policy) and no other test module sees or changes this policy.
A scope change starts an enablement run: each test waits for its runs to finish, so the next test's scope change
is not refused with 409.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError

from devtools.azurite import Azurite, connection_string
from devtools.processes import free_port
from devtools.stack import FunctionHost, GraphEmulator, app_settings, azurite_running, host_running
from shared.adapters.audit_store import AuditQuery, AuditStore
from shared.adapters.policy_store import PolicyStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.audit import Activity, Actor, AuditEvent
from shared.domain.policy import DEFAULT_DOCUMENT, DEFAULT_POLICY, Policy
from shared.errors import PreconditionFailed, StorageUnavailable
from shared.services.policy import PolicyCache, PolicyService
from tests.integration.tokens import PAGES_APP_ID, bearer, crafted_token, user_token

ADMIN = "admin@contoso.example"
ADMIN_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001001"
READER = "reader@contoso.example"
CASEY = "casey@contoso.example"
SECOND_ADMIN_ID = "c0ffee00-5e1f-4ea5-b0a7-00000000beef"
GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002004"
PREFIX = "pol" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def settings(azurite: Azurite, graph_emulator: GraphEmulator) -> dict[str, str]:
    return app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=PREFIX)


@pytest.fixture(autouse=True)
def runs_settled(request: pytest.FixtureRequest, graph_emulator: GraphEmulator) -> Iterator[None]:
    """After a test that used the host, wait until the enablement runs its scope changes started have finished."""
    yield
    if "host" not in request.fixturenames:
        return
    host: FunctionHost = request.getfixturevalue("host")
    reader = bearer(user_token(graph_emulator, READER))
    deadline = time.monotonic() + 60
    while True:
        runs = httpx.get(f"{host.base_url}/api/manage/enablement", headers=reader, timeout=20).json()["value"]
        if all(r["state"] in ("completed", "failed") for r in runs):
            return
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)


@pytest.fixture(scope="module")
def host(settings: dict[str, str]) -> Iterator[FunctionHost]:
    with host_running(settings) as process:
        yield process


@pytest.fixture(scope="module")
async def storage(settings: dict[str, str]) -> AsyncIterator[StorageClients]:
    clients = StorageClients.from_settings(load_settings(settings))
    try:
        yield clients
    finally:
        await clients.close()


@pytest.fixture
async def never_saved(storage: StorageClients) -> None:
    """Start from a tenant where no admin ever saved a policy."""
    table = await storage.table_ready("Policy")
    try:
        await table.delete_entity("policy", "current")
    except ResourceNotFoundError:
        pass


@pytest.fixture(scope="module")
def admin(graph_emulator: GraphEmulator) -> dict[str, str]:
    return bearer(user_token(graph_emulator, ADMIN))


@pytest.fixture(scope="module")
def second_admin(graph_emulator: GraphEmulator) -> dict[str, str]:
    """Another SSPR.Admin (a token the tenant's key signed, for a second admin object id)."""
    return bearer(crafted_token(graph_emulator, {
        "aud": "c0ffee00-5e1f-4ea5-b0a7-0000000000a1", "azp": PAGES_APP_ID, "oid": SECOND_ADMIN_ID,
        "roles": ["SSPR.Admin"], "scp": "access_as_user", "preferred_username": "bea@contoso.example",
    }))


def url(host: FunctionHost) -> str:
    return f"{host.base_url}/api/manage/policy"


def changed(**top: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT_DOCUMENT)
    doc.update(top)
    return doc


def put(host: FunctionHost, headers: dict[str, str], body: Any, etag: str | None, **extra: str) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    sent = {**headers, "Content-Type": "application/json", **extra, **({"If-Match": etag} if etag else {})}
    return httpx.put(url(host), content=content, headers=sent, timeout=20)


async def policy_events(storage: StorageClients, since: datetime) -> list[AuditEvent]:
    query = AuditQuery(since - timedelta(seconds=5), datetime.now(UTC) + timedelta(seconds=5),
                       activity=Activity.POLICY_UPDATED)
    page = await AuditStore(storage).query(query, page_size=100)
    return page.events


# ---- reading ---------------------------------------------------------------------------------------------------

def test_an_admin_reads_the_defaults_with_a_never_saved_etag(host: FunctionHost, admin: dict[str, str],
                                                             never_saved: None) -> None:
    response = httpx.get(url(host), headers=admin, timeout=20)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"0"'
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == DEFAULT_DOCUMENT
    assert response.json()["scope"] == "none"


def test_a_reader_may_read_but_not_change(host: FunctionHost, graph_emulator: GraphEmulator, never_saved: None) -> None:
    reader = bearer(user_token(graph_emulator, READER))
    assert httpx.get(url(host), headers=reader, timeout=20).status_code == 200
    refused = put(host, reader, changed(scope="all"), '"0"')
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:sspr:problem:forbidden"
    assert httpx.get(url(host), headers=reader, timeout=20).headers["etag"] == '"0"'


def test_a_user_without_a_role_gets_403_and_no_token_gets_401(host: FunctionHost,
                                                              graph_emulator: GraphEmulator) -> None:
    casey = bearer(user_token(graph_emulator, CASEY))
    assert httpx.get(url(host), headers=casey, timeout=20).status_code == 403
    for response in (httpx.get(url(host), timeout=20), put(host, {}, changed(scope="all"), '"0"')):
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


# ---- changing --------------------------------------------------------------------------------------------------

async def test_an_admin_saves_a_policy_and_the_change_is_audited_with_old_and_new_values(
        host: FunctionHost, admin: dict[str, str], storage: StorageClients, never_saved: None) -> None:
    started = datetime.now(UTC)
    body = changed(scope="selected", groupId=GROUP, reconfirmDays=90,
                   codes={**DEFAULT_DOCUMENT["codes"], "length": 6},
                   helpdesk={**DEFAULT_DOCUMENT["helpdesk"], "url": "https://help.contoso.example/sspr"})
    response = await asyncio.to_thread(put, host, admin, body, '"0"', **{"X-Forwarded-For": "203.0.113.9:51234"})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json() == body

    read = await asyncio.to_thread(httpx.get, url(host), headers=admin, timeout=20)
    assert (read.headers["etag"], read.json()) == ('"1"', body)

    [event] = [e for e in await policy_events(storage, started) if e.details.get("version") == 1]
    assert event.actor.id == ADMIN_ID and event.actor.display == ADMIN
    assert event.client_ip == "203.0.113.9"
    assert event.details["old"] == {"scope": "none", "groupId": None, "reconfirmDays": 180, "codes.length": 8,
                                    "helpdesk.url": None}
    assert event.details["new"] == {"scope": "selected", "groupId": GROUP, "reconfirmDays": 90, "codes.length": 6,
                                    "helpdesk.url": "https://help.contoso.example/sspr"}


async def test_saving_the_same_policy_again_changes_nothing_and_audits_nothing(
        host: FunctionHost, admin: dict[str, str], storage: StorageClients, never_saved: None) -> None:
    first = await asyncio.to_thread(put, host, admin, changed(scope="all"), '"0"')
    assert first.headers["etag"] == '"1"'
    after_first = datetime.now(UTC)
    again = await asyncio.to_thread(put, host, admin, changed(scope="all"), '"1"')
    assert (again.status_code, again.headers["etag"]) == (200, '"1"')
    assert [e for e in await policy_events(storage, after_first) if e.time >= after_first] == []


def test_a_stale_etag_is_412_and_the_newer_policy_stays(host: FunctionHost, admin: dict[str, str],
                                                       never_saved: None) -> None:
    assert put(host, admin, changed(scope="all"), '"0"').status_code == 200
    stale = put(host, admin, changed(reconfirmDays=30), '"0"')
    assert stale.status_code == 412
    assert stale.json()["type"] == "urn:sspr:problem:precondition-failed"
    assert httpx.get(url(host), headers=admin, timeout=20).json() == changed(scope="all")
    for made_up in ('"99"', 'W/"1"', "1", '"abc"'):
        assert put(host, admin, changed(reconfirmDays=30), made_up).status_code == 412, made_up


def test_without_if_match_the_change_is_refused_with_428(host: FunctionHost, admin: dict[str, str],
                                                        never_saved: None) -> None:
    for etag in (None, "*"):
        response = put(host, admin, changed(scope="all"), etag)
        assert response.status_code == 428, etag
        assert response.json()["type"] == "urn:sspr:problem:precondition-required"
    assert httpx.get(url(host), headers=admin, timeout=20).headers["etag"] == '"0"'


async def test_two_admins_saving_from_the_same_read_one_wins_the_other_gets_412(
        host: FunctionHost, admin: dict[str, str], second_admin: dict[str, str], storage: StorageClients,
        never_saved: None) -> None:
    started = datetime.now(UTC)
    async with httpx.AsyncClient(timeout=20) as client:
        for round_number in range(1, 6):  # round 1 races two first saves (insert), later rounds two updates
            read = await client.get(url(host), headers=admin)
            etag = read.headers["etag"]
            # Neither changes the scope: two scope changes would also race for the enablement run slot (409).
            bodies = [changed(reconfirmDays=100 + round_number),
                      changed(daysUserMaySkip=round_number, notifyAdminsOnAdminReset=round_number % 2 == 0)]
            responses = await asyncio.gather(*(
                client.put(url(host), content=json.dumps(body),
                           headers={**who, "If-Match": etag, "Content-Type": "application/json"})
                for who, body in zip((admin, second_admin), bodies, strict=True)
            ))
            assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
            winner = bodies[[r.status_code for r in responses].index(200)]
            now = await client.get(url(host), headers=admin)
            assert now.headers["etag"] == f'"{round_number}"'
            assert now.json() == winner  # the whole winning document, nothing of the loser's
    events = [e for e in await policy_events(storage, started) if e.time >= started]
    assert sorted(e.details["version"] for e in events) == [1, 2, 3, 4, 5]  # the losers wrote nothing


# ---- bad input -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ('{"scope": "all",', 400, {"body"}),
        (changed(scope="all", enabledFor="everyone"), 400, {"enabledFor"}),
        (changed(methodsRequired="2", notifyUsersOnReset="yes"), 400, {"methodsRequired", "notifyUsersOnReset"}),
        (changed(scope="selected", groupId="not-a-guid"), 400, {"groupId"}),
        (changed(scope="selected"), 400, {"groupId"}),
        ([DEFAULT_DOCUMENT], 400, {"body"}),
        (json.dumps(changed(helpdesk={"url": "https://help.contoso.example/" + "a" * 17_000})), 413, set()),
    ],
    ids=["malformed-json", "unknown-field", "wrong-types", "group-not-guid", "selected-without-group", "not-an-object",
         "over-16-kib"],
)
async def test_bad_input_names_the_field_and_writes_nothing(
        host: FunctionHost, admin: dict[str, str], storage: StorageClients, never_saved: None,
        body: Any, status: int, fields: set[str]) -> None:
    started = datetime.now(UTC)
    response = await asyncio.to_thread(put, host, admin, body, '"0"')
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if fields:
        assert {e["field"] for e in response.json()["errors"]} == fields
    read = await asyncio.to_thread(httpx.get, url(host), headers=admin, timeout=20)
    assert read.headers["etag"] == '"0"'
    assert [e for e in await policy_events(storage, started) if e.time >= started] == []


def test_every_violated_rule_comes_back_in_one_answer(host: FunctionHost, admin: dict[str, str],
                                                      never_saved: None) -> None:
    body = changed(
        scope="all", groupId=GROUP, reconfirmDays=731,
        securityQuestions={"registerCount": 3, "resetCount": 5, "customQuestions": ["Pet?", "PET?"]},
        codes={"length": 12, "emailTtlMinutes": 16, "smsTtlMinutes": 5, "voiceTtlMinutes": 5},
    )
    response = put(host, admin, body, '"0"')
    assert response.status_code == 400
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert errors == {
        "groupId": "must be null unless scope is 'selected'",
        "reconfirmDays": "must be between 0 and 730 (0 = never)",
        "securityQuestions.resetCount": "must not be more than registerCount (3): a reset asks only questions the "
                                        "user registered",
        "securityQuestions.customQuestions": "question [1] repeats question [0] (case and spacing do not matter)",
        "codes.length": "must be between 6 and 10 digits",
        "codes.emailTtlMinutes": "must be between 1 and 15 minutes",
    }


def test_the_openapi_document_describes_both_operations(host: FunctionHost) -> None:
    spec = httpx.get(f"{host.base_url}/api/openapi.json", timeout=20).json()
    operations = spec["paths"]["/api/manage/policy"]
    assert set(operations) == {"get", "put"}
    assert {"412", "428", "413", "400"} <= set(operations["put"]["responses"])
    reconfirm = spec["components"]["schemas"]["Policy"]["properties"]["reconfirmDays"]
    assert (reconfirm["minimum"], reconfirm["maximum"]) == (0, 730)


# ---- the store and the cache beneath the API -------------------------------------------------------------------

async def test_of_ten_concurrent_saves_of_one_version_exactly_one_wins(storage: StorageClients,
                                                                     never_saved: None) -> None:
    store = PolicyStore(storage)
    for version in range(5):  # version 0: ten racing first saves (inserts); then ten racing updates
        candidates = [Policy.model_validate(changed(reconfirmDays=version * 10 + n)) for n in range(10)]
        results = await asyncio.gather(*(store.replace(p, f'"{version}"') for p in candidates),
                                       return_exceptions=True)
        assert sum(isinstance(r, PreconditionFailed) for r in results) == 9, results
        [winner] = [candidates[i] for i, r in enumerate(results) if r == f'"{version + 1}"']
        assert await store.get() == (winner, f'"{version + 1}"')


async def test_a_storage_outage_is_storage_unavailable(settings: dict[str, str]) -> None:
    dead = {**settings, "AzureWebJobsStorage": connection_string(free_port(), free_port(), free_port())}
    clients = StorageClients.from_settings(load_settings(dead))
    try:
        with pytest.raises(StorageUnavailable):
            await PolicyStore(clients).get()
        with pytest.raises(StorageUnavailable):
            await PolicyStore(clients).replace(DEFAULT_POLICY, '"0"')
    finally:
        await clients.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_the_cache_reads_storage_once_per_ttl_and_serves_the_last_policy_through_a_short_outage(
        graph_emulator: GraphEmulator) -> None:
    with azurite_running("sspr-azurite-policy-") as azurite:
        clients = StorageClients.from_settings(load_settings(app_settings(azurite, graph_emulator)))
        try:
            store, clock = PolicyStore(clients), Clock()
            cache = PolicyCache(store, clock, ttl=timedelta(seconds=30), max_stale=timedelta(minutes=5))
            assert await cache.get() == DEFAULT_POLICY
            saved = Policy.model_validate(changed(scope="all"))
            await store.replace(saved, '"0"')
            clock.now += timedelta(seconds=29)
            assert await cache.get() == DEFAULT_POLICY  # within the TTL: no storage read
            clock.now += timedelta(seconds=1)
            assert await cache.get() == saved

            azurite.stop()
            clock.now += timedelta(minutes=4)
            assert await cache.get() == saved  # storage down, last read 4 minutes ago: still served
            clock.now += timedelta(minutes=2)
            with pytest.raises(StorageUnavailable):
                await cache.get()  # 6 minutes stale: the caller must degrade
        finally:
            await clients.close()


async def test_a_save_through_the_policy_service_reaches_this_process_cache_at_once(storage: StorageClients,
                                                                                    never_saved: None) -> None:
    store, clock = PolicyStore(storage), Clock()
    cache = PolicyCache(store, clock, ttl=timedelta(seconds=30))
    service = PolicyService(store, AuditStore(storage), clock, cache=cache)
    assert await cache.get() == DEFAULT_POLICY
    saved = Policy.model_validate(changed(reconfirmDays=123))
    admin = Actor("c0ffee00-5e1f-4ea5-b0a7-000000001001", "admin@contoso.example")
    etag = (await service.update_policy(saved, '"0"', admin, None)).etag
    assert await cache.get() == saved  # no clock advance: the service forgot the cached copy itself
    await store.replace(DEFAULT_POLICY, etag)  # saved by another process: this cache keeps its copy for the TTL
    assert await cache.get() == saved
