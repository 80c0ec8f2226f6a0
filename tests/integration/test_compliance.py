"""Compliance runs end to end: admin requests and the timer through the local host, the queue worker, Azurite and
the emulator (its demo tenant has P1/P2, so Entra's userRegistrationDetails is compared).

The module runs its own host (tables and queues prefixed "comp", timers off, the notifications worker off so the
queued reminders stay readable) against the session's Azurite and emulator; the crash test runs its own Azurite,
emulator with 3,000 users and host, so killing that host disturbs nobody else.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT
from devtools.stack import (
    DEMO_TENANT_ID,
    MASTER_KEY,
    SERVICE_APP_ID,
    SERVICE_APP_SECRET,
    FunctionHost,
    GraphEmulator,
    app_settings,
    start_function_host,
    start_graph_emulator,
)
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from tests.integration.tokens import bearer, user_token

ADMIN = "admin@contoso.example"
READER = "reader@contoso.example"
NOBODY = "casey@contoso.example"
PREFIX = "comp"
ADMIN_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001001"
CASEY = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
SVEN = "c0ffee00-5e1f-4ea5-b0a7-000000001004"
FIONA = "c0ffee00-5e1f-4ea5-b0a7-00000000100e"
FRANK = "c0ffee00-5e1f-4ea5-b0a7-00000000100f"
AUDREY = "c0ffee00-5e1f-4ea5-b0a7-000000001010"
PAULA = "c0ffee00-5e1f-4ea5-b0a7-00000000100b"
NOW = datetime.now(UTC)


@dataclass
class Stack:
    azurite: Azurite
    emulator: GraphEmulator
    settings: dict[str, str]
    host: FunctionHost


# ---- helpers ---------------------------------------------------------------------------------------------------


def start_run(stack: Stack, upn: str = ADMIN, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{stack.host.base_url}/api/admin/compliance/runs", json=body,
                      headers=bearer(user_token(stack.emulator, upn)), timeout=30)


def get(stack: Stack, path: str, upn: str = READER, **params: Any) -> httpx.Response:
    return httpx.get(f"{stack.host.base_url}/api/admin/compliance/{path}", params=params,
                     headers=bearer(user_token(stack.emulator, upn)), timeout=30)


def wait_until_finished(stack: Stack, run_id: str, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = get(stack, f"runs/{run_id}").json()
        if run["state"] in ("completed", "failed"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {run}")


def run_to_completion(stack: Stack, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = start_run(stack, body=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/admin/compliance/runs/{response.json()['id']}"
    run = wait_until_finished(stack, response.json()["id"])
    assert run["state"] == "completed", run
    return run


def all_rows(stack: Stack, run_id: str, **filters: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    continuation = None
    while True:
        params = {**filters, "pageSize": 25, **({"continuation": continuation} if continuation else {})}
        page = get(stack, f"runs/{run_id}/users", **params)
        assert page.status_code == 200, page.text
        rows.extend(page.json()["value"])
        continuation = page.json()["continuation"]
        if not continuation:
            return rows


def graph_token(emulator: GraphEmulator) -> str:
    return str(httpx.post(
        f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": SERVICE_APP_ID, "client_secret": SERVICE_APP_SECRET,
              "scope": "https://graph.microsoft.com/.default"}, timeout=10,
    ).json()["access_token"])


def enabled_members(emulator: GraphEmulator) -> set[str]:
    users: list[dict[str, Any]] = []
    url: str | None = f"{emulator.graph_url}/users?$select=id,accountEnabled,userType&$top=999"
    with httpx.Client(headers=bearer(graph_token(emulator)), timeout=30) as http:
        while url:
            page = http.get(url).json()
            users.extend(page["value"])
            url = page.get("@odata.nextLink")
    return {u["id"] for u in users if u["accountEnabled"] and u["userType"] != "Guest"}


def register(settings: dict[str, str], user_id: str, *methods: Method, confirmed: datetime = NOW,
             admin: bool = False) -> None:
    """Write a user's security info straight into the store, as registration would have."""

    async def save() -> None:
        storage = StorageClients.from_settings(load_settings(settings))
        try:
            store = SecurityInfoStore(storage)
            current = await store.summary(user_id)
            summary = SecurityInfoSummary(user_id, frozenset(methods), confirmed, None, admin, etag=current.etag)
            put = [RegisteredMethod(m, confirmed, contact="x@contoso.example" if m is Method.EMAIL else None)
                   for m in methods]
            await store.save(summary, put=put)
        finally:
            await storage.close()

    asyncio.run(save())


def queued_reminders(stack: Stack) -> list[dict[str, Any]]:
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}-notifications")
    with queue:
        messages = [json.loads(base64.b64decode(m.content)) for m in queue.peek_messages(max_messages=32)]
        count = queue.get_queue_properties().approximate_message_count
    return [{"count": count}, *messages]


def reminder_slots(stack: Stack) -> dict[str, datetime]:
    with TableClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}Reminders") as table:
        return {e["PartitionKey"]: e["sentAt"] for e in table.list_entities()}


def audit(stack: Stack, activity: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.host.base_url}/api/admin/audit", params={"activity": activity},
                         headers=bearer(user_token(stack.emulator, READER)), timeout=15)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def faults(emulator: GraphEmulator, *rules: dict[str, Any]) -> None:
    if rules:
        httpx.put(f"{emulator.base_url}/_emulator/faults", json={"seed": 7, "rules": list(rules)},
                  timeout=10).raise_for_status()
    else:
        httpx.delete(f"{emulator.base_url}/_emulator/faults", timeout=10).raise_for_status()


def admin_call(stack: Stack, function: str, body: str = "") -> None:
    response = httpx.post(f"{stack.host.base_url}/admin/functions/{function}", json={"input": body},
                          headers={"x-functions-key": MASTER_KEY}, timeout=30)
    assert response.status_code == 202, response.text


def enable_all(stack: Stack) -> None:
    response = httpx.post(f"{stack.host.base_url}/api/admin/enablement", json={"scope": "all"},
                          headers=bearer(user_token(stack.emulator, ADMIN)), timeout=30)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = httpx.get(f"{stack.host.base_url}/api/admin/enablement/{response.json()['id']}",
                        headers=bearer(user_token(stack.emulator, READER)), timeout=15).json()
        if run["state"] in ("completed", "failed"):
            assert run["state"] == "completed", run
            return
        time.sleep(0.2)
    raise AssertionError("enablement did not finish")


@pytest.fixture(scope="module")
def stack(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[Stack]:
    settings = app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=PREFIX, FUNCHOST_DISABLE_TIMERS="1",
                            FUNCHOST_QUEUE_LEASE_SECONDS="2", **{"AzureWebJobs.send_notification.Disabled": "true"})
    host = start_function_host(REPO_ROOT, settings)
    started = Stack(azurite, graph_emulator, settings, host)
    try:
        enable_all(started)
        register(settings, CASEY, Method.EMAIL)  # capable
        register(settings, SVEN, Method.EMAIL, Method.MOBILE_PHONE)  # capable
        register(settings, FIONA, Method.OFFICE_PHONE)  # office phone is off in the policy: not capable
        register(settings, ADMIN_ID, Method.EMAIL, admin=True)  # an admin with one method: not capable
        register(settings, FRANK, Method.EMAIL, confirmed=NOW - timedelta(days=200))  # reconfirmation overdue
        yield started
    finally:
        started.host.stop()


# ---- the demo tenant ------------------------------------------------------------------------------------------


def test_a_sweep_over_the_demo_tenant_counts_who_is_capable_and_why_and_reminds_the_rest(stack: Stack) -> None:
    members = enabled_members(stack.emulator)
    n = len(members)
    run = run_to_completion(stack)

    assert run["users"] == run["usersProcessed"] == n and run["shardsDone"] == run["shardsTotal"] == 16
    assert run["byStatus"] == {"capable": 2, "reconfirmOverdue": 1, "notRegistered": n - 3, "notEnabled": 0}
    assert run["capable"] == 3 and run["notRegistered"] == n - 3 and run["reconfirmOverdue"] == 1
    assert run["byMethod"] == {"email": 4, "mobilePhone": 1, "officePhone": 1}
    assert run["topReasons"][0] == {"reason": "noMethodsRegistered", "users": n - 5}
    assert {r["reason"]: r["users"] for r in run["topReasons"][1:]} == \
        {"adminNeedsTwoMethods": 1, "methodsNotAllowed": 1, "tooFewMethods": 1}
    assert run["entraComparison"] == "compared" and run["entraReason"] is None

    rows = {r["userId"]: r for r in all_rows(stack, run["id"])}
    assert set(rows) == members
    assert rows[CASEY] | {"lastConfirmedAt": None, "reconfirmDueAt": None} == {
        "userId": CASEY, "status": "capable", "enabled": True, "registered": True, "capable": True, "reasons": [],
        "reconfirmation": "current", "reconfirmDueAt": None, "methods": ["email"], "methodsRequired": 1,
        "lastConfirmedAt": None, "isAdmin": False, "entraRegistered": True, "entraCapable": True,
        "entraMethods": ["email", "mobilePhone"], "entraAgrees": True,
    }
    assert rows[ADMIN_ID]["reasons"] == ["adminNeedsTwoMethods"] and rows[ADMIN_ID]["methodsRequired"] == 2
    assert rows[FIONA]["reasons"] == ["methodsNotAllowed", "tooFewMethods"]
    assert rows[FRANK]["status"] == "reconfirmOverdue" and rows[FRANK]["capable"] is True
    assert all(r["entraCapable"] is not None and r["entraAgrees"] == (r["entraCapable"] == r["capable"])
               for r in rows.values())
    assert run["entraDisagree"] == sum(not r["entraAgrees"] for r in rows.values())

    # Reminders: everyone not registered or overdue, one claim each, queued for the notifications worker.
    due = {u for u, r in rows.items() if r["status"] in ("notRegistered", "reconfirmOverdue")}
    assert run["remindersSent"] == len(due) == n - 2
    slots = reminder_slots(stack)
    assert set(slots) == due
    [count, *sample] = queued_reminders(stack)
    assert count["count"] == len(due)
    assert all(m["kind"] == "registration-reminder" and m["userId"] in due for m in sample)

    [started] = [e for e in audit(stack, "Start compliance run") if e["flowId"] == run["id"]]
    assert started["actorId"] == ADMIN_ID and started["details"]["trigger"] == "manual"
    [completed] = [e for e in audit(stack, "Complete compliance run") if e["flowId"] == run["id"]]
    assert completed["outcome"] == "success" and completed["details"]["users"] == n
    [sent] = [e for e in audit(stack, "Send registration reminder") if e["flowId"] == run["id"]]
    assert sent["details"]["count"] == n - 2


def test_a_second_run_after_new_registrations_shows_the_delta_and_reminds_nobody_inside_the_period(
        stack: Stack) -> None:
    [first] = get(stack, "runs").json()["value"][:1]
    slots = reminder_slots(stack)
    register(stack.settings, AUDREY, Method.EMAIL)
    register(stack.settings, PAULA, Method.AUTHENTICATOR_APP)

    second = run_to_completion(stack)

    assert second["capable"] == first["capable"] + 2
    assert second["notRegistered"] == first["notRegistered"] - 2
    assert second["byMethod"]["authenticatorApp"] == 1 and second["byMethod"]["email"] == 5
    assert second["remindersSent"] == 0
    assert reminder_slots(stack) == slots  # no period claimed again
    history = get(stack, "runs").json()["value"]
    assert [r["id"] for r in history[:2]] == [second["id"], first["id"]]
    assert [r["capable"] for r in history[:2]] == [first["capable"] + 2, first["capable"]]


def test_a_shard_delivered_twice_more_changes_nothing(stack: Stack) -> None:
    latest = run_to_completion(stack, {"sendReminders": False})
    before = get(stack, f"runs/{latest['id']}").json()
    rows = all_rows(stack, latest["id"])
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}-compliance",
                                               message_encode_policy=BinaryBase64EncodePolicy())
    with queue:
        for _ in range(2):
            for step, index in (("partition", 3), ("partition", 11), ("entra", 0)):
                body = json.dumps({"runId": latest["id"], "step": step, "index": index})
                queue.send_message(body.encode())
        deadline = time.monotonic() + 20
        while queue.get_queue_properties().approximate_message_count:  # each is deleted once its worker succeeded
            assert time.monotonic() < deadline
            time.sleep(0.1)
    poison = QueueClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}-compliance-poison")
    with poison, pytest.raises(ResourceNotFoundError):
        poison.get_queue_properties()  # nothing was poisoned (the poison queue was never even created)
    assert get(stack, f"runs/{latest['id']}").json() == before
    assert all_rows(stack, latest["id"]) == rows


def test_filters_paging_and_the_csv_export_match_the_json_rows(stack: Stack) -> None:
    [latest] = get(stack, "runs").json()["value"][:1]
    everyone = all_rows(stack, latest["id"])
    capable = all_rows(stack, latest["id"], status="capable")
    assert {r["userId"] for r in capable} == {r["userId"] for r in everyone if r["status"] == "capable"}
    assert {r["userId"] for r in all_rows(stack, latest["id"], method="email")} == \
        {r["userId"] for r in everyone if "email" in r["methods"]}
    assert [r["userId"] for r in all_rows(stack, latest["id"], reason="adminNeedsTwoMethods")] == [ADMIN_ID]
    assert len({r["userId"] for r in everyone}) == len(everyone)  # pages neither repeat nor skip

    exported = get(stack, f"runs/{latest['id']}/users", format="csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(exported.text)))

    def from_csv(row: dict[str, str]) -> dict[str, Any]:
        def value(key: str, text: str) -> Any:
            if key in ("reasons", "methods", "entraMethods"):
                return [v for v in text.split(";") if v]
            if text in ("true", "false"):
                return text == "true"
            if key == "methodsRequired":
                return int(text)
            return text or None
        return {k: value(k, v) for k, v in row.items()}

    assert sorted((from_csv(r) for r in parsed), key=lambda r: r["userId"]) == \
        sorted(everyone, key=lambda r: r["userId"])
    history = httpx.get(f"{stack.host.base_url}/api/admin/compliance/runs",
                        headers={**bearer(user_token(stack.emulator, READER)), "Accept": "text/csv"}, timeout=15)
    runs = list(csv.DictReader(io.StringIO(history.text)))
    assert runs[0]["id"] == latest["id"] and int(runs[0]["capable"]) == latest["capable"]

    bad = get(stack, f"runs/{latest['id']}/users", status="everyone")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "status"
    forged = get(stack, f"runs/{latest['id']}/users", continuation=base64.urlsafe_b64encode(
        json.dumps({"run": "c0ffee00-0000-4000-8000-000000000000", "pk": "x", "rk": "y"}).encode()).decode())
    assert forged.status_code == 400 and forged.json()["errors"][0]["field"] == "continuation"


def test_a_start_while_a_run_runs_is_409_naming_it(stack: Stack) -> None:
    faults(stack.emulator, {"latencyMs": 1500, "pathContains": "/reports/", "methods": ["GET"]})
    try:
        first = start_run(stack, body={"sendReminders": False})
        assert first.status_code == 202, first.text
        running = get(stack, f"runs/{first.json()['id']}").json()
        assert running["state"] in ("queued", "running") and running["shardsDone"] < 16
        second = start_run(stack)
        assert second.status_code == 409, second.text
        assert second.headers["content-type"].startswith("application/problem+json")
        assert second.json()["runningRunId"] == first.json()["id"]
    finally:
        faults(stack.emulator)
    assert wait_until_finished(stack, first.json()["id"])["state"] == "completed"


def test_without_p1_or_p2_the_entra_column_is_empty_and_the_run_says_why(stack: Stack) -> None:
    subscriptions = f"{stack.emulator.base_url}/_emulator/subscriptions"
    httpx.patch(subscriptions, json={"status": "Suspended"}, timeout=10).raise_for_status()
    try:
        run = run_to_completion(stack, {"sendReminders": False})
    finally:
        httpx.patch(subscriptions, json={"status": "Enabled"}, timeout=10).raise_for_status()
    assert run["entraComparison"] == "unavailable"
    assert "no Entra ID P1/P2" in run["entraReason"]
    rows = all_rows(stack, run["id"])
    assert rows and all(r["entraCapable"] is None and r["entraAgrees"] is None for r in rows)


def test_the_timer_starts_a_run_as_the_service(stack: Stack) -> None:
    before = {r["id"] for r in get(stack, "runs").json()["value"]}
    admin_call(stack, "compliance_timer")
    deadline = time.monotonic() + 20
    while not (new := [r for r in get(stack, "runs").json()["value"] if r["id"] not in before]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run = wait_until_finished(stack, new[0]["id"])
    assert run["trigger"] == "timer" and run["requestedBy"] == "system" and run["state"] == "completed"


def test_only_an_admin_may_start_and_a_reader_may_read(stack: Stack) -> None:
    assert start_run(stack, upn=READER).status_code == 403
    assert httpx.post(f"{stack.host.base_url}/api/admin/compliance/runs", timeout=15).status_code == 401
    assert get(stack, "runs", upn=NOBODY).status_code == 403
    assert httpx.get(f"{stack.host.base_url}/api/admin/compliance/runs", timeout=15).status_code == 401
    assert get(stack, "runs/c0ffee00-0000-4000-8000-000000000000").status_code == 404
    assert get(stack, "runs/not-a-run").status_code == 400


# ---- a crash in the middle of a larger tenant ------------------------------------------------------------------


def test_a_worker_killed_mid_run_resumes_to_the_rows_of_a_clean_run() -> None:
    with tempfile.TemporaryDirectory(prefix="sspr-compliance-crash-") as location:
        azurite = Azurite(Path(location)).start()
        emulator = start_graph_emulator("--users", "3000")
        try:
            settings = app_settings(azurite, emulator, SSPR_TABLE_PREFIX="crash", FUNCHOST_QUEUE_LEASE_SECONDS="2",
                                    FUNCHOST_DISABLE_TIMERS="1", **{"AzureWebJobs.send_notification.Disabled": "true"})
            stack = Stack(azurite, emulator, settings, start_function_host(REPO_ROOT, settings))
            try:
                enable_all(stack)
                register(settings, CASEY, Method.EMAIL)
                faults(emulator, {"latencyMs": 1200, "pathContains": "/reports/", "methods": ["GET"]})  # slow pages
                accepted = start_run(stack, body={"sendReminders": False})
                assert accepted.status_code == 202, accepted.text
                run_id = accepted.json()["id"]
                with TableClient.from_connection_string(azurite.connection_string, "crashComplianceRuns") as runs:
                    deadline = time.monotonic() + 30
                    while int(runs.get_entity(run_id, "entra").get("pages") or 0) < 1:
                        assert time.monotonic() < deadline
                        time.sleep(0.05)
                stack.host.process.kill()  # SIGKILL: no grace, the shard's message stays leased
            finally:
                stack.host.stop()
            with TableClient.from_connection_string(azurite.connection_string, "crashComplianceRuns") as runs:
                assert runs.get_entity(run_id, "entra")["done"] is False  # killed mid-run
            faults(emulator)

            stack.host = start_function_host(REPO_ROOT, settings)
            try:
                resumed = wait_until_finished(stack, run_id, 60)
                resumed_rows = all_rows_fast(stack, run_id)
                clean = run_to_completion(stack, {"sendReminders": False})
                clean_rows = all_rows_fast(stack, clean["id"])
            finally:
                stack.host.stop()
        finally:
            emulator.process.stop()
            azurite.stop()
    assert resumed["state"] == "completed" and resumed["entraComparison"] == "compared", resumed
    counts = ("users", "capable", "notRegistered", "byStatus", "byMethod", "topReasons", "entraDisagree")
    assert {k: resumed[k] for k in counts} == {k: clean[k] for k in counts}
    assert resumed["users"] > 2500 and resumed["capable"] == 1
    assert resumed_rows == clean_rows


def all_rows_fast(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    page = get(stack, f"runs/{run_id}/users", format="csv")
    assert page.status_code == 200, page.text
    return sorted(csv.DictReader(io.StringIO(page.text)), key=lambda r: r["userId"])
