"""What every benchmark does around its workload: a stack of its own, the host's peak memory, the emulator's Graph
request count, one run per tenant size and its report, a run started and polled to its end, timed raw upserts."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from benchmarks.baseline import report
from devtools.stack import FunctionHost, GraphEmulator, Stack, private_stack
from devtools.tokens import bearer, user_token

T = TypeVar("T")
ADMIN = "admin@contoso.example"  # the demo tenant's admin, who starts the runs


@contextmanager
def bench_stack(users: int | None = None, **overrides: str) -> Iterator[Stack]:
    """Azurite, an emulator (with `users` generated users) and their settings, all the benchmark's own. The host is
    not started: the benchmark starts it (`Stack.start_host`) after its seeding and raw baseline, so neither runs
    beside the host nor is timed with it; it is stopped on exit."""
    with private_stack(users=users, start_host=False) as stack:
        stack.settings.update(overrides)
        yield stack


def peak_rss_mb(host: FunctionHost) -> float:
    """The host process's peak resident memory so far (VmHWM), in MB."""
    if host.process.proc is None:
        raise RuntimeError("the host was never started")
    for line in Path(f"/proc/{host.process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(host: FunctionHost) -> float:
    """The host process's CPU time so far (user + system, /proc/<pid>/stat), in seconds."""
    if host.process.proc is None:
        raise RuntimeError("the host was never started")
    stat = Path(f"/proc/{host.process.proc.pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_on_host(stack: Stack, work: Callable[[FunctionHost], T]) -> tuple[T, int, float]:
    """Start the stack's host and do `work` on it: what it returned, the Graph requests the emulator served
    meanwhile and the host's peak RSS in MB."""
    host = stack.start_host()
    httpx.delete(f"{stack.emulator.base_url}/_emulator/stats", timeout=10).raise_for_status()
    done = work(host)
    stats = httpx.get(f"{stack.emulator.base_url}/_emulator/stats", timeout=10).json()
    return done, int(stats["graph"]["total"]), peak_rss_mb(host)


def run_seconds(run: dict[str, Any]) -> float:
    """A finished run's seconds from its acceptance to its completion, as the run itself records them."""
    return (datetime.fromisoformat(run["completedAt"]) - datetime.fromisoformat(run["createdAt"])).total_seconds()


def per_tenant_size(argv: list[str] | None, description: str | None, measure: Callable[[int], dict[str, Any]],
                    line: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """`measure(N)` for each `--users N` (default 10,000 and 100,000), each result printed as `line` says."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000],
                        help="generated users per run (the 18 named demo users come on top)")
    args = parser.parse_args(argv)
    results = []
    for n in args.users:
        print(f"-- {n:,} generated users", flush=True)
        result = measure(n)
        results.append(result)
        print(f"   {line(result)}", flush=True)
    return results


def tenant_sizes(results: list[dict[str, Any]]) -> str:
    """The sizes the runs had, for the workload line: "10,018 and 100,018 users"."""
    return " and ".join(f"{r['users']:,}" for r in results) + " users"


def poll_run(base_url: str, emulator: GraphEmulator, start: tuple[str, dict[str, Any]], runs: str, timeout: float,
             interval: float, watch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """POST `start` (path, body) as the demo admin, then GET `runs`/<id> every `interval` s until the run ends
    (`watch` sees each poll); the completed run's document."""
    path, body = start
    with httpx.Client(base_url=base_url, headers=bearer(user_token(emulator, ADMIN)), timeout=30) as http:
        accepted = http.post(path, json=body)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = http.get(f"{runs}/{run_id}").json()
            if watch is not None:
                watch(run)
            if run["state"] in ("completed", "failed"):
                assert run["state"] == "completed", run
                return dict(run)
            time.sleep(interval)
    raise TimeoutError(f"run {run_id} did not complete within {timeout:.0f} s")


def measured_run(stack: Stack, start: tuple[str, dict[str, Any]], runs: str, timeout: float, interval: float,
                 watch: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, Any], float, int, float]:
    """A run started and polled to its end on the stack's host (`poll_run`): the run, its seconds as the run records
    them, the Graph requests the emulator served meanwhile and the host's peak RSS in MB."""
    run, requests, rss = measured_on_host(
        stack, lambda host: poll_run(host.base_url, stack.emulator, start, runs, timeout, interval, watch))
    return run, run_seconds(run), requests, rss


async def timed_upserts(table: TableClient, rows: list[dict[str, Any]], parallelism: int) -> float:
    """Seconds to upsert `rows` in 100-entity single-partition transactions, `parallelism` in flight."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_partition.setdefault(row["PartitionKey"], []).append(row)
    slots = asyncio.Semaphore(parallelism)

    async def batch(chunk: list[dict[str, Any]]) -> None:
        async with slots:
            await table.submit_transaction([("upsert", r, {"mode": UpdateMode.REPLACE}) for r in chunk])

    started = time.perf_counter()
    await asyncio.gather(*(batch(part[i:i + 100]) for part in by_partition.values()
                           for i in range(0, len(part), 100)))
    return time.perf_counter() - started


def sized_report(results: list[dict[str, Any]], workload: str, figure: Callable[[dict[str, Any]], str],
                 baseline: Callable[[dict[str, Any]], str], ratio: Callable[[dict[str, Any]], str],
                 target: str) -> dict[str, object]:
    """The report of a benchmark run per tenant size: the workload names the sizes, the figure has one part per
    size, the baseline and ratio are the largest size's."""
    largest = max(results, key=lambda r: r["users"])
    return report(workload=f"{workload}: {tenant_sizes(results)}", figure="; ".join(map(figure, results)),
                  baseline=baseline(largest), ratio=ratio(largest), target=target)
