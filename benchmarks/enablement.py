"""Enablement "All" through the real worker: users/s against raw Azurite batch writes, and memory flat in N.

Workload, per tenant size N (default 10,000 and 100,000): start Azurite, the Graph emulator with N generated
users and the local host with the product's function_app; measure raw Azurite throughput of 100-entity upsert
transactions (same SDK, same entity shape, 16 partitions, N entities into a fresh table); then POST /api/manage/enablement {"scope":"all"} as
the demo admin and poll the run until it completes. Printed: users/s (users examined, from the request's
acceptance to the run's completion), Graph requests (emulator /_emulator/stats), table transactions (the run's
own count of user-row writes and deletes), peak RSS of the host process (VmHWM), and users/s / raw entities/s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from benchmarks.baseline import batch_write_throughput, report
from benchmarks.kit import bench_stack, measured_on_host, per_tenant_size, run_seconds, tenant_sizes
from devtools.stack import GraphEmulator
from devtools.tokens import bearer, user_token

ADMIN = "admin@contoso.example"


def enable_all(base_url: str, emulator: GraphEmulator, timeout: float) -> dict[str, Any]:
    headers = bearer(user_token(emulator, ADMIN))
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        accepted = http.post("/api/manage/enablement", json={"scope": "all"})
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = http.get(f"/api/manage/enablement/{run_id}").json()
            if run["state"] in ("completed", "failed"):
                assert run["state"] == "completed", run
                return dict(run)
            time.sleep(0.5)
    raise TimeoutError(f"enablement run {run_id} did not complete within {timeout:.0f} s")


def measure(users: int) -> dict[str, Any]:
    with bench_stack(users, FUNCHOST_DISABLE_TIMERS="1") as stack:
        # As many entities as the run examines: Azurite slows down as a table grows, so a smaller raw
        # sample would flatter the denominator at 10,000 and be unfair at 100,000.
        raw = asyncio.run(batch_write_throughput(stack.azurite.connection_string, entities=users))
        run, requests, rss = measured_on_host(
            stack, lambda host: enable_all(host.base_url, stack.emulator, timeout=max(120.0, users / 200)))
    seconds = run_seconds(run)
    rate = run["usersProcessed"] / seconds
    return {
        "users": run["usersProcessed"], "in_scope": run["inScope"], "seconds": seconds, "rate": rate,
        "graph_requests": requests, "transactions": run["tableTransactions"], "rss_mb": rss,
        "raw_rate": raw.entities_per_second, "ratio": rate / raw.entities_per_second,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    results = per_tenant_size(argv, __doc__, measure, lambda r: (
        f"{r['users']:,} users examined ({r['in_scope']:,} in scope) in {r['seconds']:.1f} s = "
        f"{r['rate']:.0f} users/s; Graph requests {r['graph_requests']}; table transactions "
        f"{r['transactions']:,}; host peak RSS {r['rss_mb']:.0f} MB; raw Azurite {r['raw_rate']:.0f} "
        f"entities/s; ratio {r['ratio']:.0%}"))
    largest = max(results, key=lambda r: r["users"])
    result: dict[str, object] = {
        "workload": "enable All through the queue worker: " + tenant_sizes(results),
        "figure": "; ".join(f"{r['users']:,}: {r['rate']:.0f} users/s, {r['graph_requests']} Graph requests, "
                            f"{r['transactions']:,} transactions, peak RSS {r['rss_mb']:.0f} MB" for r in results),
        "baseline": f"raw Azurite 100-entity upserts {largest['raw_rate']:.0f} entities/s",
        "ratio": f"users/s / raw = {largest['ratio']:.0%}",
        "target": ">= 50% of raw; peak RSS flat in N",
    }
    return report(result)


if __name__ == "__main__":
    main()
