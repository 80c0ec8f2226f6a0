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
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from devtools.azurite import Azurite
from devtools.stack import MASTER_KEY, GraphEmulator, Stack, app_settings, private_stack
from devtools.tenant import enabled_member_ids, set_faults
from shared.adapters.audit_store import AuditStore
from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.compliance_store import CSV_PAGE_ROWS, ComplianceQueue, ComplianceStore, UserFilter
from shared.adapters.credentials import graph_credential
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.graph import GraphGateway
from shared.adapters.mail import MailLedger
from shared.adapters.policy_store import PolicyStore
from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.adapters.throttle_store import ThrottleStore
from shared.config import load_settings
from shared.domain.audit import SYSTEM
from shared.domain.compliance import SWEEP_SHARDS, ComplianceMessage, EntraState, Run, RunState, Shard
from shared.domain.enablement import partition_for
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from shared.errors import NotFound, StorageUnavailable
from shared.services.compliance import ComplianceService, ReportsPacer
from shared.services.compliance_reminders import ComplianceReminders
from shared.services.maintenance import MaintenanceService, standard_purges
from shared.services.policy import PolicyCache
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
# Timers off; the notifications worker off, so the queued reminders stay readable; leases short, for the crashes.
QUIET_WORKER = {"FUNCHOST_DISABLE_TIMERS": "1", "FUNCHOST_QUEUE_LEASE_SECONDS": "2",
                "AzureWebJobs.send_notification.Disabled": "true"}


# ---- helpers ---------------------------------------------------------------------------------------------------


def start_run(stack: Stack, upn: str = ADMIN, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{stack.host.base_url}/api/manage/compliance/runs", json=body,
                      headers=bearer(user_token(stack.emulator, upn)), timeout=30)


def get(stack: Stack, path: str, upn: str = READER, **params: Any) -> httpx.Response:
    return httpx.get(f"{stack.host.base_url}/api/manage/compliance/{path}", params=params,
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
    assert response.headers["location"] == f"/api/manage/compliance/runs/{response.json()['id']}"
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


def enabled_members(emulator: GraphEmulator) -> set[str]:
    return set(enabled_member_ids(emulator))


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
    response = httpx.get(f"{stack.host.base_url}/api/manage/audit", params={"activity": activity},
                         headers=bearer(user_token(stack.emulator, READER)), timeout=15)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def faults(emulator: GraphEmulator, *rules: dict[str, Any]) -> None:
    set_faults(emulator, *rules)


def admin_call(stack: Stack, function: str, body: str = "") -> None:
    response = httpx.post(f"{stack.host.base_url}/admin/functions/{function}", json={"input": body},
                          headers={"x-functions-key": MASTER_KEY}, timeout=30)
    assert response.status_code == 202, response.text


def enable_all(stack: Stack) -> None:
    response = httpx.post(f"{stack.host.base_url}/api/manage/enablement", json={"scope": "all"},
                          headers=bearer(user_token(stack.emulator, ADMIN)), timeout=30)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = httpx.get(f"{stack.host.base_url}/api/manage/enablement/{response.json()['id']}",
                        headers=bearer(user_token(stack.emulator, READER)), timeout=15).json()
        if run["state"] in ("completed", "failed"):
            assert run["state"] == "completed", run
            return
        time.sleep(0.2)
    raise AssertionError("enablement did not finish")


@pytest.fixture(scope="module")
def stack(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[Stack]:
    with private_stack(PREFIX, azurite=azurite, emulator=graph_emulator, **QUIET_WORKER) as started:
        settings = started.settings
        enable_all(started)
        register(settings, CASEY, Method.EMAIL)  # capable
        register(settings, SVEN, Method.EMAIL, Method.MOBILE_PHONE)  # capable
        register(settings, FIONA, Method.OFFICE_PHONE)  # office phone is off in the policy: not capable
        register(settings, ADMIN_ID, Method.EMAIL, admin=True)  # an admin with one method: not capable
        register(settings, FRANK, Method.EMAIL, confirmed=NOW - timedelta(days=200))  # reconfirmation overdue
        yield started


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
        "userId": CASEY, "displayName": "Casey Jensen", "userPrincipalName": "casey@contoso.example",
        "status": "capable", "enabled": True, "registered": True, "capable": True, "reasons": [],
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
    latest = run_to_completion(stack, {"sendReminders": False})  # its own run: the test stands alone
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
    history = httpx.get(f"{stack.host.base_url}/api/manage/compliance/runs",
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
    assert httpx.post(f"{stack.host.base_url}/api/manage/compliance/runs", timeout=15).status_code == 401
    assert get(stack, "runs", upn=NOBODY).status_code == 403
    assert httpx.get(f"{stack.host.base_url}/api/manage/compliance/runs", timeout=15).status_code == 401
    assert get(stack, "runs/c0ffee00-0000-4000-8000-000000000000").status_code == 404
    assert get(stack, "runs/not-a-run").status_code == 400


# ---- a crash in the middle of a larger tenant ------------------------------------------------------------------


def test_a_worker_killed_mid_run_resumes_to_the_rows_of_a_clean_run() -> None:
    with private_stack("crash", users=3000, **QUIET_WORKER) as stack:
        azurite, emulator, settings = stack.azurite, stack.emulator, stack.settings
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
        stack.stop_host()
        with TableClient.from_connection_string(azurite.connection_string, "crashComplianceRuns") as runs:
            assert runs.get_entity(run_id, "entra")["done"] is False  # killed mid-run
        faults(emulator)

        stack.start_host()
        resumed = wait_until_finished(stack, run_id, 60)
        resumed_rows = all_rows_fast(stack, run_id)
        clean = run_to_completion(stack, {"sendReminders": False})
        clean_rows = all_rows_fast(stack, clean["id"])
    assert resumed["state"] == "completed" and resumed["entraComparison"] == "compared", resumed
    counts = ("users", "capable", "notRegistered", "byStatus", "byMethod", "topReasons", "entraDisagree")
    assert {k: resumed[k] for k in counts} == {k: clean[k] for k in counts}
    assert resumed["users"] > 2500 and resumed["capable"] == 1
    assert resumed_rows == clean_rows


def csv_pages(stack: Stack, run_id: str) -> list[list[dict[str, str]]]:
    """The run's CSV export, page by page, following `Link: <...>; rel="next"` as a client would."""
    pages: list[list[dict[str, str]]] = []
    url: str | None = f"/api/manage/compliance/runs/{run_id}/users?format=csv"
    while url:
        page = httpx.get(f"{stack.host.base_url}{url}", headers=bearer(user_token(stack.emulator, READER)),
                         timeout=60)
        assert page.status_code == 200, page.text
        pages.append(list(csv.DictReader(io.StringIO(page.text))))
        link = page.headers.get("link")
        assert (link is None) == ("x-continuation" not in page.headers)
        url = link[1:link.index(">")] if link else None
    return pages


def all_rows_fast(stack: Stack, run_id: str) -> list[dict[str, str]]:
    return sorted((row for page in csv_pages(stack, run_id) for row in page), key=lambda r: r["userId"])


# ---- a larger tenant: Enablement seeded straight into the table ----------------------------------------------------

BIG_PREFIX = "compbig"
BIG_USERS = 20_000  # > 16 shards x one page (16 x 64 rows), so every shard checkpoints twice; > 1 CSV page


def fake_user_ids(count: int, seed: int) -> list[str]:
    """GUID-shaped ids spread over all 16 sweep shards (first hex digit i % 16)."""
    return [f"{i % 16:x}" + str(uuid.UUID(int=(seed << 96) + i))[1:] for i in range(count)]


def seed_enablement(connection_string: str, prefix: str, user_ids: list[str]) -> None:
    """Enablement rows (scope all) for `user_ids`, as an enablement run writes them, 100 to a transaction."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for uid in user_ids:
        by_partition.setdefault(partition_for(uid), []).append(
            {"PartitionKey": partition_for(uid), "RowKey": uid, "scope": "all", "userType": "Member",
             "groupId": None, "generation": 1})
    with TableClient.from_connection_string(connection_string, f"{prefix}Enablement") as table:
        for rows in by_partition.values():
            for i in range(0, len(rows), 100):
                table.submit_transaction([("upsert", r) for r in rows[i:i + 100]])


@pytest.fixture(scope="module")
def big(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[Stack]:
    with private_stack(BIG_PREFIX, azurite=azurite, emulator=graph_emulator, **QUIET_WORKER) as started:
        enable_all(started)
        seed_enablement(azurite.connection_string, BIG_PREFIX, fake_user_ids(BIG_USERS, seed=1))
        register(started.settings, CASEY, Method.EMAIL)
        yield started


def test_a_worker_killed_in_the_sweep_resumes_to_the_totals_and_rows_of_a_clean_run(big: Stack) -> None:
    accepted = start_run(big, body={"sendReminders": False})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["id"]
    with TableClient.from_connection_string(big.azurite.connection_string, f"{BIG_PREFIX}ComplianceRuns") as runs:
        deadline = time.monotonic() + 120
        while not any(int(s.get("pages") or 0) >= 1 and not s["done"] for s in runs.query_entities(
                "PartitionKey eq @pk and RowKey ge 'shard-' and RowKey lt 'shard-~'", parameters={"pk": run_id})):
            assert time.monotonic() < deadline, "no shard checkpointed a page"
            time.sleep(0.02)
        big.host.process.kill()  # SIGKILL while sweep shards are between pages: their messages stay leased
        big.host.stop()
        killed = {s["RowKey"]: (int(s.get("pages") or 0), bool(s["done"])) for s in runs.query_entities(
            "PartitionKey eq @pk and RowKey ge 'shard-' and RowKey lt 'shard-~'", parameters={"pk": run_id})}
        assert runs.get_entity(run_id, "entra")["done"] is True  # the Entra report was behind us
    assert any(pages >= 1 and not done for pages, done in killed.values()), killed  # killed mid-sweep

    big.start_host()
    resumed = wait_until_finished(big, run_id, 240)
    clean = wait_until_finished(big, run_to_start(big), 240)

    assert resumed["state"] == clean["state"] == "completed", (resumed, clean)
    counts = ("users", "capable", "notRegistered", "byStatus", "byMethod", "topReasons", "entraDisagree",
              "usersProcessed", "shardsDone")
    assert {k: resumed[k] for k in counts} == {k: clean[k] for k in counts}
    assert resumed["users"] == BIG_USERS + len(enabled_members(big.emulator)) and resumed["capable"] == 1
    assert all_rows_fast(big, run_id) == all_rows_fast(big, clean["id"])


def run_to_start(stack: Stack) -> str:
    response = start_run(stack, body={"sendReminders": False})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def latest_completed_run(stack: Stack) -> dict[str, Any]:
    """The newest completed run, or a new one run to completion when there is none (a test run on its own)."""
    done = [r for r in get(stack, "runs").json()["value"] if r["state"] == "completed"]
    return done[0] if done else wait_until_finished(stack, run_to_start(stack), 240)


def test_the_csv_export_of_a_large_run_comes_in_pages_that_add_up_to_the_json_rows(big: Stack) -> None:
    latest = latest_completed_run(big)  # the crash test's clean run when it ran first (a 20,000-user run is slow)
    assert latest["state"] == "completed" and latest["users"] > CSV_PAGE_ROWS

    pages = csv_pages(big, latest["id"])

    assert len(pages) == -(-latest["users"] // CSV_PAGE_ROWS) and all(len(p) == CSV_PAGE_ROWS for p in pages[:-1])
    exported = [r["userId"] for page in pages for r in page]
    assert len(exported) == len(set(exported)) == latest["users"]  # no page repeats or skips a row
    json_ids: list[str] = []
    continuation = None
    while True:
        page = get(big, f"runs/{latest['id']}/users", pageSize=1000,
                   **({"continuation": continuation} if continuation else {})).json()
        json_ids.extend(r["userId"] for r in page["value"])
        if not (continuation := page["continuation"]):
            break
    assert exported == json_ids  # the same rows, in the same order



# ---- in-process: the service with the real stores, Azurite and the emulator, one shard at a time ----------------


@dataclass
class InProcess:
    """A ComplianceService on its own table and queue prefix, driven message by message (no host, no timers)."""

    service: ComplianceService
    store: ComplianceStore
    storage: StorageClients
    graph: GraphGateway
    settings: dict[str, str]
    prefix: str
    clock: list[datetime]

    async def close(self) -> None:
        await self.graph.close()
        await self.storage.close()

    async def sweep(self, send_reminders: bool = False, fails_once: set[int] | None = None) -> Run:
        """Start a run and process its shards in order; a shard in `fails_once` raises once and is redelivered."""
        run = await self.service.start("manual", SYSTEM, send_reminders=send_reminders)
        if run.entra is EntraState.PENDING:
            await self.service.process(ComplianceMessage(runId=run.id, step="entra"), final_attempt=True)
        for index in range(SWEEP_SHARDS):
            message = ComplianceMessage(runId=run.id, step="partition", index=index)
            if index in (fails_once or set()):
                with pytest.raises(StorageUnavailable):
                    await self.service.process(message, final_attempt=False)
            await self.service.process(message, final_attempt=False)
        found = await self.store.get_run(run.id)
        assert found is not None and found[0].state is RunState.COMPLETED, found
        return found[0]


class CheckpointFailsOnce(ComplianceStore):
    """Storage fails at the first checkpoint of the shards named, after that page's rows were written and its
    reminders queued: the queue delivers the message again (what a crash at that moment comes to)."""

    def __init__(self, storage: StorageClients, shards: set[int], **options: Any) -> None:
        super().__init__(storage, **options)
        self._pending = set(shards)

    async def checkpoint_shard(self, run_id: str, shard: Shard, *args: Any, **kwargs: Any) -> Shard:
        if shard.index in self._pending:
            self._pending.discard(shard.index)
            raise StorageUnavailable("storage failed at the checkpoint")
        return await super().checkpoint_shard(run_id, shard, *args, **kwargs)


async def in_process(azurite: Azurite, emulator: GraphEmulator, users: list[str],
                     store: Callable[[StorageClients], ComplianceStore] = ComplianceStore) -> InProcess:
    prefix = f"ci{uuid.uuid4().hex[:10]}"
    settings = app_settings(azurite, emulator, SSPR_TABLE_PREFIX=prefix)
    config = load_settings(settings)
    storage = StorageClients.from_settings(config)
    policies = PolicyStore(storage)
    _, etag = await policies.get()
    await policies.replace(Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"}), etag, "test")
    await storage.table_ready("Enablement")
    seed_enablement(azurite.connection_string, prefix, users)
    clock = [NOW]
    compliance = store(storage)
    graph = GraphGateway.create(config, graph_credential(config))
    service = ComplianceService(
        compliance, ComplianceQueue(storage), graph, PolicyCache(policies),
        ComplianceReminders(ReminderStore(storage), MessageQueues(storage), timedelta(days=7)), AuditStore(storage),
        lambda: clock[0], ReportsPacer(quota=100))
    return InProcess(service, compliance, storage, graph, settings, prefix, clock)


def drain(connection_string: str, queue_name: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        while batch := list(queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=300)):
            messages.extend(json.loads(base64.b64decode(m.content)) for m in batch)
    return messages


async def test_reminders_sent_counts_every_reminder_queued_even_when_a_shard_is_redelivered_after_them(
        azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    users = fake_user_ids(160, seed=2)  # nobody registered: every one is due a reminder
    flaky: set[int] = {3, 9}
    inproc = await in_process(azurite, graph_emulator, users,
                              lambda storage: CheckpointFailsOnce(storage, flaky))
    try:
        run = await inproc.sweep(send_reminders=True, fails_once=flaky)
    finally:
        await inproc.close()

    queued = drain(azurite.connection_string, f"{inproc.prefix}-notifications")
    assert len(queued) == len({m["id"] for m in queued}) == len(users)  # one message each, none queued twice
    assert {m["userId"] for m in queued} == set(users)
    with TableClient.from_connection_string(azurite.connection_string, f"{inproc.prefix}Reminders") as slots:
        claimed = {e["PartitionKey"] for e in slots.list_entities() if e.get("claimedBy") == run.id}
    assert claimed == set(users)
    assert run.tally.reminders == len(users)  # the redelivered shards' reminders are counted too


async def test_the_purge_keeps_run_totals_for_90_days_and_per_user_rows_of_the_newest_runs_only(
        azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    users = fake_user_ids(40, seed=3)
    inproc = await in_process(azurite, graph_emulator, users,
                              lambda storage: ComplianceStore(storage, rows_kept_runs=2))
    try:
        inproc.clock[0] = NOW - timedelta(days=91)
        ancient = await inproc.sweep()
        runs = []
        for days in (3, 2, 1):
            inproc.clock[0] = NOW - timedelta(days=days)
            runs.append(await inproc.sweep())
        older, *newest = runs
        rows_before = user_rows_by_run(azurite, inproc.prefix)
        entra_before = user_rows_by_run(azurite, inproc.prefix, "ComplianceEntra")  # Entra's facts, per run
        assert {run.id: rows_before[run.id] for run in runs} == {run.id: len(users) for run in runs}

        maintenance = MaintenanceService(standard_purges(
            ChallengeStore(inproc.storage), SecurityInfoStore(inproc.storage), ThrottleStore(inproc.storage),
            MailLedger(inproc.storage), ReminderStore(inproc.storage), EnablementStore(inproc.storage),
            timedelta(days=7), compliance=inproc.store), lambda: NOW)
        first = await maintenance.purge_expired()
        second = await maintenance.purge_expired()

        assert await inproc.store.get_run(ancient.id) is None  # older than 90 days: gone, totals and all
        kept_older = await inproc.store.get_run(older.id)
        assert kept_older is not None and kept_older[0].rows_purged and kept_older[0].tally == older.tally
        with pytest.raises(NotFound):
            await inproc.service.users(older.id, UserFilter(), 100, None)
        for run in newest:
            found = await inproc.store.get_run(run.id)
            assert found is not None and not found[0].rows_purged
            rows, _ = await inproc.service.users(run.id, UserFilter(), 100, None)
            assert len(rows) == len(users)
    finally:
        await inproc.close()

    assert [r.id for r in await history(azurite, inproc)] == [r.id for r in reversed(runs)]
    rows_after = user_rows_by_run(azurite, inproc.prefix)
    assert set(rows_after) == {run.id for run in newest}
    assert user_rows_by_run(azurite, inproc.prefix, "ComplianceEntra").keys() == {run.id for run in newest}
    assert first.compliance_runs == 1
    assert first.compliance_rows == sum(rows_before[run.id] + entra_before[run.id] for run in (ancient, older))
    assert (second.compliance_runs, second.compliance_rows) == (0, 0)  # a second purge changes nothing
    with TableClient.from_connection_string(azurite.connection_string, f"{inproc.prefix}ComplianceRuns") as table:
        assert not list(table.query_entities("PartitionKey eq @pk", parameters={"pk": ancient.id}))


def user_rows_by_run(azurite: Azurite, prefix: str, table_name: str = "ComplianceUsers") -> dict[str, int]:
    counts: dict[str, int] = {}
    with TableClient.from_connection_string(azurite.connection_string, f"{prefix}{table_name}") as table:
        for e in table.list_entities(select=["PartitionKey"]):
            run_id = str(e["PartitionKey"])[:36]
            counts[run_id] = counts.get(run_id, 0) + 1
    return counts


async def history(azurite: Azurite, inproc: InProcess) -> list[Run]:
    storage = StorageClients.from_settings(load_settings(inproc.settings))
    try:
        return await ComplianceStore(storage).latest_runs(30)
    finally:
        await storage.close()
