"""A password expiry run killed (SIGKILL) in the middle of a page resumes, completes, and mails nobody twice.

The stack is the test's own (Azurite, an emulator with 1,500 generated users whose passwords changed over the last
120 days, and the local host with both the run's worker and the notifications worker), so killing its host
disturbs nobody else. Pages of 100 users and a slow Graph keep several pages in flight, and the host is killed at
a moment it is seen mid-page: stages claimed for users whose page's checkpoint has not been written yet. What is
checked is what users see: the emulator's outbox, once the test's own notifications queue is drained.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devtools.stack import Stack, private_stack
from devtools.tenant import set_faults
from tests.integration.tokens import bearer, user_token

PREFIX = "expirykill"
ADMIN, READER = "admin@contoso.example", "reader@contoso.example"
HOST = {"FUNCHOST_DISABLE_TIMERS": "1", "FUNCHOST_QUEUE_LEASE_SECONDS": "2", "SSPR_EXPIRY_PAGE_SIZE": "100"}


def api(stack: Stack, method: str, path: str, upn: str = ADMIN, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{stack.host.base_url}/api/{path}", timeout=30,
                         headers=bearer(user_token(stack.emulator, upn)), **kwargs)


def turn_reminders_on(stack: Stack) -> None:
    current = api(stack, "GET", "manage/policy")
    document = {**current.json(), "expiryReminders": {"enabled": True, "stages": [14, 7, 3, 1], "sms": False,
                                                      "cloudPolicyForSyncedUsers": False}}
    saved = httpx.put(f"{stack.host.base_url}/api/manage/policy", json=document, timeout=30,
                      headers={**bearer(user_token(stack.emulator, ADMIN)), "If-Match": current.headers["etag"]})
    assert saved.status_code == 200, saved.text


def mid_page(stack: Stack, run_id: str) -> bool:
    """Stages this run claimed beyond those its checkpointed pages counted: a page is between its reminders and
    its checkpoint (its redelivery will meet them)."""
    connection = stack.azurite.connection_string
    with TableClient.from_connection_string(connection, f"{PREFIX}ExpiryRuns") as runs:
        pages = list(runs.query_entities("PartitionKey eq @pk and RowKey ge 'page-' and RowKey lt 'page-~'",
                                         parameters={"pk": run_id}))
    with TableClient.from_connection_string(connection, f"{PREFIX}Reminders") as slots:
        try:
            claimed = sum(1 for _ in slots.query_entities("RowKey eq 'expiry' and claimedBy eq @run",
                                                          parameters={"run": run_id}, select=["PartitionKey"]))
        except ResourceNotFoundError:
            return False  # no stage claimed yet: the table is made by the first claim
    counted = sum(sum(json.loads(p.get("tally") or "{}").get("reminders", {}).values()) for p in pages if p["done"])
    return claimed > counted and not all(p["done"] for p in pages)


def drained(stack: Stack, timeout: float = 90) -> list[dict[str, Any]]:
    """The outbox once the test's notifications queue (and its poison queue) hold nothing more to send."""
    connection = stack.azurite.connection_string
    deadline = time.monotonic() + timeout
    with QueueClient.from_connection_string(connection, f"{PREFIX}-notifications") as queue:
        while queue.get_queue_properties().approximate_message_count:
            assert time.monotonic() < deadline, "the notifications queue was not drained"
            time.sleep(0.3)
    time.sleep(1.0)  # the last messages taken are being sent
    return list(httpx.get(f"{stack.emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def test_a_run_killed_mid_page_resumes_and_mails_each_stage_once() -> None:
    with private_stack(PREFIX, users=1500, **HOST) as stack:
        turn_reminders_on(stack)
        set_faults(stack.emulator, {"latencyMs": 400, "pathContains": "/users", "methods": ["GET"], "target": "graph"})
        accepted = api(stack, "POST", "manage/password-expiry/runs")
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + 60
        while not mid_page(stack, run_id):
            assert time.monotonic() < deadline, "never saw the run in the middle of a page"
            time.sleep(0.01)
        stack.host.process.kill()  # SIGKILL: no grace; the page's message stays leased, then comes back
        stack.stop_host()
        assert api_run_state(stack, run_id) != "completed"
        set_faults(stack.emulator)

        stack.start_host()
        deadline = time.monotonic() + 120
        while (run := api(stack, "GET", f"manage/password-expiry/runs/{run_id}", READER).json())["state"] not in (
                "completed", "failed"):
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert run["state"] == "completed", run
        mails = [m for m in drained(stack) if m["channel"] == "mail"]
        reminded = reminded_users(stack, run_id)
        for queue in ("notifications", "expiry-reminders"):
            assert poisoned(stack, queue) == 0, queue
    assert run["users"] == 1518 and run["pagesDone"] == run["pageCount"] == 16
    assert run["remindersSent"] == len(reminded) > 50
    per_address = Counter(m["to"][0] for m in mails)
    assert [a for a, n in per_address.items() if n > 1] == []  # nobody mailed twice
    assert sorted(per_address) == sorted(a for a in reminded.values() if a)  # and everyone reminded mailed once


def reminded_users(stack: Stack, run_id: str) -> dict[str, str | None]:
    """Each user the run reminded (its per-user rows with a stage) and the first address a mail to them names."""
    rows: list[dict[str, Any]] = []
    continuation = None
    while True:
        params = {"within": "14", "pageSize": 1000, **({"continuation": continuation} if continuation else {})}
        page = api(stack, "GET", f"manage/password-expiry/runs/{run_id}/users", READER, params=params).json()
        rows.extend(page["value"])
        if not (continuation := page["continuation"]):
            break
    first: dict[str, str | None] = {}
    for row in rows:
        if row["reminderStage"] is None:
            continue
        user = httpx.get(f"{stack.emulator.base_url}/_emulator/users/{row['userId']}", timeout=10).json()
        first[row["userId"]] = user["mail"] or next(iter(user["otherMails"]), None)
    return first


def poisoned(stack: Stack, queue: str) -> int:
    with QueueClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}-{queue}-poison") as poison:
        try:
            return int(poison.get_queue_properties().approximate_message_count)
        except ResourceNotFoundError:
            return 0


def api_run_state(stack: Stack, run_id: str) -> str:
    with TableClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}ExpiryRuns") as runs:
        return str(runs.get_entity(run_id, "run")["state"])
