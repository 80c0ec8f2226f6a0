"""Scope re-sync from Graph delta, against Azurite, an emulator of its own (these tests change the tenant) and a host.

Enablement runs go through the host's admin API and queue worker; the re-sync runs in the test process with the
real stores and Graph gateway (a fixed number of ticks, no waiting for timers), and once through the host's timer.
The oracle is always a fresh enablement run: after a sync tick the Enablement rows must equal what it writes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from devtools.azurite import Azurite
from devtools.stack import MASTER_KEY, SERVICE_APP_ID, FunctionHost, GraphEmulator, app_settings, host_running
from shared.adapters.audit_store import AuditStore
from shared.adapters.credentials import graph_credential
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.graph import GraphGateway
from shared.adapters.policy_store import PolicyStore
from shared.adapters.storage import StorageClients
from shared.adapters.sync_store import Phase, SyncStore
from shared.config import load_settings
from shared.services.scope_sync import ScopeSyncService
from tests.fixtures import own_emulator
from tests.integration.test_enablement import enable, wait_until_finished
from tests.integration.tokens import bearer, graph_token, user_token

PREFIX = "scopesync"
PILOT = "c0ffee00-5e1f-4ea5-b0a7-000000002001"
FINANCE = "c0ffee00-5e1f-4ea5-b0a7-000000002002"
AUDITORS = "c0ffee00-5e1f-4ea5-b0a7-000000002003"
CASEY = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
SVEN = "c0ffee00-5e1f-4ea5-b0a7-000000001004"
NILS = "c0ffee00-5e1f-4ea5-b0a7-00000000100c"  # in no group
SYNCED_ACTIVITY = "Synchronize self-service password reset scope"


emulator = own_emulator("module", "emulator")


@pytest.fixture(scope="module")
def settings(azurite: Azurite, emulator: GraphEmulator) -> dict[str, str]:
    return app_settings(azurite, emulator, SSPR_TABLE_PREFIX=PREFIX, FUNCHOST_DISABLE_TIMERS="1")


@pytest.fixture(scope="module")
def host(settings: dict[str, str]) -> Iterator[FunctionHost]:
    with host_running(settings) as own:
        yield own


@pytest.fixture
async def syncer(settings: dict[str, str]) -> AsyncIterator[ScopeSyncService]:
    config = load_settings(settings)
    storage = StorageClients.from_settings(config)
    graph = GraphGateway.create(config, graph_credential(config))
    yield ScopeSyncService(SyncStore(storage), EnablementStore(storage), PolicyStore(storage), graph,
                           AuditStore(storage), lambda: datetime.now(UTC))
    await graph.close()
    await storage.close()


def rows(azurite: Azurite) -> dict[str, tuple[str, str, str | None, str]]:
    """The Enablement table as a reader sees it: user id -> (partition, scope, group, user type)."""
    with TableClient.from_connection_string(azurite.connection_string, f"{PREFIX}Enablement") as client:
        return {e["RowKey"]: (e["PartitionKey"], e["scope"], e.get("groupId"), e["userType"])
                for e in client.list_entities()}


def fresh_run_rows(host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, body: dict[str, Any]) -> dict[str, Any]:
    run = enable(host, emulator, body)
    assert run["state"] == "completed", run
    return rows(azurite)


def control(emulator: GraphEmulator, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    response = httpx.request(method, f"{emulator.base_url}/_emulator{path}", json=body, timeout=10)
    assert response.status_code < 300, response.text
    return response


def sync_state(azurite: Azurite) -> dict[str, Any]:
    with TableClient.from_connection_string(azurite.connection_string, f"{PREFIX}ScopeSync") as client:
        return dict(client.get_entity("delta", "users"))


def audited_syncs(host: FunctionHost, emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{host.base_url}/api/manage/audit", params={"activity": SYNCED_ACTIVITY},
                          headers=bearer(user_token(emulator, "reader@contoso.example")), timeout=15).json()["value"])


async def test_selected_scope_picks_up_joins_leaves_and_disabled_users_like_a_fresh_run(
        host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, syncer: ScopeSyncService) -> None:
    selected = {"scope": "selected", "groupId": PILOT}
    enabled = fresh_run_rows(host, emulator, azurite, selected)
    assert CASEY in enabled and SVEN in enabled and NILS not in enabled

    first = await syncer.sync()
    assert first.skipped is None and first.delta_link_reached and first.changed == 0, first
    assert rows(azurite) == enabled
    assert sync_state(azurite)["phase"] == Phase.CHANGES.value

    control(emulator, "PUT", f"/groups/{AUDITORS}/members/{NILS}")  # two levels below SSPR Pilot
    control(emulator, "DELETE", f"/groups/{PILOT}/members/{CASEY}")
    control(emulator, "PATCH", f"/users/{SVEN}", {"accountEnabled": False})
    audits_before = len(audited_syncs(host, emulator))

    tick = await syncer.sync()
    assert (tick.added, tick.updated, tick.removed) == (1, 0, 2), tick
    synced = rows(azurite)
    assert NILS in synced and CASEY not in synced and SVEN not in synced
    again = await syncer.sync()
    assert again.changed == 0 and again.delta_link_reached, again
    assert rows(azurite) == synced
    [event] = audited_syncs(host, emulator)[: len(audited_syncs(host, emulator)) - audits_before]
    assert (event["details"]["added"], event["details"]["removed"]) == (1, 2)

    assert fresh_run_rows(host, emulator, azurite, selected) == synced
    # The new run is a new baseline: the next tick starts the delta over and changes nothing.
    after_run = await syncer.sync()
    assert after_run.changed == 0 and after_run.delta_link_reached and after_run.users >= 68, after_run
    assert rows(azurite) == synced


def graph_call(emulator: GraphEmulator, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """A Graph request as the service app (client credentials), e.g. the member changes an admin makes."""
    token = graph_token(emulator)
    url = path if path.startswith("http") else f"{emulator.graph_url}{path}"
    return httpx.request(method, url, json=body, headers=bearer(token), timeout=10)


def group_state(azurite: Azurite) -> dict[str, Any]:
    with TableClient.from_connection_string(azurite.connection_string, f"{PREFIX}ScopeSync") as client:
        return dict(client.get_entity("delta", "groups"))


async def test_selected_scope_follows_the_groups_own_delta_for_joins_and_leaves_users_delta_does_not_report(
        host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, syncer: ScopeSyncService) -> None:
    control(emulator, "POST", "/reset")  # the demo tenant as it ships (an earlier test changed the pilot)
    selected = {"scope": "selected", "groupId": PILOT}
    enabled = fresh_run_rows(host, emulator, azurite, selected)
    baseline = await syncer.sync()
    assert baseline.changed == 0 and baseline.delta_link_reached, baseline
    followed = group_state(azurite)
    assert followed["phase"] == Phase.CHANGES.value
    assert set(followed["groups"].split(",")) == {PILOT, FINANCE, AUDITORS}  # the group and those nested in it
    helpdesk = control(emulator, "GET", "/users/helpdesk@contoso.example").json()["id"]
    assert NILS not in enabled and CASEY in enabled and helpdesk not in enabled
    control(emulator, "PATCH", f"/apps/{SERVICE_APP_ID}", {"graphPermissions": [
        *control(emulator, "PATCH", f"/apps/{SERVICE_APP_ID}", {}).json()["graphPermissions"],
        "GroupMember.ReadWrite.All"]})
    try:
        # Member changes through Graph itself: real Graph (and so the emulator) reports them in /groups/delta only.
        for group, user in ((PILOT, NILS), (AUDITORS, helpdesk)):
            added = graph_call(emulator, "POST", f"/groups/{group}/members/$ref",
                               {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"})
            assert added.status_code == 204, added.text
        assert graph_call(emulator, "DELETE", f"/groups/{PILOT}/members/{CASEY}/$ref").status_code == 204
        assert graph_call(emulator, "GET", sync_state(azurite)["link"]).json()["value"] == []  # users' delta: nothing

        tick = await syncer.sync()
        assert (tick.added, tick.updated, tick.removed) == (2, 0, 1), tick
        synced = rows(azurite)
        assert {NILS, helpdesk} <= set(synced) and CASEY not in synced
        assert (await syncer.sync()).changed == 0

        # A nested group leaving the group changes the nesting: every member is decided again from a full read.
        assert graph_call(emulator, "DELETE", f"/groups/{PILOT}/members/{FINANCE}/$ref").status_code == 204
        regrouped = await syncer.sync()
        assert regrouped.restarted and regrouped.removed >= 3, regrouped  # Finance's and Auditors' members
        assert group_state(azurite)["groups"] == PILOT  # nothing is nested in the group any more
        synced = rows(azurite)
        assert helpdesk not in synced and NILS in synced
        assert fresh_run_rows(host, emulator, azurite, selected) == synced
    finally:
        control(emulator, "POST", "/reset")  # the demo tenant as it was, for the tests after this one


async def test_all_scope_picks_up_a_created_user_and_drops_a_deleted_one(
        host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, syncer: ScopeSyncService) -> None:
    enabled = fresh_run_rows(host, emulator, azurite, {"scope": "all"})
    assert (await syncer.sync()).changed == 0

    created = control(emulator, "POST", "/users", {"userPrincipalName": "newbie@contoso.example",
                                                   "displayName": "Nora Newbie", "accountEnabled": True}).json()
    guest = control(emulator, "POST", "/users", {"userPrincipalName": "visitor_fabrikam.example#EXT#@contoso.example",
                                                 "userType": "Guest", "accountEnabled": True}).json()
    tick = await syncer.sync()
    assert (tick.added, tick.removed) == (1, 0), tick
    assert set(rows(azurite)) == set(enabled) | {created["id"]} and guest["id"] not in rows(azurite)
    assert rows(azurite)[created["id"]][1:] == ("all", None, "Member")

    control(emulator, "DELETE", f"/users/{created['id']}")
    gone = await syncer.sync()
    assert (gone.added, gone.removed) == (0, 1), gone
    assert rows(azurite) == enabled
    assert (await syncer.sync()).changed == 0


async def test_a_lost_delta_token_restarts_with_a_full_enumeration_that_repairs_the_table(
        host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, syncer: ScopeSyncService) -> None:
    selected = {"scope": "selected", "groupId": PILOT}
    fresh_run_rows(host, emulator, azurite, selected)
    assert (await syncer.sync()).delta_link_reached
    # The reset undoes earlier tests' changes (Casey back in the pilot, Sven enabled again) and Graph forgets every
    # delta token (410 syncStateNotFound): only a full enumeration can see what changed.
    control(emulator, "POST", "/reset")
    control(emulator, "PUT", f"/groups/{PILOT}/members/{NILS}")  # a change the lost token can no longer report

    restarted = await syncer.sync()
    assert restarted.restarted and restarted.delta_link_reached, restarted
    assert {NILS, CASEY, SVEN} <= set(rows(azurite))
    synced = rows(azurite)
    assert fresh_run_rows(host, emulator, azurite, selected) == synced
    control(emulator, "DELETE", f"/groups/{PILOT}/members/{NILS}")


async def test_a_tick_while_an_enablement_run_is_going_is_skipped(
        host: FunctionHost, emulator: GraphEmulator, azurite: Azurite, syncer: ScopeSyncService) -> None:
    fresh_run_rows(host, emulator, azurite, {"scope": "all"})
    control(emulator, "PUT", "/faults", {"rules": [{"latencyMs": 2000, "pathContains": "/users", "methods": ["GET"]}]})
    try:
        response = httpx.post(f"{host.base_url}/api/manage/enablement", json={"scope": "selected", "groupId": PILOT},
                              headers=bearer(user_token(emulator, "admin@contoso.example")), timeout=30)
        assert response.status_code == 202, response.text
        before = sync_state(azurite)
        skipped = await syncer.sync()
        assert skipped.skipped is not None and skipped.skipped.endswith(("is queued", "is running")), skipped
        assert skipped.pages == 0 and sync_state(azurite) == before
    finally:
        control(emulator, "DELETE", "/faults")
    assert wait_until_finished(host, emulator, response.json()["id"], 40)["state"] == "completed"


def test_both_timers_run_in_the_host_through_its_admin_api(host: FunctionHost, emulator: GraphEmulator,
                                                           azurite: Azurite) -> None:
    run = enable(host, emulator, {"scope": "all"})
    with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        ledger = service.create_table_if_not_exists(f"{PREFIX}Notifications")
        ledger.upsert_entity({"PartitionKey": "msg-long-ago", "RowKey": "mail", "state": "sent",
                              "at": datetime.now(UTC) - timedelta(days=30)})
        for name in ("sync_enablement_scope", "purge_expired_state"):
            fired = httpx.post(f"{host.base_url}/admin/functions/{name}", json={"input": ""},
                               headers={"x-functions-key": MASTER_KEY}, timeout=10)
            assert fired.status_code == 202, name
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = _sync_state_or_none(azurite)
            purged = not list(ledger.query_entities("PartitionKey eq 'msg-long-ago'"))
            if state is not None and state["runId"] == run["id"] and state["phase"] == "changes" and purged:
                return
            time.sleep(0.2)
    raise AssertionError(f"timers did not finish: sync state {_sync_state_or_none(azurite)}, ledger purged {purged}")


def _sync_state_or_none(azurite: Azurite) -> dict[str, Any] | None:
    try:
        return sync_state(azurite)
    except ResourceNotFoundError:
        return None
