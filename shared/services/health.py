"""Health: can this instance reach Azure Storage and Microsoft Graph right now?"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from shared import __version__

if TYPE_CHECKING:
    from shared.adapters.graph import GraphGateway  # the Graph SDK: the composition root builds it on first use
    from shared.adapters.storage import StorageClients

CHECK_TIMEOUT_SECONDS = 3.0


class DependencyDocument(BaseModel):
    status: str
    latencyMs: int
    reason: str | None = None


class HealthDocument(BaseModel):
    """Health of this instance: "ok", or "unavailable" with the dependency at fault."""

    status: str
    version: str
    checks: dict[str, DependencyDocument]


@dataclass(frozen=True)
class DependencyStatus:
    ok: bool
    latency_ms: int
    reason: str | None = None  # "timeout" or "unreachable": never an error text that could carry details

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"status": "ok" if self.ok else "unavailable", "latencyMs": self.latency_ms}
        if self.reason:
            result["reason"] = self.reason
        return result


@dataclass(frozen=True)
class HealthReport:
    storage: DependencyStatus
    graph: DependencyStatus
    version: str = __version__
    # Whether an on-premises agent is live (where one is configured). It does not make this instance unhealthy:
    # an instance recycled for an agent's silence would serve nobody better.
    agents: DependencyStatus | None = None

    @property
    def ok(self) -> bool:
        return self.storage.ok and self.graph.ok

    def as_dict(self) -> dict[str, object]:
        checks = {"storage": self.storage.as_dict(), "graph": self.graph.as_dict()}
        if self.agents is not None:
            checks["onPremisesAgents"] = self.agents.as_dict()
        return {"status": "ok" if self.ok else "unavailable", "version": self.version, "checks": checks}


class LiveAgents(Protocol):
    async def live(self) -> int: ...


async def _probe(check: Callable[[], Awaitable[object]]) -> DependencyStatus:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        reason = None
    except TimeoutError:
        reason = "timeout"
    except LookupError:  # reached, but nobody there: no on-premises agent is live
        reason = "no-live-agent"
    except Exception:  # noqa: BLE001 - any failure means "not reachable"; the detail stays out of the answer
        reason = "unreachable"
    return DependencyStatus(reason is None, round((time.perf_counter() - started) * 1000), reason)


async def check_health(storage: StorageClients, graph: GraphGateway, agents: LiveAgents | None = None) -> HealthReport:
    """Probe storage, Graph (and the agents' heartbeats) concurrently, each bounded by CHECK_TIMEOUT_SECONDS."""
    probes = [_probe(storage.ping), _probe(graph.reachable)]
    if agents is not None:
        probes.append(_probe(lambda: _some_agent_live(agents)))
    statuses = await asyncio.gather(*probes)
    return HealthReport(storage=statuses[0], graph=statuses[1], agents=statuses[2] if agents is not None else None)


async def _some_agent_live(agents: LiveAgents) -> None:
    if not await agents.live():
        raise LookupError("no on-premises agent is live")


class HealthProbe:
    """The last health report, re-probed at most every `ttl_seconds`: the endpoint is anonymous, and each probe
    costs a Graph call from the tenant's quota, so a flood of requests must not become a flood of probes (G4)."""

    def __init__(self, storage: StorageClients, graph: GraphGateway, ttl_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, agents: LiveAgents | None = None) -> None:
        self._storage = storage
        self._graph = graph
        self._agents = agents
        self._ttl = ttl_seconds
        self._clock = clock
        self._report: HealthReport | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def report(self) -> HealthReport:
        async with self._lock:  # concurrent requests share one probe
            if self._report is None or self._clock() - self._checked_at >= self._ttl:
                self._report = await check_health(self._storage, self._graph, self._agents)
                self._checked_at = self._clock()
            return self._report
