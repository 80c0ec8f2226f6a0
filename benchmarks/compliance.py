"""A compliance run through the real worker: users/s against raw Azurite point reads, and memory flat in N.

Workload, per tenant size N (default 10,000 and 100,000): start Azurite, the Graph emulator with N generated users
and the local host with the product's function_app. Seed directly (not timed): the policy (scope all), one
Enablement row per enabled member (100-entity transactions), and a security info summary with one or two methods
for 60 % of them. Measure the raw Azurite floor of what a sweep reads: the same rows by plain key-range queries
(16 Enablement partitions and 16 summary id ranges at once, 1,000 a page, only the columns the sweep selects), on
the seeded tables themselves; the raw write of as many per-user rows of the run's shape (100-entity transactions,
8 in flight, as the sweep writes them) into a scratch table; and, for reference, concurrent point reads (64 in
flight, 5,000 of them). Then POST /api/manage/compliance/runs {"sendReminders": false} as the demo
admin and poll until it completes. The demo tenant has P1/P2, so the run first pages Entra's userRegistrationDetails
(999 a page, at most 5 requests / 10 s: the quota, not our code, sets that phase's length), then sweeps the 16
partitions. Printed: wall time (accepted -> completed) and its two phases, users/s of the sweep phase and overall,
Graph requests (emulator /_emulator/stats), per-user row transactions, peak RSS of the host (VmHWM), and sweep
two ratios: sweep users/s against (a) the raw scan of the rows it reads alone, and (b) the raw scan plus the raw
write of the rows it writes (seconds added). The sweep scans (it reads no row by point read), so point reads are no
floor any more; and a sweep must write one row per user, which on Azurite costs ~20x a row read by scan, so (b) is
the floor of the work a sweep cannot avoid and the ratio the target is judged by; (a) is printed beside it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from azure.data.tables import UpdateMode

from benchmarks.baseline import point_read_throughput, report
from benchmarks.kit import bench_stack, measured_on_host, per_tenant_size, run_seconds, tenant_sizes
from devtools.stack import GraphEmulator
from devtools.tenant import enabled_member_ids
from devtools.tokens import bearer, user_token
from shared.adapters.compliance_store import WRITE_PARALLELISM, user_entity
from shared.adapters.policy_store import PolicyStore
from shared.adapters.security_info_store import SUMMARY_COLUMNS
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.compliance import SWEEP_SHARDS, assess_user, shard_range
from shared.domain.enablement import partition_for
from shared.domain.policy import DEFAULT_DOCUMENT, Policy
from shared.domain.security_info import SecurityInfoSummary

ADMIN = "admin@contoso.example"
REGISTERED_SHARE = 0.6
SEED_PARALLELISM = 32


def enabled_members(emulator: GraphEmulator) -> list[str]:
    return [uid.lower() for uid in enabled_member_ids(emulator)]


async def seed(settings: dict[str, str], users: list[str]) -> int:
    """Policy scope all, Enablement rows, and summaries for 60 % of the users; returns how many are registered."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        policies = PolicyStore(storage)
        _, etag = await policies.get()
        await policies.replace(Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"}), etag, "benchmark")
        enablement = await storage.table_ready("Enablement")
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for uid in users:
            by_partition.setdefault(partition_for(uid), []).append(
                {"PartitionKey": partition_for(uid), "RowKey": uid, "scope": "all", "userType": "Member",
                 "groupId": None, "generation": 1})
        slots = asyncio.Semaphore(SEED_PARALLELISM)

        async def batch(rows: list[dict[str, Any]]) -> None:
            async with slots:
                await enablement.submit_transaction([("upsert", r, {"mode": UpdateMode.REPLACE}) for r in rows])

        await asyncio.gather(*(batch(rows[i:i + 100]) for rows in by_partition.values()
                               for i in range(0, len(rows), 100)))
        summaries = await storage.table_ready("SecurityInfo")
        now = datetime.now(UTC)
        registered = users[: int(len(users) * REGISTERED_SHARE)]

        async def summary(index: int, uid: str) -> None:
            methods = "email" if index % 3 else "email,mobilePhone"
            async with slots:
                await summaries.upsert_entity({"PartitionKey": uid, "RowKey": "summary", "methods": methods,
                                               "methodCount": methods.count(",") + 1, "lastConfirmedAt": now,
                                               "firstPromptedAt": None, "isAdmin": False})

        await asyncio.gather(*(summary(i, uid) for i, uid in enumerate(registered)))
        return len(registered)
    finally:
        await storage.close()


async def raw_scan_seconds(settings: dict[str, str]) -> float:
    """Seconds to read every Enablement row and every summary row with plain key-range queries, 16 + 16 at once
    (the sweep's reads without its merging, judging, writing or checkpointing)."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        enablement = await storage.table_ready("Enablement")
        summaries = await storage.table_ready("SecurityInfo")

        async def scan(table: Any, query: str, parameters: dict[str, str], select: list[str]) -> int:
            return len([e async for e in table.query_entities(query, parameters=parameters, select=select,
                                                              results_per_page=1000)])

        started = time.perf_counter()
        await asyncio.gather(
            *(scan(enablement, "PartitionKey eq @pk", {"pk": f"{b:02d}"}, ["RowKey", "scope"]) for b in range(16)),
            *(scan(summaries, " and ".join(["RowKey eq @row", *(["PartitionKey ge @lo"] if lo else []),
                                            *(["PartitionKey lt @hi"] if hi else [])]),
                   {"row": "summary", **({"lo": lo} if lo else {}), **({"hi": hi} if hi else {})}, SUMMARY_COLUMNS)
              for lo, hi in map(shard_range, range(SWEEP_SHARDS))),
        )
        return time.perf_counter() - started
    finally:
        await storage.close()


async def raw_write_seconds(settings: dict[str, str], users: list[str]) -> float:
    """Seconds to upsert one per-user row of the run's shape per user (a not-registered user's row, which carries
    the most columns but Entra's) in 100-entity single-partition transactions, WRITE_PARALLELISM in flight."""
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        table = await storage.table_ready("BenchRawUsers")
        policy = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"})
        now = datetime.now(UTC)
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for uid in users:
            row = user_entity("raw", assess_user(uid, {"scope": "all"}, SecurityInfoSummary(uid), policy, now))
            by_partition.setdefault(row["PartitionKey"], []).append(row)
        slots = asyncio.Semaphore(WRITE_PARALLELISM)

        async def batch(rows: list[dict[str, Any]]) -> None:
            async with slots:
                await table.submit_transaction([("upsert", r, {"mode": UpdateMode.REPLACE}) for r in rows])

        started = time.perf_counter()
        await asyncio.gather(*(batch(rows[i:i + 100]) for rows in by_partition.values()
                               for i in range(0, len(rows), 100)))
        return time.perf_counter() - started
    finally:
        await storage.close()


def sweep(base_url: str, emulator: GraphEmulator, timeout: float) -> dict[str, Any]:
    headers = bearer(user_token(emulator, ADMIN))
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        accepted = http.post("/api/manage/compliance/runs", json={"sendReminders": False})
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + timeout
        entra_done: float | None = None
        started = time.monotonic()
        while time.monotonic() < deadline:
            run = http.get(f"/api/manage/compliance/runs/{run_id}").json()
            if entra_done is None and run["entraComparison"] != "pending":
                entra_done = time.monotonic() - started
            if run["state"] in ("completed", "failed"):
                assert run["state"] == "completed", run
                return {**run, "entraSeconds": entra_done}
            time.sleep(0.25)
    raise TimeoutError(f"compliance run {run_id} did not complete within {timeout:.0f} s")


def measure(users: int) -> dict[str, Any]:
    with bench_stack(users, FUNCHOST_DISABLE_TIMERS="1") as stack:
        settings = stack.settings
        members = enabled_members(stack.emulator)
        registered = asyncio.run(seed(settings, members))
        raw_seconds = asyncio.run(raw_scan_seconds(settings))
        write_seconds = asyncio.run(raw_write_seconds(settings, members))
        points = asyncio.run(point_read_throughput(stack.azurite.connection_string, entities=5000))
        run, requests, rss = measured_on_host(
            stack, lambda host: sweep(host.base_url, stack.emulator, timeout=max(300.0, users / 100)))
    seconds = run_seconds(run)
    entra = float(run["entraSeconds"] or 0.0)
    sweep_seconds = max(seconds - entra, 1e-3)
    sweep_rate = run["users"] / sweep_seconds
    assert run["capable"] == registered, run
    return {
        "users": run["users"], "registered": registered, "seconds": seconds, "entra_seconds": entra,
        "sweep_seconds": sweep_seconds, "rate": run["users"] / seconds, "sweep_rate": sweep_rate,
        "graph_requests": requests, "transactions": run["tableTransactions"], "rss_mb": rss,
        "raw_rate": len(members) / raw_seconds, "read_ratio": sweep_rate / (len(members) / raw_seconds),
        "raw_rw_rate": len(members) / (raw_seconds + write_seconds),
        "ratio": sweep_rate / (len(members) / (raw_seconds + write_seconds)), "point_reads": points.reads_per_second,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    results = per_tenant_size(argv, __doc__, measure, lambda r: (
        f"{r['users']:,} users ({r['registered']:,} registered) in {r['seconds']:.1f} s "
        f"(Entra report {r['entra_seconds']:.1f} s, sweep {r['sweep_seconds']:.1f} s) = {r['rate']:.0f} users/s "
        f"overall, {r['sweep_rate']:.0f} users/s sweeping; Graph requests {r['graph_requests']}; row "
        f"transactions {r['transactions']:,}; host peak RSS {r['rss_mb']:.0f} MB; raw Azurite scan of the same "
        f"rows {r['raw_rate']:.0f} users/s (ratio {r['read_ratio']:.0%}); raw scan + raw write of the rows "
        f"{r['raw_rw_rate']:.0f} users/s (ratio {r['ratio']:.0%}); raw point reads {r['point_reads']:.0f}/s"))
    largest = max(results, key=lambda r: r["users"])
    result: dict[str, object] = {
        "workload": "compliance run, 60% registered, no reminders: " + tenant_sizes(results),
        "figure": "; ".join(f"{r['users']:,}: {r['seconds']:.0f} s ({r['entra_seconds']:.0f} s Entra report), "
                            f"{r['sweep_rate']:.0f} users/s sweeping, {r['graph_requests']} Graph requests, "
                            f"{r['transactions']:,} transactions, peak RSS {r['rss_mb']:.0f} MB" for r in results),
        "baseline": f"raw Azurite key-range scan of the rows a sweep reads plus raw 100-entity upserts of the rows "
                    f"it writes: {largest['raw_rw_rate']:.0f} users/s (scan alone {largest['raw_rate']:.0f} users/s; "
                    f"point reads {largest['point_reads']:.0f}/s)",
        "ratio": f"sweep users/s / raw (scan + write) users/s = {largest['ratio']:.0%}; against the scan alone "
                 f"{largest['read_ratio']:.0%}",
        "target": ">= 50% of raw; peak RSS flat in N",
    }
    return report(result)


if __name__ == "__main__":
    main()
