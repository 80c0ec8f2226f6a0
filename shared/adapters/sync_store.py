"""Where the scope re-sync stands, in Table Storage ("ScopeSync"): one row, changed only under its ETag.

Row ("delta", "users") follows `/users/delta`; row ("delta", "groups") follows `/groups/delta` for a Selected scope
(the same columns, plus `groups`: the group and its nested groups followed, comma-separated). Row ("delta", "users"):
    runId       the completed enablement run whose scope is being kept current; another run id means the scope
                changed, and the delta starts over
    link        the Graph URL to read next: a nextLink while a round of pages is under way, else the deltaLink;
                None: start a full enumeration from scratch
    phase       "baseline" while the first full enumeration runs (its users are the run's own, nothing to apply),
                "resync" while a full enumeration after a lost delta token runs (applied), "changes" once a
                deltaLink was reached
    syncedAt    when a round last reached its deltaLink; changedAt / added / updated / removed: the last change

The link is stored only after its page's changes are applied, so a crash re-reads (and re-applies) that page and
never skips one. Lifetime: the row lives as long as the deployment; a scope change overwrites it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.etag_retry import write_if_unchanged
from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors

TABLE = "ScopeSync"
KEY = ("delta", "users")
GROUPS_KEY = ("delta", "groups")


class Phase(StrEnum):
    BASELINE = "baseline"  # the first full enumeration after a run: the run's own users, nothing applied
    RESYNC = "resync"  # a full enumeration after Graph lost the delta state: every user applied
    CHANGES = "changes"  # following deltaLinks: changed users applied


@dataclass(frozen=True)
class SyncState:
    run_id: str
    link: str | None
    phase: Phase
    synced_at: datetime | None = None
    changed_at: datetime | None = None
    added: int = 0
    updated: int = 0
    removed: int = 0
    groups: tuple[str, ...] = ()  # the groups row only: the group and its nested groups followed
    etag: str | None = field(default=None, compare=False)  # None: not stored yet


@dataclass(frozen=True)
class SyncStore:
    storage: StorageClients

    async def get(self, key: tuple[str, str] = KEY) -> SyncState | None:
        table = await self.storage.table_ready(TABLE)
        with storage_errors("scope sync read"):
            try:
                e = await table.get_entity(*key)
            except ResourceNotFoundError:
                return None
        return SyncState(
            run_id=str(e["runId"]), link=e.get("link"), phase=Phase(e.get("phase") or Phase.BASELINE.value),
            synced_at=e.get("syncedAt"), changed_at=e.get("changedAt"), added=int(e.get("added") or 0),
            updated=int(e.get("updated") or 0), removed=int(e.get("removed") or 0),
            groups=tuple(g for g in str(e.get("groups") or "").split(",") if g), etag=str(e.metadata["etag"]),
        )

    async def save(self, state: SyncState, seen_etag: str | None, key: tuple[str, str] = KEY) -> SyncState:
        """Store `state` if the row is still as read (`seen_etag`; None: absent); LostRace when another sync
        moved it on meanwhile. Returns the state with its new ETag."""
        entity: dict[str, Any] = {
            "PartitionKey": key[0], "RowKey": key[1], "runId": state.run_id, "link": state.link,
            "phase": state.phase.value, "syncedAt": state.synced_at, "changedAt": state.changed_at,
            "added": state.added, "updated": state.updated, "removed": state.removed, "groups": ",".join(state.groups),
        }
        table = await self.storage.table_ready(TABLE)
        etag = await write_if_unchanged(table, entity, seen_etag, "scope sync")
        return SyncState(**{**state.__dict__, "etag": etag})
