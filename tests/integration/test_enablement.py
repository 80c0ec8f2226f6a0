"""Enablement end to end: admin requests through the local host, the queue worker, Graph (emulator) and Azurite.

The session host serves the demo tenant (68 users, one Graph page, and any user an earlier module of the same test
process added); the crash test runs its own Azurite, emulator with 5,000 users and host, so killing that host
disturbs nobody else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite
from devtools.stack import FunctionHost, GraphEmulator, host_running, private_stack
from devtools.tenant import directory_users, enabled_member_ids, set_faults
from tests.integration.tokens import bearer, user_token

ADMIN = "admin@contoso.example"
READER = "reader@contoso.example"
PILOT = "c0ffee00-5e1f-4ea5-b0a7-000000002001"
PILOT_USERS = {f"c0ffee00-5e1f-4ea5-b0a7-00000000{n}" for n in
               ("1003", "1004", "1008", "1007", "100e", "100f", "1006", "1010")}
DISABLED = "c0ffee00-5e1f-4ea5-b0a7-000000001007"
GUEST = "c0ffee00-5e1f-4ea5-b0a7-000000001008"
COMPLETED_ACTIVITY = "Complete self-service password reset enablement"
POLICY_ACTIVITY = "Update self-service password reset policy"


# ---- helpers ---------------------------------------------------------------------------------------------------


def request(host: FunctionHost, emulator: GraphEmulator, body: dict[str, Any], upn: str = ADMIN) -> httpx.Response:
    return httpx.post(f"{host.base_url}/api/manage/enablement", json=body,
                      headers=bearer(user_token(emulator, upn)), timeout=30)


def status(host: FunctionHost, emulator: GraphEmulator, run_id: str, upn: str = READER) -> dict[str, Any]:
    response = httpx.get(f"{host.base_url}/api/manage/enablement/{run_id}", headers=bearer(user_token(emulator, upn)),
                         timeout=15)
    assert response.status_code == 200, response.text
    return dict(response.json())


def enable(host: FunctionHost, emulator: GraphEmulator, body: dict[str, Any], timeout: float = 40) -> dict[str, Any]:
    response = request(host, emulator, body)
    assert response.status_code == 202, response.text
    return wait_until_finished(host, emulator, response.json()["id"], timeout)


def wait_until_finished(host: FunctionHost, emulator: GraphEmulator, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = status(host, emulator, run_id)
        if run["state"] in ("completed", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {run}")


def table(azurite: Azurite, name: str) -> TableClient:
    return TableClient.from_connection_string(azurite.connection_string, name)


def enabled_rows(azurite: Azurite, prefix: str = "sspr") -> dict[str, dict[str, Any]]:
    with table(azurite, f"{prefix}Enablement") as client:
        return {e["RowKey"]: dict(e) for e in client.list_entities()}


def read_policy(host: FunctionHost, emulator: GraphEmulator) -> httpx.Response:
    response = httpx.get(f"{host.base_url}/api/manage/policy", headers=bearer(user_token(emulator, READER)), timeout=15)
    assert response.status_code == 200, response.text
    return response


def put_policy(host: FunctionHost, emulator: GraphEmulator, **settings: Any) -> httpx.Response:
    """PUT the current policy with `settings` changed, under the ETag just read."""
    current = read_policy(host, emulator)
    return httpx.put(f"{host.base_url}/api/manage/policy", json={**current.json(), **settings},
                     headers={**bearer(user_token(emulator, ADMIN)), "If-Match": current.headers["etag"]},
                     timeout=30)


def latest_run_ids(host: FunctionHost, emulator: GraphEmulator) -> list[str]:
    return [r["id"] for r in httpx.get(f"{host.base_url}/api/manage/enablement",
                                       headers=bearer(user_token(emulator, READER)), timeout=15).json()["value"]]


def policy_audit(host: FunctionHost, emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{host.base_url}/api/manage/audit", params={"activity": POLICY_ACTIVITY},
                          headers=bearer(user_token(emulator, READER)), timeout=15).json()["value"])


def enabled_members(emulator: GraphEmulator) -> set[str]:
    """Every enabled member as Graph lists them: the oracle the rows are checked against."""
    return set(enabled_member_ids(emulator))


def faults(emulator: GraphEmulator, *rules: dict[str, Any]) -> None:
    set_faults(emulator, *rules)


@pytest.fixture
def clean_faults(graph_emulator: GraphEmulator) -> Iterator[None]:
    yield
    faults(graph_emulator)


# ---- the session tenant ------------------------------------------------------------------------------------------


def test_enable_all_writes_one_row_per_enabled_member_and_audits_the_run(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    response = request(service_host, graph_emulator, {"scope": "all"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["state"] == "queued"
    assert response.headers["location"] == f"/api/manage/enablement/{accepted['id']}"

    run = wait_until_finished(service_host, graph_emulator, accepted["id"], 40)

    expected = enabled_members(graph_emulator)
    rows = enabled_rows(azurite)
    assert run["state"] == "completed", run
    assert set(rows) == expected
    assert {r["scope"] for r in rows.values()} == {"all"}
    everyone = len(directory_users(graph_emulator))  # the demo tenant's 68 and any user an earlier module added
    assert everyone >= 68 and run["inScope"] == len(expected)
    assert run["usersProcessed"] == run["usersTotal"] == everyone
    assert run["percent"] == 100.0 and run["errors"] == [] and run["completedAt"] is not None
    audit = httpx.get(f"{service_host.base_url}/api/manage/audit", params={"activity": COMPLETED_ACTIVITY},
                      headers=bearer(user_token(graph_emulator, READER)), timeout=15).json()["value"]
    assert any(e["flowId"] == accepted["id"] and e["outcome"] == "success" for e in audit)


def test_selected_with_nested_groups_enables_the_transitive_members_and_removes_everyone_else(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    before = enabled_rows(azurite)
    run = enable(service_host, graph_emulator, {"scope": "selected", "groupId": PILOT})
    rows = enabled_rows(azurite)
    assert run["state"] == "completed", run
    assert set(rows) == PILOT_USERS - {DISABLED, GUEST}  # 8 transitive users, minus the disabled one and the guest
    assert {r["groupId"] for r in rows.values()} == {PILOT}
    assert run["inScope"] == 6 and run["usersProcessed"] == 8
    assert run["removed"] == len(set(before) - set(rows))
    assert run["added"] == 0  # every pilot member had a row from the "all" run


def test_guests_follow_the_policy_and_saving_include_guests_starts_the_run_that_applies_it(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    assert request(service_host, graph_emulator,
                   {"scope": "selected", "groupId": PILOT, "includeGuests": True}).status_code == 400  # not here
    saved = put_policy(service_host, graph_emulator, scope="selected", groupId=PILOT, includeGuests=True)
    assert saved.status_code == 200, saved.text
    run = wait_until_finished(service_host, graph_emulator, saved.headers["location"].rsplit("/", 1)[1], 40)
    assert run["state"] == "completed" and run["includeGuests"] is True, run
    assert set(enabled_rows(azurite)) == PILOT_USERS - {DISABLED}
    assert run["added"] == 1 and run["removed"] == 0

    # Back to members only: the guest's row goes (and later tests run with the default).
    saved = put_policy(service_host, graph_emulator, includeGuests=False)
    assert saved.status_code == 200, saved.text
    run = wait_until_finished(service_host, graph_emulator, saved.headers["location"].rsplit("/", 1)[1], 40)
    assert run["state"] == "completed" and run["removed"] == 1, run
    assert set(enabled_rows(azurite)) == PILOT_USERS - {DISABLED, GUEST}


def test_none_removes_every_row(service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    before = enabled_rows(azurite)
    run = enable(service_host, graph_emulator, {"scope": "none"})
    assert run["state"] == "completed", run
    assert enabled_rows(azurite) == {}
    assert run["removed"] == len(before) > 0 and run["inScope"] == 0


def test_an_enablement_request_saves_its_scope_in_the_policy_audited_with_old_and_new_values(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    enable(service_host, graph_emulator, {"scope": "none"})
    before = read_policy(service_host, graph_emulator)
    assert before.json()["scope"] == "none"

    response = request(service_host, graph_emulator, {"scope": "selected", "groupId": PILOT.upper()})
    assert response.status_code == 202, response.text
    run = wait_until_finished(service_host, graph_emulator, response.json()["id"], 40)

    after = read_policy(service_host, graph_emulator)
    assert after.headers["etag"] != before.headers["etag"]
    assert response.json()["policyETag"] == after.headers["etag"]
    assert (after.json()["scope"], after.json()["groupId"]) == ("selected", PILOT)
    assert {k: v for k, v in after.json().items() if k not in ("scope", "groupId")} == \
        {k: v for k, v in before.json().items() if k not in ("scope", "groupId")}
    assert run["state"] == "completed" and set(enabled_rows(azurite)) == PILOT_USERS - {DISABLED, GUEST}
    [event] = [e for e in policy_audit(service_host, graph_emulator)
               if e["details"].get("enablementRunId") == response.json()["id"]]
    assert event["details"]["old"] == {"scope": "none", "groupId": None}
    assert event["details"]["new"] == {"scope": "selected", "groupId": PILOT}
    assert event["details"]["version"] == int(after.headers["etag"].strip('"'))


def test_saving_a_policy_scope_change_starts_a_run_that_writes_the_new_rows(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite) -> None:
    enable(service_host, graph_emulator, {"scope": "none"})
    saved = put_policy(service_host, graph_emulator, scope="all", groupId=None)
    assert saved.status_code == 200, saved.text
    run_id = saved.headers["location"].rsplit("/", 1)[1]
    assert saved.headers["location"] == f"/api/manage/enablement/{run_id}"
    assert latest_run_ids(service_host, graph_emulator)[0] == run_id
    run = wait_until_finished(service_host, graph_emulator, run_id, 40)
    assert run["state"] == "completed" and run["scope"] == "all", run
    assert set(enabled_rows(azurite)) == enabled_members(graph_emulator)
    assert run["added"] == len(enabled_members(graph_emulator)) and run["removed"] == 0


def test_saving_a_policy_without_a_scope_change_starts_no_run(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    runs = latest_run_ids(service_host, graph_emulator)
    reconfirm = read_policy(service_host, graph_emulator).json()["reconfirmDays"]
    saved = put_policy(service_host, graph_emulator, reconfirmDays=reconfirm + 1)
    assert saved.status_code == 200, saved.text
    assert "location" not in saved.headers
    assert saved.json()["reconfirmDays"] == reconfirm + 1
    assert latest_run_ids(service_host, graph_emulator) == runs
    assert put_policy(service_host, graph_emulator, reconfirmDays=reconfirm).status_code == 200


def test_a_policy_scope_change_while_a_run_runs_is_409_and_saves_nothing(
        service_host: FunctionHost, graph_emulator: GraphEmulator, clean_faults: None) -> None:
    faults(graph_emulator, {"latencyMs": 1500, "pathContains": "/users", "methods": ["GET"]})
    first = request(service_host, graph_emulator, {"scope": "all"})
    assert first.status_code == 202, first.text
    before = read_policy(service_host, graph_emulator)
    refused = put_policy(service_host, graph_emulator, scope="selected", groupId=PILOT)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["runningRequestId"] == first.json()["id"]
    after = read_policy(service_host, graph_emulator)
    assert (after.headers["etag"], after.json()) == (before.headers["etag"], before.json())
    assert after.json()["scope"] == "all"
    assert latest_run_ids(service_host, graph_emulator)[0] == first.json()["id"]
    faults(graph_emulator)
    assert wait_until_finished(service_host, graph_emulator, first.json()["id"], 40)["state"] == "completed"


def test_a_policy_naming_a_missing_group_is_a_400_naming_group_id_and_saves_nothing(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    before = read_policy(service_host, graph_emulator)
    runs = latest_run_ids(service_host, graph_emulator)
    refused = put_policy(service_host, graph_emulator, scope="selected", groupId="c0ffee00-5e1f-4ea5-b0a7-00000000dead")
    assert refused.status_code == 400, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["groupId"]
    assert "no group with id" in refused.json()["errors"][0]["message"]
    after = read_policy(service_host, graph_emulator)
    assert (after.headers["etag"], after.json()) == (before.headers["etag"], before.json())
    assert latest_run_ids(service_host, graph_emulator) == runs


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"scope": "selected", "groupId": "c0ffee00-5e1f-4ea5-b0a7-00000000dead"}, "groupId", "no group with id"),
    ({"scope": "selected", "groupId": "SSPR Pilot"}, "groupId", "should match pattern"),
    ({"scope": "selected"}, "groupId", "is required when scope is 'selected'"),
    ({"scope": "all", "groupId": PILOT}, "groupId", "must be null unless scope is 'selected'"),
    ({"scope": "everyone"}, "scope", "'all', 'selected' or 'none'"),
])
def test_a_bad_or_missing_group_is_a_400_naming_the_field_and_starts_nothing(
        service_host: FunctionHost, graph_emulator: GraphEmulator, body: dict[str, Any], field: str,
        message: str) -> None:
    policy_before = read_policy(service_host, graph_emulator)
    before = httpx.get(f"{service_host.base_url}/api/manage/enablement",
                       headers=bearer(user_token(graph_emulator, READER)), timeout=15).json()["value"]
    response = request(service_host, graph_emulator, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert any(message in e["message"] for e in errors), errors
    assert [e["field"] for e in errors] == [field]
    after = httpx.get(f"{service_host.base_url}/api/manage/enablement",
                      headers=bearer(user_token(graph_emulator, READER)), timeout=15).json()["value"]
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert read_policy(service_host, graph_emulator).headers["etag"] == policy_before.headers["etag"]


def test_only_an_admin_may_request_and_a_reader_may_watch(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    assert request(service_host, graph_emulator, {"scope": "none"}, upn=READER).status_code == 403
    assert httpx.post(f"{service_host.base_url}/api/manage/enablement", json={"scope": "none"},
                      timeout=15).status_code == 401
    missing = httpx.get(f"{service_host.base_url}/api/manage/enablement/c0ffee00-0000-4000-8000-000000000000",
                        headers=bearer(user_token(graph_emulator, READER)), timeout=15)
    assert missing.status_code == 404


def test_a_request_while_one_runs_is_409_naming_the_running_one(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite, clean_faults: None) -> None:
    faults(graph_emulator, {"latencyMs": 1500, "pathContains": "/users", "methods": ["GET"]})
    first = request(service_host, graph_emulator, {"scope": "all"})
    assert first.status_code == 202, first.text
    second = request(service_host, graph_emulator, {"scope": "none"})
    assert second.status_code == 409, second.text
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["runningRequestId"] == first.json()["id"]
    faults(graph_emulator)
    run = wait_until_finished(service_host, graph_emulator, first.json()["id"], 40)
    assert run["state"] == "completed" and set(enabled_rows(azurite)) == enabled_members(graph_emulator)


def test_a_graph_429_storm_is_waited_out_and_the_run_still_completes(
        service_host: FunctionHost, graph_emulator: GraphEmulator, azurite: Azurite, clean_faults: None) -> None:
    # 7 throttled answers in a row: the SDK's 5 retries (Retry-After 1 s) give up once, the queue redelivers.
    faults(graph_emulator, {"status": 429, "retryAfter": 1, "rate": 1.0, "times": 7,
                            "pathContains": "/transitiveMembers", "methods": ["GET"]})
    run = enable(service_host, graph_emulator, {"scope": "selected", "groupId": PILOT}, timeout=60)
    fired = httpx.get(f"{graph_emulator.base_url}/_emulator/faults", timeout=10).json()
    assert run["state"] == "completed", run
    assert set(enabled_rows(azurite)) == PILOT_USERS - {DISABLED, GUEST}
    assert any("throttled" in e for e in run["errors"]), run["errors"]
    assert "7" in str(fired)


# ---- a crash in the middle of a larger tenant ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def crash_stack() -> Iterator[tuple[Azurite, GraphEmulator, dict[str, str]]]:
    with private_stack("crash", users=5000, start_host=False, FUNCHOST_QUEUE_LEASE_SECONDS="2",
                       FUNCHOST_DISABLE_TIMERS="1") as stack:
        yield stack.azurite, stack.emulator, stack.settings


def test_a_worker_killed_mid_run_resumes_to_the_rows_of_a_clean_run_with_nothing_poisoned(
        crash_stack: tuple[Azurite, GraphEmulator, dict[str, str]]) -> None:
    azurite, emulator, settings = crash_stack
    faults(emulator, {"latencyMs": 400, "pathContains": "/users", "methods": ["GET"]})  # a slow directory
    with host_running(settings) as host:
        accepted = request(host, emulator, {"scope": "all"})
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + 30
        while (seen := status(host, emulator, run_id))["pagesDone"] < 2:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        host.process.kill()  # SIGKILL: no grace, messages stay leased
    assert seen["state"] == "running" and seen["pagesDone"] < 6, seen  # 5,018 users are 6 pages
    faults(emulator)

    with host_running(settings) as host:
        resumed = wait_until_finished(host, emulator, run_id, 60)
        crashed_rows = enabled_rows(azurite, "crash")
        clean = enable(host, emulator, {"scope": "all"}, timeout=60)
        clean_rows = enabled_rows(azurite, "crash")

    expected = enabled_members(emulator)
    assert resumed["state"] == "completed", resumed
    assert set(crashed_rows) == expected
    assert resumed["usersProcessed"] == resumed["usersTotal"] == 5018  # counted once despite the redeliveries
    assert resumed["inScope"] == len(expected) and resumed["pagesDone"] == 6
    assert clean["state"] == "completed" and clean["added"] == 0 and clean["removed"] == 0

    def content(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
        return {k: (r["PartitionKey"], r["scope"], r["userType"], r.get("groupId")) for k, r in rows.items()}

    assert content(crashed_rows) == content(clean_rows)
    # The crash host's queues carry its prefix ("crash"), so its poison queue does too.
    poison = QueueClient.from_connection_string(azurite.connection_string, f"{settings['SSPR_QUEUE_PREFIX']}-enablement-poison")
    try:
        assert list(poison.peek_messages(max_messages=32)) == []
    except ResourceNotFoundError:
        pass  # the poison queue exists only once something was poisoned
