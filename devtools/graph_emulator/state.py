"""Everything one emulator instance holds, shared by the route modules through ``app[STATE]``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .faults import Faults
from .identity_keys import SigningKeys
from .outbox import Outbox
from .stats import Stats
from .tenant import Tenant


@dataclass(slots=True)
class EmulatorState:
    fixture: dict[str, Any]
    generated_users: int | None
    seed: int | None
    tenant: Tenant
    keys: SigningKeys
    base_url: str | None = None  # fixed public origin, e.g. http://127.0.0.1:7072; None = from each request
    faults: Faults = field(default_factory=Faults)
    outbox: Outbox = field(default_factory=Outbox)
    stats: Stats = field(default_factory=Stats)
    report_calls: dict[str, deque[float]] = field(default_factory=dict)  # client id -> recent call times
    auth_codes: dict[str, Any] = field(default_factory=dict)  # one-time authorization codes (authorize.py)

    def reset(self) -> None:
        """Back to the initial tenant; signing keys are kept so tokens already handed out stay valid."""
        self.tenant = Tenant(self.fixture, self.generated_users, self.seed)
        self.faults.clear()
        self.outbox.clear()
        self.stats.clear()
        self.report_calls.clear()
        self.auth_codes.clear()

    def origin(self, request: web.Request) -> str:
        return self.base_url or f"{request.scheme}://{request.host}"

    def issuer(self, request: web.Request) -> str:
        return f"{self.origin(request)}/{self.tenant.id}/v2.0"


STATE = web.AppKey("state", EmulatorState)
