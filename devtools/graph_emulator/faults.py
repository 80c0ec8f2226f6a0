"""Fault injection: latency and error responses on chosen routes, switchable at run time.

A rule fires with probability ``rate`` (drawn from a seeded RNG, so a run is repeatable) at most ``times``
times; ``latencyMs`` delays the request, ``status`` answers with a Graph-shaped error (``Retry-After`` when
``retryAfter`` is set). Rules apply to Graph routes unless ``target`` says "identity" or "all".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Target = Literal["graph", "identity", "all"]


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=400, le=599)
    retryAfter: float | None = Field(default=None, ge=0)
    latencyMs: int = Field(default=0, ge=0, le=120_000)
    rate: float = Field(default=1.0, ge=0, le=1)
    times: int | None = Field(default=None, ge=0)
    pathContains: str | None = None
    methods: list[str] | None = None
    target: Target = "graph"
    code: str | None = None
    message: str | None = None
    fired: int = 0

    def matches(self, method: str, path: str, target: Target) -> bool:
        if self.target != "all" and self.target != target:
            return False
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        if self.pathContains and self.pathContains not in path:
            return False
        return self.times is None or self.fired < self.times


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(default_factory=list, max_length=100)
    seed: int | None = None


@dataclass(slots=True)
class Decision:
    latency_ms: int = 0
    error: FaultRule | None = None


@dataclass(slots=True)
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def configure(self, config: FaultConfig) -> None:
        self.rules = config.rules
        self.rng = random.Random(config.seed if config.seed is not None else 0)

    def clear(self) -> None:
        self.rules = []

    def decide(self, method: str, path: str, target: Target) -> Decision:
        decision = Decision()
        for rule in self.rules:
            if not rule.matches(method, path, target):
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            rule.fired += 1
            decision.latency_ms += rule.latencyMs
            if rule.status is not None:
                decision.error = rule
                break
        return decision
