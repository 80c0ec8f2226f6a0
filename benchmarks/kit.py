"""What every benchmark does around its workload: a stack of its own, the host's peak memory, the emulator's Graph
request count, and one run per tenant size."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from devtools.stack import FunctionHost, Stack, private_stack

T = TypeVar("T")


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
