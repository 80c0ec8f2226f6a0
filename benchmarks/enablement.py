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
from typing import Any

from benchmarks.baseline import batch_write_throughput
from benchmarks.kit import bench_stack, measured_run, per_tenant_size, sized_report


def measure(users: int) -> dict[str, Any]:
    with bench_stack(users, FUNCHOST_DISABLE_TIMERS="1") as stack:
        # As many entities as the run examines: Azurite slows down as a table grows, so a smaller raw
        # sample would flatter the denominator at 10,000 and be unfair at 100,000.
        raw = asyncio.run(batch_write_throughput(stack.azurite.connection_string, entities=users))
        run, seconds, requests, rss = measured_run(stack, ("/api/manage/enablement", {"scope": "all"}),
                                                   "/api/manage/enablement", max(120.0, users / 200), 0.5)
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
    return sized_report(
        results, "enable All through the queue worker",
        lambda r: (f"{r['users']:,}: {r['rate']:.0f} users/s, {r['graph_requests']} Graph requests, "
                   f"{r['transactions']:,} transactions, peak RSS {r['rss_mb']:.0f} MB"),
        lambda r: f"raw Azurite 100-entity upserts {r['raw_rate']:.0f} entities/s",
        lambda r: f"users/s / raw = {r['ratio']:.0%}", ">= 50% of raw; peak RSS flat in N")


if __name__ == "__main__":
    main()
