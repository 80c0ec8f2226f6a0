"""Health endpoint: first-request latency after a cold host start, then warm p50/p99, through the local host.

Workload: start Azurite, the Graph emulator and the local host with the product's function_app; time the first
GET /api/health after the host says ready, then N sequential requests. Ratio: warm p50 / one raw Azurite point
read (the health check does one storage list call and one Graph call, so a ratio of a few is expected).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from benchmarks.baseline import percentile, point_read_latency, report
from benchmarks.kit import bench_stack


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    with bench_stack() as stack:
        baseline = asyncio.run(point_read_latency(stack.azurite.connection_string))
        started = time.perf_counter()
        host = stack.start_host()
        start_seconds = time.perf_counter() - started
        with httpx.Client(base_url=host.base_url, timeout=10) as http:
            t0 = time.perf_counter()
            first = http.get("/api/health")
            first_ms = (time.perf_counter() - t0) * 1000
            assert first.status_code == 200, first.text
            samples = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                http.get("/api/health").raise_for_status()
                samples.append((time.perf_counter() - t0) * 1000)
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    return report(
        workload=f"GET /api/health: 1 cold + {args.requests} warm sequential requests",
        figure=f"host start {start_seconds:.2f} s; first request {first_ms:.0f} ms; warm p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        baseline=f"Azurite point read p50 {baseline.p50_ms:.2f} ms",
        ratio=f"p50 / point read = {p50 / baseline.p50_ms:.1f}x",
        target="first request < 1000 ms",
    )


if __name__ == "__main__":
    main()
