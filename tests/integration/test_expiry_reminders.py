"""Password expiry end to end: the admin's runs through the local host, the run's queue worker and the
notifications worker, Azurite, and an emulator of the module's own (the demo tenant's 18 named users, no generated
ones, so every count is known). What a user sees is the mail and text in the emulator's outbox.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite
from devtools.stack import MASTER_KEY, Stack, emulator_running, private_stack
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.expiry_reminders import reminder_id
from shared.domain.password_expiry import version_of
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from tests.integration.tokens import bearer, user_token

PREFIX = "expiry"
ADMIN, READER, CASEY_UPN = "admin@contoso.example", "reader@contoso.example", "casey@contoso.example"
CASEY = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
SVEN = "c0ffee00-5e1f-4ea5-b0a7-000000001004"
SYNCED_P1 = "c0ffee00-5e1f-4ea5-b0a7-000000001006"
FIONA = "c0ffee00-5e1f-4ea5-b0a7-00000000100e"
FRANK = "c0ffee00-5e1f-4ea5-b0a7-00000000100f"
CLOUD_CHANGE = "https://mysignins.microsoft.com/security-info/password/change"
NOW = datetime.now(UTC).replace(microsecond=0)
HOST = {"FUNCHOST_DISABLE_TIMERS": "1", "FUNCHOST_QUEUE_LEASE_SECONDS": "2"}


# ---- helpers ----------------------------------------------------------------------------------------------------


def api(stack: Stack, method: str, path: str, upn: str = ADMIN, headers: dict[str, str] | None = None,
        **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{stack.host.base_url}/api/{path}", timeout=30,
                         headers={**bearer(user_token(stack.emulator, upn)), **(headers or {})}, **kwargs)


def set_user(stack: Stack, user_id: str, **fields: Any) -> None:
    httpx.patch(f"{stack.emulator.base_url}/_emulator/users/{user_id}", json=fields, timeout=10).raise_for_status()


def changed(stack: Stack, user_id: str, at: datetime) -> None:
    set_user(stack, user_id, lastPasswordChangeDateTime=at.isoformat())


def set_reminders(stack: Stack, **reminders: Any) -> None:
    current = api(stack, "GET", "manage/policy")
    document = current.json()
    document["expiryReminders"] = {**document["expiryReminders"], **reminders}
    saved = api(stack, "PUT", "manage/policy", json=document, headers={"If-Match": current.headers["etag"]})
    assert saved.status_code == 200, saved.text


def run(stack: Stack, body: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
    accepted = api(stack, "POST", "manage/password-expiry/runs", json=body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["location"] == f"/api/manage/password-expiry/runs/{accepted.json()['id']}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api(stack, "GET", f"manage/password-expiry/runs/{accepted.json()['id']}", READER).json()
        if found["state"] in ("completed", "failed"):
            assert found["state"] == "completed", found
            return dict(found)
        time.sleep(0.2)
    raise AssertionError(f"run did not finish: {found}")


def notifications_queue(stack: Stack) -> QueueClient:
    return QueueClient.from_connection_string(stack.azurite.connection_string, f"{PREFIX}-notifications")


def outbox(stack: Stack) -> list[dict[str, Any]]:
    """Every mail and text the service sent, oldest first, once the notifications queue is empty."""
    deadline = time.monotonic() + 30
    with notifications_queue(stack) as queue:
        while queue.get_queue_properties().approximate_message_count and time.monotonic() < deadline:
            time.sleep(0.2)
    time.sleep(0.5)  # the last message taken is being sent
    entries = httpx.get(f"{stack.emulator.base_url}/_emulator/outbox", timeout=10).json()["value"]
    return list(reversed(entries))


def mails_to(entries: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["channel"] == "mail" and address in e["to"]]


def register(stack: Stack, user_id: str, method: Method, contact: str) -> None:
    async def save() -> None:
        storage = StorageClients.from_settings(load_settings(stack.settings))
        try:
            store = SecurityInfoStore(storage)
            current = await store.summary(user_id)
            summary = SecurityInfoSummary(user_id, frozenset({method}), NOW, None, False, etag=current.etag)
            await store.save(summary, put=[RegisteredMethod(method, NOW, contact=contact)])
        finally:
            await storage.close()

    asyncio.run(save())


def audit(stack: Stack, activity: str) -> list[dict[str, Any]]:
    response = api(stack, "GET", "manage/audit", READER, params={"activity": activity})
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


@pytest.fixture(scope="module")
def stack(azurite: Azurite) -> Iterator[Stack]:
    with emulator_running(users=0) as emulator, \
            private_stack(PREFIX, azurite=azurite, emulator=emulator, **HOST) as started:
        changed(started, CASEY, NOW - timedelta(days=83))  # 7 days left: the 7-day stage
        changed(started, SVEN, NOW - timedelta(days=90) + timedelta(hours=10))  # within a day: the 1-day stage
        changed(started, FRANK, NOW - timedelta(days=70))  # 20 days left: within 30, no stage due
        changed(started, FIONA, NOW - timedelta(days=60))  # 30 days left
        register(started, CASEY, Method.EMAIL, "casey.alt@example.com")
        register(started, SVEN, Method.MOBILE_PHONE, "+46701112233")
        yield started


# ---- the run, the admin view and the reminders -------------------------------------------------------------------


def test_a_run_shows_who_expires_when_and_reminds_nobody_until_the_policy_says_so(stack: Stack) -> None:
    assert api(stack, "GET", "manage/password-expiry/runs/latest", READER).status_code == 404
    first = run(stack)
    assert first["sendReminders"] is False and first["remindersSent"] == 0
    assert first["users"] == 18 and first["usersTotal"] == 18
    assert first["byState"] == {"expiring": 4, "expired": 9, "never": 1, "disabled": 1, "notManaged": 1,
                                "unknown": 2}  # unknown: the two synced users (AD decides, the agent is not read)
    assert (first["within7"], first["within14"], first["within30"]) == (2, 2, 4)
    assert first["rules"]["domains"]["contoso.example"]["validityDays"] == 90
    assert first["rules"]["domains"]["contosodemo.onmicrosoft.com"]["validityDays"] is None
    assert outbox(stack) == []


def test_each_due_user_gets_one_reminder_in_their_language_with_no_link_that_signs_in(stack: Stack) -> None:
    set_reminders(stack, enabled=True, sms=True)
    done = run(stack)
    assert done["sendReminders"] is True
    assert done["remindersByStage"] == {"14": 0, "7": 1, "3": 0, "1": 1} and done["remindersSent"] == 2
    sent = outbox(stack)
    [casey] = mails_to(sent, CASEY_UPN)
    assert sorted(casey["to"]) == sorted([CASEY_UPN, "casey.jensen@home.example", "casey.alt@example.com"])
    assert casey["subject"] == "Your password expires in 7 days"
    assert "Casey Jensen" in casey["body"] and "casey@contoso.example" in casey["body"]
    expires = (NOW - timedelta(days=83) + timedelta(days=90)).strftime("%Y-%m-%d %H:%M UTC")
    assert f"expires on {expires} (in 7 days)" in casey["body"]
    links = re.findall(r'href="([^"]*)"', casey["body"])
    assert links == [CLOUD_CHANGE, "http://localhost:7071/api/pages/reset"]  # no token, no code, no sign-in
    [sven] = mails_to(sent, "sven@contoso.example")
    assert sven["subject"] == "Ditt lösenord går ut inom ett dygn" and "Hej Sven Svensson!" in sven["body"]
    texts = [e for e in sent if e["channel"] == "sms"]
    assert sorted(t["to"][0] for t in texts) == ["+14255550103", "+46701112233"]  # registered mobile first
    assert next(t for t in texts if t["to"] == ["+46701112233"])["body"].startswith("Lösenordet för ditt jobbkonto")
    assert all("http" not in t["body"] for t in texts)
    assert len(sent) == 4

    again = run(stack)  # the next day's run: the same stages, the same passwords
    assert again["remindersSent"] == 0 and outbox(stack) == sent


def test_the_admin_view_lists_who_expires_within_7_14_and_30_days_and_exports_csv(stack: Stack) -> None:
    week = api(stack, "GET", "manage/password-expiry/runs/latest/users", READER, params={"within": "7"}).json()
    assert sorted(u["userPrincipalName"] for u in week["value"]) == [CASEY_UPN, "sven@contoso.example"]
    casey = next(u for u in week["value"] if u["userId"] == CASEY)
    assert (casey["state"], casey["daysLeft"], casey["source"], casey["synced"]) == ("expiring", 7, "cloud", False)
    export = api(stack, "GET", "manage/password-expiry/runs/latest/users", READER,
                 params={"within": "30", "format": "csv"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["userPrincipalName"] for r in rows) == sorted(
        [CASEY_UPN, "sven@contoso.example", "frank@contoso.example", "fiona@contoso.example"])
    assert {r["userPrincipalName"]: r["daysLeft"] for r in rows}["frank@contoso.example"] == "20"
    never = api(stack, "GET", "manage/password-expiry/runs/latest/users", READER, params={"state": "never"}).json()
    assert [u["userPrincipalName"] for u in never["value"]] == ["neverexpires@contoso.example"]
    bad = api(stack, "GET", "manage/password-expiry/runs/latest/users", READER, params={"within": "8"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "within"
    history = api(stack, "GET", "manage/password-expiry/runs", READER, params={"format": "csv"})
    assert history.text.splitlines()[0] == "id,state,trigger,createdAt,completedAt,users,expiring,expired," \
                                           "within7,within14,within30,remindersSent"


def test_only_admins_start_runs_and_every_run_is_audited_by_name(stack: Stack) -> None:
    assert api(stack, "POST", "manage/password-expiry/runs", READER).status_code == 403
    assert httpx.post(f"{stack.host.base_url}/api/manage/password-expiry/runs", timeout=10).status_code == 401
    started = audit(stack, "Start password expiry run")
    completed = audit(stack, "Complete password expiry run")
    reminded = audit(stack, "Send password expiry reminder")
    assert len(started) == len(completed) >= 3
    assert completed[0]["details"]["users"] == 18 and completed[0]["service"] == "SSPR Administration"
    assert any(e["details"]["count"] == 2 and e["details"]["byStage"] == {"7": 1, "1": 1} for e in reminded)


def test_a_new_password_stops_the_reminders_and_a_later_one_starts_them_over(stack: Stack) -> None:
    before = outbox(stack)
    changed(stack, CASEY, NOW)  # Casey changed the password: 90 days from now
    assert run(stack)["remindersSent"] == 0
    changed(stack, CASEY, NOW - timedelta(days=83, hours=1))  # another password, again a week from expiry
    renewed = run(stack)
    assert renewed["remindersByStage"]["7"] == 1 and renewed["remindersSent"] == 1
    new = [e for e in outbox(stack) if e not in before]
    assert [m["subject"] for m in mails_to(new, CASEY_UPN)] == ["Your password expires in 7 days"]


def test_synced_users_are_reminded_through_the_change_page_when_the_cloud_policy_covers_them(stack: Stack) -> None:
    before = outbox(stack)
    set_user(stack, SYNCED_P1, passwordPolicies="None")
    changed(stack, SYNCED_P1, NOW - timedelta(days=87))
    set_reminders(stack, cloudPolicyForSyncedUsers=True, sms=False)
    done = run(stack)
    assert done["remindersByStage"]["3"] == 1
    [mail] = mails_to([e for e in outbox(stack) if e not in before], "synced.p1@contoso.example")
    assert mail["subject"] == "Ditt lösenord går ut om 3 dagar"
    assert re.findall(r'href="([^"]*)"', mail["body"])[0] == "http://localhost:7071/api/pages/change"
    assert "nuvarande lösenord" in mail["body"]


def test_a_reminder_about_a_password_changed_since_it_was_queued_is_not_sent(stack: Stack) -> None:
    before = outbox(stack)
    stale, current = NOW - timedelta(days=200), NOW - timedelta(days=88)
    changed(stack, FRANK, current)
    expires = version_of(current + timedelta(days=90))
    with notifications_queue(stack) as queue:
        for version in (version_of(stale), version_of(current)):
            body = {"kind": "password-expiry-reminder", "id": reminder_id(FRANK, version, 3), "userId": FRANK,
                    "stage": 3, "expiresAt": expires, "passwordVersion": version, "synced": False, "sms": False}
            queue.send_message(base64.b64encode(json.dumps(body).encode()).decode())
    new = [e for e in outbox(stack) if e not in before]
    assert [m["subject"] for m in mails_to(new, "frank@contoso.example")] == ["Your password expires in 2 days"]


def test_the_daily_timer_starts_a_run_as_the_service(stack: Stack) -> None:
    before = {r["id"] for r in api(stack, "GET", "manage/password-expiry/runs", READER).json()["value"]}
    fired = httpx.post(f"{stack.host.base_url}/admin/functions/expiry_timer", json={"input": ""},
                       headers={"x-functions-key": MASTER_KEY}, timeout=30)
    assert fired.status_code == 202, fired.text
    deadline = time.monotonic() + 30
    while not (new := [r for r in api(stack, "GET", "manage/password-expiry/runs", READER).json()["value"]
                       if r["id"] not in before and r["state"] == "completed"]):
        assert time.monotonic() < deadline, "the timer started no run"
        time.sleep(0.3)
    assert new[0]["trigger"] == "timer" and new[0]["requestedBy"] == "system"
