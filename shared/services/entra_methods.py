"""Methods a user registered in Entra count here (policy entraMethods.count): read from Graph on demand - the
registration page, a reset's first proof - and by the compliance sweep, never by the sign-in hook, which reads
only the kinds the last read left on the user's summary.

A read that Graph refuses (the permission not granted: 403) or cannot answer keeps what was read before, so a
reset or a sweep never fails for it; the refusal is logged once per process for the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from shared.adapters.graph.authentication import EntraContact
from shared.domain import entra_methods
from shared.domain.clock import Clock
from shared.domain.policy import Method, Policy
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary
from shared.errors import GraphError, GraphUnavailable

log = logging.getLogger("sspr.entra_methods")

CONCURRENT_READS = 4  # users read at once by a sweep page (two Graph calls each; the client bounds the rest)


class ContactDirectory(Protocol):
    async def entra_contacts(self, user_id: str) -> list[EntraContact]: ...


class EntraRows(Protocol):
    async def entra_methods(self, user_id: str) -> list[RegisteredMethod]: ...

    async def save_entra_methods(self, user_id: str, methods: list[RegisteredMethod], read_at: datetime) -> None: ...


class PolicySource(Protocol):
    async def get(self) -> Policy: ...


@dataclass
class EntraMethods:
    directory: ContactDirectory
    rows: EntraRows
    policies: PolicySource
    clock: Clock
    _refused: bool = field(default=False, repr=False)

    async def counted(self) -> bool:
        return (await self.policies.get()).entra_methods.count

    async def refresh(self, user_id: str) -> list[RegisteredMethod]:
        """The user's Entra methods read now (and kept); [] when the policy does not count them."""
        if not await self.counted():
            return []
        return await self._read(user_id)

    async def contact(self, user_id: str, method: Method) -> RegisteredMethod | None:
        """The Entra method of this kind as last read, when the policy counts them."""
        if not await self.counted():
            return None
        return next((m for m in await self.rows.entra_methods(user_id) if m.kind is method), None)

    async def refresh_summaries(self, summaries: dict[str, SecurityInfoSummary],
                                user_ids: Iterable[str]) -> dict[str, SecurityInfoSummary]:
        """A sweep page's summaries with the Entra methods of `user_ids` read now (bounded concurrency)."""
        gate = asyncio.Semaphore(CONCURRENT_READS)

        async def one(user_id: str) -> tuple[str, frozenset[Method]]:
            async with gate:
                return user_id, frozenset(m.kind for m in await self._read(user_id))

        found = dict(await asyncio.gather(*(one(u) for u in user_ids)))
        return {**summaries, **{u: replace(summaries.get(u) or SecurityInfoSummary(u), entra_methods=kinds)
                                for u, kinds in found.items()}}

    async def _read(self, user_id: str) -> list[RegisteredMethod]:
        try:
            contacts = await self.directory.entra_contacts(user_id)
        except (GraphError, GraphUnavailable) as error:
            if not self._refused:
                log.warning("Entra's methods cannot be read (%s): grant UserAuthenticationMethod.Read.All "
                            "(scripts/grant_permissions.py --entra-methods); the last read counts meanwhile", error)
                self._refused = True
            return await self.rows.entra_methods(user_id)
        now = self.clock()
        methods = entra_methods.as_methods(((c.kind, c.contact) for c in contacts), now)
        await self.rows.save_entra_methods(user_id, methods, now)
        return methods
