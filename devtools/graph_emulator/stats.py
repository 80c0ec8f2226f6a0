"""Request counters per method + route template, for benchmarks (GET /_emulator/stats)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Stats:
    graph: Counter[str] = field(default_factory=Counter)
    identity: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    faults_fired: int = 0

    def count_graph(self, key: str, status: int) -> None:
        self.graph[key] += 1
        self.statuses[status] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "graph": {"total": sum(self.graph.values()), "byRoute": dict(sorted(self.graph.items()))},
            "graphStatuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "identity": {"total": sum(self.identity.values()), "byRoute": dict(sorted(self.identity.items()))},
            "faultsFired": self.faults_fired,
        }

    def clear(self) -> None:
        self.graph.clear()
        self.identity.clear()
        self.statuses.clear()
        self.faults_fired = 0
