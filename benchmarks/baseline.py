"""Raw Azurite figures measured in the same run as a benchmark: the denominators of every ratio we print."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass

from azure.data.tables import TableTransactionError  # noqa: F401  (imported for the aio client's error types)
from azure.data.tables.aio import TableServiceClient


@dataclass(frozen=True)
class PointReadBaseline:
    reads: int
    p50_ms: float
    p99_ms: float


async def point_read_latency(connection_string: str, reads: int = 500) -> PointReadBaseline:
    """Latency of one raw entity point read (GET by PartitionKey+RowKey) on Azurite, sequential."""
    name = "bench" + uuid.uuid4().hex[:10]
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table(name)
        try:
            await table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": "x" * 64})
            for _ in range(20):  # warm the connection pool
                await table.get_entity("p", "r")
            samples: list[float] = []
            for _ in range(reads):
                started = time.perf_counter()
                await table.get_entity("p", "r")
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            await service.delete_table(name)
    samples.sort()
    return PointReadBaseline(reads, statistics.median(samples), samples[int(len(samples) * 0.99) - 1])


@dataclass(frozen=True)
class BatchWriteBaseline:
    entities: int
    transactions: int
    entities_per_second: float


async def batch_write_throughput(connection_string: str, entities: int = 20_000, partitions: int = 16,
                                 parallelism: int = 8) -> BatchWriteBaseline:
    """Raw upserts in full 100-entity single-partition transactions (`partitions` partitions, `parallelism` in
    flight), through the same azure-data-tables SDK the service uses: the ceiling of any bulk table write."""
    name = "bench" + uuid.uuid4().hex[:10]
    rows = [{"PartitionKey": f"{i % partitions:02d}", "RowKey": str(uuid.uuid4()), "scope": "all",
             "userType": "Member", "generation": 1} for i in range(entities)]
    by_partition: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
    batches = [[("upsert", r) for r in part[i:i + 100]] for part in by_partition.values()
               for i in range(0, len(part), 100)]
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table(name)
        slots = asyncio.Semaphore(parallelism)

        async def submit(batch: list[tuple[str, dict[str, object]]]) -> None:
            async with slots:
                await table.submit_transaction(batch)  # type: ignore[arg-type]

        try:
            await submit(batches[0])  # warm the connection pool
            started = time.perf_counter()
            await asyncio.gather(*(submit(b) for b in batches[1:]))
            seconds = time.perf_counter() - started
        finally:
            await service.delete_table(name)
    written = sum(len(b) for b in batches[1:])
    return BatchWriteBaseline(written, len(batches) - 1, written / seconds)


@dataclass(frozen=True)
class PointReadThroughput:
    reads: int
    reads_per_second: float


async def point_read_throughput(connection_string: str, entities: int = 20_000,
                                parallelism: int = 64) -> PointReadThroughput:
    """Raw concurrent point reads (GET by PartitionKey+RowKey) of `entities` rows, one partition each like the
    security info summaries, `parallelism` in flight, through the same SDK: the floor of a per-user read sweep."""
    name = "bench" + uuid.uuid4().hex[:10]
    keys = [str(uuid.uuid4()) for _ in range(entities)]
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table(name)
        slots = asyncio.Semaphore(parallelism)

        async def write(key: str) -> None:
            async with slots:
                await table.upsert_entity({"PartitionKey": key, "RowKey": "summary", "methods": "email",
                                           "methodCount": 1, "isAdmin": False})

        async def read(key: str) -> None:
            async with slots:
                await table.get_entity(key, "summary")

        try:
            await asyncio.gather(*(write(k) for k in keys))
            started = time.perf_counter()
            await asyncio.gather(*(read(k) for k in keys))
            seconds = time.perf_counter() - started
        finally:
            await service.delete_table(name)
    return PointReadThroughput(entities, entities / seconds)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def report(*, workload: str, figure: str, baseline: str, ratio: str, target: str) -> dict[str, object]:
    """Print a benchmark's result, one line each, and return it (`make bench` tabulates them)."""
    result: dict[str, object] = {"workload": workload, "figure": figure, "baseline": baseline, "ratio": ratio,
                                 "target": target}
    for key, value in result.items():
        print(f"{key:>9}: {value}", flush=True)
    return result
