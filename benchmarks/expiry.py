"""A password expiry run with reminders through the real worker: users/s against the raw scan + write of the same
rows, and memory flat in N.

Workload, per tenant size N (default 10,000 and 100,000): start Azurite, the Graph emulator with N generated users
(passwords changed over the last 120 days, the synced ones (22%) never expiring in Entra, as the emulator's README
says) and the local host with the product's function_app, its notifications worker off (the reminders the run queues
stay queued: the run is measured, not the mail). Seed (not timed): the policy, reminders on at 14, 7, 3 and 1 days,
and the on-premises agents' report of every synced user's AD expiry (a row per SID, as onprem_agent/expiry.py writes
it: passwords set over the last 42 days, the domain's maximum age 42 days), so the run judges synced users by AD.
Measure, before the host starts, the raw floor of what a run must do: (a) the raw scan, every `/users` page of the
same `$select` at 999 a page, following nextLinks one after the other as the run must; (b) the raw write of one
per-user row of the run's shape per user into a scratch table (100-entity transactions, 8 in flight, the run's
partitions); (b') the raw point reads of the synced users' AD reports, 16 in flight; (c) the raw send of as many
queue messages of a reminder's size as the run will queue (the users whose stage is due, by the same rule), 16 in
flight, into a scratch queue: on Azurite a queue send costs ~10x a row written in a batch, so (c) is printed beside
(a + b + b'). Then POST /api/manage/password-expiry/runs as the demo admin and poll until it completes. Printed:
wall time (accepted -> completed), users/s, reminders queued (of them to synced users by AD's expiry), Graph requests
(emulator /_emulator/stats), per-user row transactions, the host's peak RSS (VmHWM), and the ratio of the run's
users/s to the raw scan + write + report reads' (the target), and to the raw figure with the sends.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.data.tables import TableServiceClient

from benchmarks.kit import bench_stack, measured_run, per_tenant_size, sized_report, timed_upserts
from devtools.stack import GraphEmulator
from devtools.tokens import bearer, graph_token
from onprem_agent.expiry import ExpiryReports, report_of
from shared.adapters.expiry_reminder_store import user_entity
from shared.adapters.graph.expiry import GraphExpiry, password_facts
from shared.adapters.onprem_store import OnPremStore
from shared.adapters.policy_store import PolicyStore
from shared.adapters.run_reports import WRITE_PARALLELISM
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain import onprem
from shared.domain.onprem_jobs import EXPIRY_TABLE, AccountState, ExpiryReport
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.domain.password_expiry import ExpiryRules, due_stage, password_expiry
from shared.domain.policy import DEFAULT_DOCUMENT, Policy
from shared.services.expiry_reminder_queueing import REMINDER_CONCURRENCY

STAGES = [14, 7, 3, 1]
AD_MAX_AGE = timedelta(days=42)  # Samba's and Windows' default maximum password age


def ad_reports(users: list[dict[str, Any]]) -> list[ExpiryReport]:
    """What the agents would report of the synced users: passwords set over the last 42 days, each expiring 42 days
    after it was set (a deterministic spread, so every run of the benchmark judges the same)."""
    now = datetime.now(UTC)
    reports = []
    for i, u in enumerate(users):
        sid = u.get("onPremisesSecurityIdentifier")
        if u.get("onPremisesSyncEnabled") and sid:
            set_at = now - timedelta(minutes=(i * 7919) % int(AD_MAX_AGE.total_seconds() // 60))
            state = AccountState(locked=False, disabled=False, expired=False, password_expires_at=set_at + AD_MAX_AGE)
            reports.append(report_of(sid, state, set_at, "bench-agent", now))
    return reports


def seed_reports(settings: dict[str, str], reports: list[ExpiryReport]) -> None:
    """The agents' report table, written as the agent writes it (100 rows a transaction)."""
    tables = TableServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
    table = tables.create_table_if_not_exists(EXPIRY_TABLE.format(prefix=settings["SSPR_QUEUE_PREFIX"]))
    for written in ExpiryReports(table, "bench-agent").write(reports):
        written.result()


async def raw_report_read_seconds(settings: dict[str, str], reports: list[ExpiryReport]) -> float:
    """Seconds to read every synced user's report by point reads, READ_CONCURRENCY in flight (the run's reads)."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        store = OnPremStore(storage, settings["SSPR_QUEUE_PREFIX"])
        started = time.perf_counter()
        found = await store.expiry_reports(r.object_sid for r in reports)
        elapsed = time.perf_counter() - started
        assert len(found) == len(reports), (len(found), len(reports))
        return elapsed
    finally:
        await storage.close()


async def seed(settings: dict[str, str]) -> None:
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        policies = PolicyStore(storage)
        _, etag = await policies.get()
        document = {**DEFAULT_DOCUMENT, "expiryReminders": {"enabled": True, "stages": STAGES, "sms": False,
                                                            "cloudPolicyForSyncedUsers": False}}
        await policies.replace(Policy.model_validate(document), etag, "benchmark")
    finally:
        await storage.close()


def raw_scan(emulator: GraphEmulator) -> tuple[float, list[dict[str, Any]]]:
    """Seconds to read every user with the run's $select, 999 a page, one page after the other; the users."""
    users: list[dict[str, Any]] = []
    url: str | None = f"{emulator.graph_url}/users?$select={','.join(GraphExpiry.SELECT)}&$top=999"
    with httpx.Client(headers=bearer(graph_token(emulator)), timeout=60) as http:
        started = time.perf_counter()
        while url:
            page = http.get(url).json()
            users.extend(page["value"])
            url = page.get("@odata.nextLink")
        return time.perf_counter() - started, users


async def raw_write_seconds(settings: dict[str, str], users: list[dict[str, Any]]) -> float:
    """Seconds to upsert one row of the run's shape per user, in the run's partitions, 100 to a transaction,
    WRITE_PARALLELISM in flight."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        table = await storage.table_ready("BenchRawExpiry")
        now = datetime.now(UTC)
        rules = ExpiryRules.of([VerifiedDomain("contoso.example", True, "Managed",
                                               DomainExpiration("contoso.example", 90, 14))], False)
        rows = []
        for u in users:
            facts = password_facts(u)
            rows.append(user_entity("raw", facts, password_expiry(facts, rules, now), now, None))
        return await timed_upserts(table, rows, WRITE_PARALLELISM)
    finally:
        await storage.close()


def due_users(users: list[dict[str, Any]], reports: list[ExpiryReport]) -> tuple[int, int]:
    """How many of `users` have a reminder stage due now, by the run's rule (a fresh tenant: none sent before), and
    how many of those are synced users due by AD's expiry."""
    now = datetime.now(UTC)
    rules = ExpiryRules.of([VerifiedDomain("contoso.example", True, "Managed",
                                           DomainExpiration("contoso.example", 90, 14))], False)
    by_sid = {r.object_sid: onprem.expiry_of(r, now) for r in reports}
    due = synced = 0
    for u in users:
        facts = password_facts(u)
        ad = by_sid.get(facts.on_premises_sid or "")
        if due_stage(password_expiry(facts, rules, now, ad), STAGES, now) is not None:
            due += 1
            synced += ad is not None
    return due, synced


async def raw_send_seconds(settings: dict[str, str], count: int) -> float:
    """Seconds to send `count` messages the size of a reminder to a scratch queue, REMINDER_CONCURRENCY in flight."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        queue = await storage.queue_ready("bench-raw-reminders")
        body = json.dumps({"kind": "password-expiry-reminder", "id": str(uuid.uuid4()), "userId": str(uuid.uuid4()),
                           "stage": 7, "expiresAt": "2026-12-14T08:00:00Z", "passwordVersion": "2026-09-15T08:00:00Z",
                           "synced": False, "sms": False})
        gate = asyncio.Semaphore(REMINDER_CONCURRENCY)

        async def send() -> None:
            async with gate:
                await queue.send_message(body)

        started = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(count)))
        return time.perf_counter() - started
    finally:
        await storage.close()


def measure(users: int) -> dict[str, Any]:
    with bench_stack(users, FUNCHOST_DISABLE_TIMERS="1", **{"AzureWebJobs.send_notification.Disabled": "true"}) \
            as stack:
        asyncio.run(seed(stack.settings))
        scan_seconds, rows = raw_scan(stack.emulator)
        reports = ad_reports(rows)
        seed_reports(stack.settings, reports)
        write_seconds = asyncio.run(raw_write_seconds(stack.settings, rows))
        read_seconds = asyncio.run(raw_report_read_seconds(stack.settings, reports))
        due, due_synced = due_users(rows, reports)
        send_seconds = asyncio.run(raw_send_seconds(stack.settings, due))
        run, seconds, requests, rss = measured_run(
            stack, ("/api/manage/password-expiry/runs", {"sendReminders": True}), "/api/manage/password-expiry/runs",
            max(300.0, users / 50), 0.25)
    rate = run["users"] / seconds
    raw_rate = len(rows) / (scan_seconds + write_seconds + read_seconds)
    with_sends = len(rows) / (scan_seconds + write_seconds + read_seconds + send_seconds)
    assert run["users"] == len(rows), (run["users"], len(rows))
    return {"users": run["users"], "seconds": seconds, "rate": rate, "reminders": run["remindersSent"], "due": due,
            "synced": len(reports), "due_synced": due_synced, "read_rate": len(reports) / read_seconds,
            "graph_requests": requests, "transactions": run["tableTransactions"], "rss_mb": rss,
            "scan_rate": len(rows) / scan_seconds, "raw_rate": raw_rate, "ratio": rate / raw_rate,
            "sends_rate": due / send_seconds if send_seconds else 0.0, "with_sends": with_sends,
            "ratio_with_sends": rate / with_sends}


def main(argv: list[str] | None = None) -> dict[str, object]:
    results = per_tenant_size(argv, __doc__, measure, lambda r: (
        f"{r['users']:,} users ({r['synced']:,} synced, judged by AD's reported expiry) in {r['seconds']:.1f} s = "
        f"{r['rate']:.0f} users/s, {r['reminders']:,} reminders queued ({r['due_synced']:,} to synced users by AD); "
        f"raw AD report reads {r['read_rate']:.0f}/s; Graph requests {r['graph_requests']}; row transactions "
        f"{r['transactions']:,}; host peak RSS "
        f"{r['rss_mb']:.0f} MB; raw scan {r['scan_rate']:.0f} users/s; raw scan + raw write + report reads "
        f"{r['raw_rate']:.0f} users/s (ratio {r['ratio']:.0%}); raw queue sends {r['sends_rate']:.0f}/s, so raw "
        f"scan + write + report reads + {r['due']:,} sends {r['with_sends']:.0f} users/s (ratio "
        f"{r['ratio_with_sends']:.0%})"))
    return sized_report(
        results, "password expiry run, reminders at 14/7/3/1 days queued (not mailed), synced users (22%) judged by "
                 "the agents' report of AD's expiry",
        lambda r: (f"{r['users']:,}: {r['seconds']:.0f} s, {r['rate']:.0f} users/s, {r['reminders']:,} "
                   f"reminders, {r['graph_requests']} Graph requests, peak RSS {r['rss_mb']:.0f} MB"),
        lambda r: (f"raw /users scan (999 a page, nextLinks in turn) plus raw 100-entity upserts of the rows it "
                   f"writes plus raw point reads of the synced users' AD reports: {r['raw_rate']:.0f} users/s (scan "
                   f"alone {r['scan_rate']:.0f} users/s; with the raw queue sends of its reminders "
                   f"{r['with_sends']:.0f} users/s)"),
        lambda r: (f"run users/s / raw (scan + write + report reads) users/s = {r['ratio']:.0%}; with the sends "
                   f"{r['ratio_with_sends']:.0%}"),
        ">= 50% of raw; peak RSS flat in N")


if __name__ == "__main__":
    main()
