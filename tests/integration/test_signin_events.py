"""Streamed sign-in batches through the local host: one queue message per user, one reminder per user and period.

The host's own notification worker (engineer A's sspr-notifications consumer) is disabled here, so the reminder
messages this capability queues stay on the queue to be counted.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.processes import REPO_ROOT
from devtools.stack import FUNCTION_KEY, MASTER_KEY, GraphEmulator, start_function_host
from shared import queues
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.policy_store import PolicyStore
from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.policy import Method
from shared.domain.security_info import SecurityInfoSummary
from shared.services.policy import PolicyCache
from shared.services.signin import SEND_CONCURRENCY, RegistrationReminders, SignInEventIntake
from tests.integration.test_signin_hook import SignInStack, start_signin_stack

EVENTS = "/api/hooks/signin-events"
NOTIFICATIONS = queues.NOTIFICATIONS  # logical names: storage.queue_ready adds the deployment's prefix
SIGNIN_EVENTS = queues.SIGNIN_EVENTS


def notification_workers(host_url: str) -> list[str]:
    """Functions of the app that consume sspr-notifications (to be disabled in these tests)."""
    keys = {"x-functions-key": MASTER_KEY}
    names = []
    for entry in httpx.get(f"{host_url}/admin/functions", headers=keys, timeout=10).json():
        config = httpx.get(f"{host_url}/admin/functions/{entry['name']}", headers=keys, timeout=10).json()
        bound = {b.get("queueName") for b in config["config"]["bindings"]}
        if bound & {queues.trigger_queue(NOTIFICATIONS), f"sspr-{NOTIFICATIONS}"}:
            names.append(entry["name"])
    return names


@pytest.fixture(scope="module")
def stack(graph_emulator: GraphEmulator) -> Iterator[SignInStack]:
    with tempfile.TemporaryDirectory(prefix="sspr-events-") as location:
        started = start_signin_stack(graph_emulator, Path(location))
        try:
            workers = notification_workers(started.host.base_url)
            if workers:
                started.host.stop()
                disabled = {f"AzureWebJobs.{name}.Disabled": "true" for name in workers}
                started.settings.update(disabled)
                started.host = start_function_host(REPO_ROOT, started.settings)
            yield started
        finally:
            started.host.stop()
            started.azurite.stop()


def record(user_id: str, result: str = "0", category: str = "SignInLogs") -> dict[str, Any]:
    return {"time": "2026-11-25T12:00:00Z", "category": category, "operationName": "Sign-in activity",
            "resultType": result, "properties": {"userId": user_id, "userPrincipalName": "someone@contoso.com",
                                                 "appId": str(uuid.uuid4()), "ipAddress": "30.51.176.110",
                                                 "status": {"errorCode": int(result)}}}


def post(stack: SignInStack, body: Any, key: str | None = FUNCTION_KEY) -> httpx.Response:
    headers = {"x-functions-key": key} if key else {}
    return httpx.post(f"{stack.host.base_url}{EVENTS}", headers=headers, json=body, timeout=10)


async def _queue_state(stack: SignInStack) -> tuple[int, list[dict[str, Any]]]:
    storage = StorageClients.from_settings(load_settings(stack.settings))
    try:
        pending = (await (await storage.queue_ready(SIGNIN_EVENTS)).get_queue_properties()).approximate_message_count
        notifications = await storage.queue_ready(NOTIFICATIONS)
        peeked = await notifications.peek_messages(max_messages=32)
        return pending, [json.loads(m.content) for m in peeked]
    finally:
        await storage.close()


def wait_until_processed(stack: SignInStack, timeout: float = 20) -> list[dict[str, Any]]:
    """The reminder messages once every sign-in event message is processed (the worker deletes each on success)."""
    deadline = time.monotonic() + timeout
    while True:
        pending, reminders = asyncio.run(_queue_state(stack))
        if pending == 0:
            return reminders
        assert time.monotonic() < deadline, f"{pending} sign-in event messages still queued"
        time.sleep(0.2)


def test_a_batch_with_duplicates_queues_one_reminder_per_unregistered_enabled_user(stack: SignInStack) -> None:
    unregistered, also_unregistered, registered, not_enabled = (str(uuid.uuid4()) for _ in range(4))
    for user in (unregistered, also_unregistered):
        stack.seed(user)
    stack.seed(registered, summary=SecurityInfoSummary(registered, frozenset({Method.EMAIL}),
                                                       last_confirmed_at=datetime.now(UTC)))
    stack.seed(not_enabled, enabled=False)
    batch = {"records": [
        record(unregistered), record(unregistered.upper()), record(unregistered), record(unregistered, "50126"),
        record(also_unregistered), record(also_unregistered),
        record(registered), record(not_enabled),
        record(str(uuid.uuid4()), category="NonInteractiveUserSignInLogs"),
        record("not-a-guid"), "garbage", {"category": "SignInLogs"}, 42,
    ]}
    before = {m["userId"] for m in wait_until_processed(stack)}

    response = post(stack, batch)

    assert response.status_code == 202, response.text
    assert response.json() == {"records": 13, "users": 4}
    reminders = [m for m in wait_until_processed(stack) if m["userId"] not in before]
    assert sorted(m["userId"] for m in reminders) == sorted([unregistered, also_unregistered])
    assert all(m["kind"] == "registration-reminder" and set(m) == {"kind", "id", "userId"} for m in reminders)

    # The same sign-ins again (a redelivered batch, or the next sign-in) within the period: nothing more.
    assert post(stack, batch).status_code == 202
    again = [m for m in wait_until_processed(stack) if m["userId"] not in before]
    assert sorted(m["id"] for m in again) == sorted(m["id"] for m in reminders)


def test_the_forwarder_needs_the_function_key(stack: SignInStack) -> None:
    assert post(stack, {"records": []}, key=None).status_code == 401
    assert post(stack, {"records": []}, key="wrong-key").status_code == 401


@pytest.mark.parametrize(("body", "status"), [
    ({"records": "not a list"}, 400),
    ({"rows": []}, 400),
    ([], 400),
    ({"records": [{}] * 5001}, 400),  # more records than one batch may hold
])
def test_a_batch_that_is_not_a_records_list_is_refused(stack: SignInStack, body: Any, status: int) -> None:
    response = post(stack, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_batch_over_1_mib_is_413(stack: SignInStack) -> None:
    response = httpx.post(f"{stack.host.base_url}{EVENTS}", headers={"x-functions-key": FUNCTION_KEY},
                          content=b'{"records":["' + b"x" * (1024 * 1024) + b'"]}', timeout=10)
    assert response.status_code == 413


class CountingQueues(MessageQueues):
    """The real queues, counting how many sends are in flight at once."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage)
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, queue: str, body: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await super().send(queue, body)
        finally:
            self.in_flight -= 1


def test_a_batch_of_many_users_is_queued_a_bounded_number_of_sends_at_a_time(stack: SignInStack) -> None:
    users = [str(uuid.uuid4()) for _ in range(200)]

    async def scenario() -> tuple[int, int]:
        storage = StorageClients.from_settings(load_settings(stack.settings))
        try:
            queues = CountingQueues(storage)
            queued = await SignInEventIntake(queues).enqueue(users + users[:50])
            return queued, queues.most_in_flight
        finally:
            await storage.close()

    queued, most_in_flight = asyncio.run(scenario())
    assert queued == 200
    assert most_in_flight > 1 and most_in_flight <= SEND_CONCURRENCY


# ---- the worker's claim, at the service level (an injected clock) ------------------------------------------------

async def _clear_notifications(stack: SignInStack) -> None:
    storage = StorageClients.from_settings(load_settings(stack.settings))
    try:
        await (await storage.queue_ready(NOTIFICATIONS)).clear_messages()
    finally:
        await storage.close()


def reminders_of(stack: SignInStack, user: str) -> list[dict[str, Any]]:
    return [m for m in wait_until_processed(stack) if m["userId"] == user]


def test_concurrent_and_redelivered_events_queue_one_reminder_id_per_period(stack: SignInStack) -> None:
    asyncio.run(_clear_notifications(stack))
    user = str(uuid.uuid4())
    stack.seed(user)
    now = [datetime.now(UTC)]

    async def scenario() -> tuple[list[bool], bool, bool, bool]:
        storage = StorageClients.from_settings(load_settings(stack.settings))
        try:
            reminders = RegistrationReminders(
                SecurityInfoStore(storage), EnablementStore(storage), PolicyCache(PolicyStore(storage)),
                ReminderStore(storage), MessageQueues(storage), timedelta(days=7), lambda: now[0])
            concurrent = await asyncio.gather(*(reminders.after_sign_in(user) for _ in range(8)))
            redelivered = await reminders.after_sign_in(user)
            now[0] += timedelta(days=7) - timedelta(seconds=1)
            last_second = await reminders.after_sign_in(user)
            now[0] += timedelta(seconds=1)
            next_period = await reminders.after_sign_in(user)
            return concurrent, redelivered, last_second, next_period
        finally:
            await storage.close()

    concurrent, redelivered, last_second, next_period = asyncio.run(scenario())
    assert concurrent.count(True) == 1
    assert (redelivered, last_second, next_period) == (False, False, True)
    # Workers racing in one period may each queue a copy, but all under one id: the notifications worker's ledger
    # (one row per message id) mails it once. The next period is a new id.
    ids = [m["id"] for m in reminders_of(stack, user)]
    assert len(set(ids)) == 2, ids


class WorkerCrashed(Exception):
    """Stands for a worker process dying mid-message (the queue then redelivers the message)."""


class CrashOnFirstClaim(ReminderStore):
    """The real store, except that the first claim never happens: the worker dies after queueing the reminder."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage)
        self.crashed = False

    async def claim_registration_slot(self, *args: Any, **kwargs: Any) -> str | None:
        if not self.crashed:
            self.crashed = True
            raise WorkerCrashed()
        return await super().claim_registration_slot(*args, **kwargs)


def test_a_crash_between_queueing_and_claiming_loses_no_reminder_and_the_redelivery_repeats_its_id(
        stack: SignInStack) -> None:
    asyncio.run(_clear_notifications(stack))
    user = str(uuid.uuid4())
    stack.seed(user)
    now = datetime.now(UTC)

    async def scenario() -> tuple[bool, bool, str | None]:
        storage = StorageClients.from_settings(load_settings(stack.settings))
        try:
            reminders = RegistrationReminders(
                SecurityInfoStore(storage), EnablementStore(storage), PolicyCache(PolicyStore(storage)),
                CrashOnFirstClaim(storage), MessageQueues(storage), timedelta(days=7), lambda: now)
            with pytest.raises(WorkerCrashed):
                await reminders.after_sign_in(user)
            redelivered = await reminders.after_sign_in(user)
            again = await reminders.after_sign_in(user)
            slot = await ReminderStore(storage).registration_slot(user)
            return redelivered, again, slot.message_id if slot else None
        finally:
            await storage.close()

    redelivered, again, claimed_id = asyncio.run(scenario())
    assert (redelivered, again) == (True, False)
    queued = reminders_of(stack, user)
    # Before the fix the period was claimed first, so this crash left it claimed and nothing queued: no reminder.
    assert len(queued) == 2, queued
    assert {m["id"] for m in queued} == {claimed_id}
