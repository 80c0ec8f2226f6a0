"""Purge of expired state (security.md E4) on Azurite: expired rows of every kind go, live ones stay, twice is a no-op.

Rows are seeded straight into the tables (the shapes the stores write), in tables of their own (a fresh prefix per
test), and the purge runs with a fixed clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from devtools.azurite import Azurite
from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.change_store import ChangeStore
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.mail import MailLedger
from shared.adapters.reminder_store import ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.adapters.throttle_store import ThrottleStore
from shared.domain import throttling
from shared.domain.enablement import Run, RunState, Scope
from shared.services.maintenance import MaintenanceService, PurgeReport, standard_purges

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
REMINDER_PERIOD = timedelta(days=7)


@pytest.fixture
async def storage(azurite: Azurite) -> AsyncIterator[StorageClients]:
    conn = azurite.connection_string
    clients = StorageClients(TableServiceClient.from_connection_string(conn),
                             QueueServiceClient.from_connection_string(conn), f"purge{uuid.uuid4().hex[:8]}")
    yield clients
    await clients.close()


def service(storage: StorageClients) -> MaintenanceService:
    return MaintenanceService(standard_purges(ChallengeStore(storage), SecurityInfoStore(storage),
                                              ThrottleStore(storage), MailLedger(storage), ReminderStore(storage),
                                              EnablementStore(storage), REMINDER_PERIOD,
                                              changes=ChangeStore(storage)), lambda: NOW)


async def put(storage: StorageClients, table: str, *entities: dict[str, Any]) -> None:
    client = await storage.table_ready(table)
    for entity in entities:
        await client.upsert_entity(entity)


async def keys(storage: StorageClients, table: str) -> set[tuple[str, str]]:
    client = await storage.table_ready(table)
    return {(e["PartitionKey"], e["RowKey"]) async for e in client.list_entities(select=["PartitionKey", "RowKey"])}


def challenge(flow: str, created: datetime, **moments: datetime) -> dict[str, Any]:
    return {"PartitionKey": flow, "RowKey": "email", "userId": str(uuid.uuid4()), "method": "email",
            "channel": "email", "contact": "casey.alt@fabrikam.example", "createdAt": created, "sendCount": 1,
            "failedAttempts": 0, "delivery": "delivered", **moments}


def throttle_user(user: str, sends: list[datetime], blocked_until: datetime | None = None) -> dict[str, Any]:
    return {"PartitionKey": f"user-{user}", "RowKey": "limits", "sends": json.dumps([s.isoformat() for s in sends]),
            "failures": "[]", "blockedUntil": blocked_until}


def run(created: datetime, state: RunState, finished: datetime | None) -> Run:
    return Run(id=str(uuid.uuid4()), scope=Scope.ALL, group_id=None, include_guests=False, generation=1,
               requested_by="admin", created_at=created, updated_at=finished or created, state=state,
               completed_at=finished)


async def test_the_purge_deletes_expired_rows_of_every_kind_keeps_live_ones_and_a_second_purge_is_a_no_op(
        storage: StorageClients) -> None:
    await put(storage, "Challenges",
              challenge("flow-expired", NOW - timedelta(days=3), sentAt=NOW - timedelta(days=3),
                        expiresAt=NOW - timedelta(days=3) + timedelta(minutes=5)),
              challenge("flow-used-lately", NOW - timedelta(days=3), usedAt=NOW - timedelta(hours=1)),
              challenge("flow-live", NOW - timedelta(minutes=3), expiresAt=NOW + timedelta(minutes=2)))
    await put(storage, "SecurityInfo",
              {"PartitionKey": "user-a", "RowKey": "pending-authenticatorApp", "setupId": "s1", "secret": "sealed",
               "createdAt": NOW - timedelta(hours=3), "expiresAt": NOW - timedelta(hours=2, minutes=50)},
              {"PartitionKey": "user-b", "RowKey": "pending-authenticatorApp", "setupId": "s2", "secret": "sealed",
               "createdAt": NOW - timedelta(minutes=2), "expiresAt": NOW + timedelta(minutes=8)},
              {"PartitionKey": "user-a", "RowKey": "summary", "methods": "email", "methodCount": 1},
              {"PartitionKey": "user-a", "RowKey": "method-email", "kind": "email",
               "registeredAt": NOW - timedelta(days=400)})
    old_window, current_window = "20261125T000000Z", "20261125T030000Z"
    await put(storage, "Throttle",
              throttle_user("quiet", [NOW - timedelta(hours=2)]),
              throttle_user("blocked", [NOW - timedelta(hours=5)], blocked_until=NOW + timedelta(hours=19)),
              throttle_user("busy", [NOW - timedelta(minutes=4)]),
              {"PartitionKey": "budget-sms-ip-abc", "RowKey": old_window, "count": 3},
              {"PartitionKey": "budget-sms-global", "RowKey": f"{old_window}-03", "count": 9},
              {"PartitionKey": "budget-sms-ip-abc", "RowKey": current_window, "count": 1},
              {"PartitionKey": "budget-sms-global", "RowKey": f"{current_window}-05", "count": 2})
    await put(storage, "Notifications",
              {"PartitionKey": "msg-old", "RowKey": "mail", "state": "sent", "at": NOW - timedelta(days=20)},
              {"PartitionKey": "msg-new", "RowKey": "mail", "state": "sent", "at": NOW - timedelta(days=1)})
    await put(storage, "Reminders",
              {"PartitionKey": "user-a", "RowKey": "registration", "sentAt": NOW - timedelta(days=8), "messageId": "m1"},
              {"PartitionKey": "user-b", "RowKey": "registration", "sentAt": NOW - timedelta(days=1), "messageId": "m2"},
              {"PartitionKey": "user-a", "RowKey": "compliance", "sentAt": NOW - timedelta(days=30)},
              # password-expiry stages: one claimed past the largest stage (its password has expired), one lately
              {"PartitionKey": "user-a", "RowKey": "expiry", "passwordVersion": "2026-05-01T00:00:00Z",
               "stages": "14,7", "claimedBy": "run-1", "sentAt": NOW - timedelta(days=100)},
              {"PartitionKey": "user-b", "RowKey": "expiry", "passwordVersion": "2026-09-01T00:00:00Z",
               "stages": "14", "claimedBy": "run-2", "sentAt": NOW - timedelta(days=10)})
    await put(storage, "PasswordChanges",  # self-service changes: a day after they began, their rows serve nobody
              {"PartitionKey": "change-old", "RowKey": "change", "state": "done", "createdAt": NOW - timedelta(days=2)},
              {"PartitionKey": "change-new", "RowKey": "change", "state": "pending",
               "createdAt": NOW - timedelta(hours=1)})

    enablement = EnablementStore(storage)
    oldest_completed = run(NOW - timedelta(days=210), RunState.COMPLETED, NOW - timedelta(days=209))
    old_failed = run(NOW - timedelta(days=121), RunState.FAILED, NOW - timedelta(days=120))
    newest_completed = run(NOW - timedelta(days=101), RunState.COMPLETED, NOW - timedelta(days=100))
    latest_failed = run(NOW - timedelta(days=96), RunState.FAILED, NOW - timedelta(days=95))
    for r in (oldest_completed, old_failed, newest_completed, latest_failed):
        await enablement.create_run(r)
        await enablement.add_page(r.id, 1, "https://graph.microsoft.com/v1.0/users?$skiptoken=x")
    lock = await enablement.read_lock()
    await enablement.claim_lock(lock, latest_failed.id, 4)

    report = await service(storage).purge_expired()

    assert report == PurgeReport(challenges=1, pending_setups=1, throttle_rows=3, mail_ledger=1, reminder_slots=1,
                                 expiry_slots=1, enablement_runs=2, password_changes=1)
    assert await keys(storage, "Challenges") == {("flow-used-lately", "email"), ("flow-live", "email")}
    assert await keys(storage, "SecurityInfo") == {("user-b", "pending-authenticatorApp"), ("user-a", "summary"),
                                                   ("user-a", "method-email")}
    assert await keys(storage, "Throttle") == {("user-blocked", "limits"), ("user-busy", "limits"),
                                               ("budget-sms-ip-abc", current_window),
                                               ("budget-sms-global", f"{current_window}-05")}
    assert await keys(storage, "Notifications") == {("msg-new", "mail")}
    assert await keys(storage, "Reminders") == {("user-b", "registration"), ("user-a", "compliance"),
                                                ("user-b", "expiry")}
    assert await keys(storage, "PasswordChanges") == {("change-new", "change")}
    runs = await keys(storage, "EnablementRuns")
    partitions = {pk for pk, _ in runs}
    assert oldest_completed.id not in partitions and old_failed.id not in partitions
    assert {(latest_failed.id, "run"), (latest_failed.id, "page-000001"), (newest_completed.id, "run"),
            (newest_completed.id, "page-000001")} <= runs
    assert [r.id for r in await enablement.latest_runs(10)] == [latest_failed.id, newest_completed.id]
    assert (await enablement.latest_completed_run()) == newest_completed

    before = {t: await keys(storage, t) for t in ("Challenges", "SecurityInfo", "Throttle", "Notifications",
                                                  "Reminders", "EnablementRuns", "PasswordChanges")}
    again = await service(storage).purge_expired()
    assert again.total == 0
    assert {t: await keys(storage, t) for t in before} == before


async def test_E4_G1_the_purge_keeps_failed_flows_while_they_count_so_the_fifth_in_24_hours_still_blocks(
        storage: StorageClients) -> None:
    """A user row whose sends and failures are old but whose failed flows are inside their 24 hours stays; one whose
    failed flows are all older goes. Forgetting the first would give its user five more failed flows (G1)."""
    def flows_row(user: str, failed_flows: list[datetime]) -> dict[str, Any]:
        return {**throttle_user(user, [NOW - timedelta(hours=30)]),
                "failures": json.dumps([(NOW - timedelta(hours=29)).isoformat()]),
                "failedFlows": json.dumps([f.isoformat() for f in failed_flows])}

    recent = [NOW - timedelta(hours=h) for h in (23, 20, 9, 2)]  # four failed flows inside 24 hours
    await put(storage, "Throttle", flows_row("four-flows", recent),
              flows_row("old-flows", [NOW - timedelta(hours=h) for h in (40, 30, 25)]))

    report = await service(storage).purge_expired()

    assert report.throttle_rows == 1
    assert await keys(storage, "Throttle") == {("user-four-flows", "limits")}
    store = ThrottleStore(storage)
    _, after = await store.change_user("four-flows", lambda t: throttling.record_failed_flow(t, NOW))
    assert throttling.is_blocked(after, NOW)  # the fifth failed flow in 24 hours blocks (G1)


async def test_the_purge_works_through_a_backlog_in_bounded_steps(storage: StorageClients) -> None:
    flows = [f"flow-{i:03d}" for i in range(250)]
    client = await storage.table_ready("Challenges")
    for flow in flows:
        await client.upsert_entity(challenge(flow, NOW - timedelta(days=2), expiresAt=NOW - timedelta(days=2)))
    bounded = MaintenanceService(standard_purges(ChallengeStore(storage), SecurityInfoStore(storage),
                                                 ThrottleStore(storage), MailLedger(storage), ReminderStore(storage),
                                                 EnablementStore(storage), REMINDER_PERIOD), lambda: NOW, limit=100)

    assert [(await bounded.purge_expired()).challenges for _ in range(4)] == [100, 100, 50, 0]
    assert await keys(storage, "Challenges") == set()
