"""Sign-in hook: 10,000 users, 50 concurrent callers with a real authentication-events token, through the host.

Workload: Azurite with the policy (SSPR for all) and, per user, an Enablement row (batched single-partition
transactions) and a security info summary row (80 % registered, 20 % not registered and already prompted, so the
run measures reads only); the local host started cold; the first hook call after the host says ready (and after
the process was spawned); then `--requests` calls from `--concurrency` callers over one aiohttp session, each for
a random user (closed loop: it measures the most the host can serve, and by Little's law its latency is callers /
throughput); then an open loop at `--rate` calls/s, the way sign-ins arrive, with latency from each call's scheduled
start. Host CPU per call: the host process's user + system time over the closed loop, per call; the host's own
part is the CPU per call of as many calls without a token from as many callers (the app refuses them at its first
check, so they cost the host's whole path and almost nothing of the product), and the product's is the rest. Ratio: open-loop p50 / one raw Azurite point read, and saturated calls/s /
raw point reads/s at the same concurrency through the product's storage clients (same transport), both measured
in the same run (the hook does two point reads, concurrently, plus token validation and JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx

from benchmarks.baseline import percentile, point_read_latency, report
from benchmarks.kit import bench_stack, cpu_seconds
from devtools.tokens import events_token, token_issuance_start
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.policy_store import NEVER_SAVED, PolicyStore
from shared.adapters.security_info_store import SUMMARY_ROW
from shared.adapters.security_info_store import TABLE as SECURITY_INFO_TABLE
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.enablement import EnabledUser, Scope
from shared.domain.policy import DEFAULT_DOCUMENT, Policy

HOOK = "/api/hooks/token-issuance-start"


async def seed(settings: dict[str, str], users: list[str]) -> float:
    """Policy, Enablement rows and summary rows; returns the seconds it took."""
    started = time.perf_counter()
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        policy = Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"})
        await PolicyStore(storage).replace(policy, NEVER_SAVED, "benchmark")
        await EnablementStore(storage).write_users([EnabledUser(u, "Member", Scope.ALL, None, 1) for u in users])
        table = await storage.table_ready(SECURITY_INFO_TABLE)
        now = datetime.now(UTC)
        slots = asyncio.Semaphore(32)

        async def write(index: int, user: str) -> None:
            registered = index % 5 != 0
            entity = {"PartitionKey": user, "RowKey": SUMMARY_ROW, "isAdmin": False,
                      "methods": "email" if registered else "", "methodCount": 1 if registered else 0,
                      "lastConfirmedAt": now - timedelta(days=3) if registered else None,
                      "firstPromptedAt": now - timedelta(days=1)}
            async with slots:  # one partition per user: no batching possible, so writes go in parallel
                await table.upsert_entity(entity)

        await asyncio.gather(*(write(i, u) for i, u in enumerate(users)))
    finally:
        await storage.close()
    return time.perf_counter() - started


async def raw_point_reads(settings: dict[str, str], users: list[str], reads: int, concurrency: int) -> tuple[float, float]:
    """(reads/s, p99 ms) of `reads` point reads of random users' summary rows, `concurrency` in flight, through the
    product's own storage clients (its transport and options): what the storage gives at the hook's concurrency."""
    storage = StorageClients.from_settings(load_settings(settings))
    samples: list[float] = []
    remaining = iter(range(reads))
    try:
        table = await storage.table_ready(SECURITY_INFO_TABLE)
        for user in users[:concurrency]:  # warm the connection pool
            await table.get_entity(user, SUMMARY_ROW)

        async def reader() -> None:
            for _ in remaining:
                t0 = time.perf_counter()
                await table.get_entity(random.choice(users), SUMMARY_ROW)
                samples.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(reader() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    finally:
        await storage.close()
    return len(samples) / seconds, percentile(samples, 0.99)


async def without_token(base_url: str, users: list[str], requests: int, concurrency: int) -> None:
    """`requests` hook calls with the same bodies but no token, from `concurrency` callers: the app refuses them at
    its first check (401), so their CPU per call is the host's whole path (HTTP, routing, invocation, its log line)
    plus that check, an upper bound of the host's part of a hook call."""
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def caller() -> None:
            for _ in remaining:
                async with session.post(HOOK, json=token_issuance_start(random.choice(users))) as response:
                    await response.read()
                    assert response.status == 401, response.status

        await asyncio.gather(*(caller() for _ in range(concurrency)))


async def load(base_url: str, token: str, users: list[str], requests: int, concurrency: int) -> tuple[list[float], float, int]:
    """(latencies in ms, seconds, non-200 answers) of `requests` calls from `concurrency` callers."""
    headers = {"Authorization": f"Bearer {token}"}
    samples: list[float] = []
    failures = 0
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def caller() -> None:
            nonlocal failures
            for _ in remaining:
                body = token_issuance_start(random.choice(users))
                t0 = time.perf_counter()
                async with session.post(HOOK, json=body) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                samples.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return samples, seconds, failures


async def load_open(base_url: str, token: str, users: list[str], rate: float, seconds: float,
                    callers: int) -> tuple[list[float], int]:
    """Open loop, as sign-ins really arrive: one call every 1/rate s for `seconds`, at most `callers` in flight.
    Latency runs from each call's scheduled start, so a stalled host cannot hide its queue (no coordinated
    omission). Returns (latencies in ms, non-200 answers)."""
    headers = {"Authorization": f"Bearer {token}"}
    samples: list[float] = []
    failures = 0
    slots = asyncio.Semaphore(callers)
    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def call(scheduled: float) -> None:
            nonlocal failures
            async with slots:
                async with session.post(HOOK, json=token_issuance_start(random.choice(users))) as response:
                    await response.read()
                    failures += response.status != 200
            samples.append((time.perf_counter() - scheduled) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(call(scheduled)))
        await asyncio.gather(*tasks)
    return samples, failures


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=450.0, help="open-loop calls per second (sign-ins arriving)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the open-loop phase")
    args = parser.parse_args(argv)
    users = [str(uuid.uuid4()) for _ in range(args.users)]
    with bench_stack() as stack:
        seed_seconds = asyncio.run(seed(stack.settings, users))
        baseline = asyncio.run(point_read_latency(stack.azurite.connection_string))
        raw_reads, raw_p99 = asyncio.run(raw_point_reads(stack.settings, users, args.requests, args.concurrency))
        token = events_token(stack.emulator)
        spawned = time.perf_counter()
        host = stack.start_host()
        ready_seconds = time.perf_counter() - spawned
        with httpx.Client(base_url=host.base_url, timeout=10) as http:
            t0 = time.perf_counter()
            first = http.post(HOOK, json=token_issuance_start(users[1]), headers={"Authorization": f"Bearer {token}"})
            first_ms = (time.perf_counter() - t0) * 1000
            spawn_to_answer = time.perf_counter() - spawned
            assert first.status_code == 200 and first.json()["data"]["actions"][0]["claims"], first.text
        cpu = cpu_seconds(host)
        samples, seconds, failures = asyncio.run(load(host.base_url, token, users, args.requests, args.concurrency))
        hook_cpu_ms = (cpu_seconds(host) - cpu) * 1000 / args.requests
        cpu = cpu_seconds(host)
        asyncio.run(without_token(host.base_url, users, args.requests, args.concurrency))
        host_cpu_ms = (cpu_seconds(host) - cpu) * 1000 / args.requests
        open_samples, open_failures = asyncio.run(
            load_open(host.base_url, token, users, args.rate, args.seconds, args.concurrency))
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    open_p50, open_p99 = percentile(open_samples, 0.5), percentile(open_samples, 0.99)
    return report(
        workload=(f"POST {HOOK}: {args.users:,} users seeded in {seed_seconds:.1f} s; 1 cold request; closed "
                  f"loop: {args.requests:,} calls from {args.concurrency} callers back to back; open loop: "
                  f"{args.rate:.0f} calls/s for {args.seconds:.0f} s, at most {args.concurrency} in flight"),
        figure=(f"host spawn->ready {ready_seconds:.2f} s, spawn->first answer {spawn_to_answer:.2f} s; first "
                f"request {first_ms:.0f} ms; closed loop p50 {p50:.1f} ms, p99 {p99:.1f} ms at "
                f"{len(samples) / seconds:.0f} req/s (saturated); host CPU {hook_cpu_ms:.2f} ms per call "
                f"(host part, from calls without a token, {host_cpu_ms:.2f} ms; product {hook_cpu_ms - host_cpu_ms:.2f} ms); open loop p50 "
                f"{open_p50:.1f} ms, p99 {open_p99:.1f} ms; {failures + open_failures} non-200"),
        baseline=(f"Azurite point read p50 {baseline.p50_ms:.2f} ms; {raw_reads:.0f} point reads/s (p99 "
                  f"{raw_p99:.0f} ms) at {args.concurrency} in flight through the product's storage clients"),
        ratio=(f"open-loop p50 / point read = {open_p50 / baseline.p50_ms:.1f}x; saturated calls/s / raw point "
               f"reads/s = {len(samples) / seconds / raw_reads:.2f} (a call does 2 reads)"),
        target="open-loop p99 < 50 ms with 50 callers; first request < 300 ms",
    )


if __name__ == "__main__":
    main()
