"""Throttle counters in Table Storage ("Throttle"): one row per user, one row per budget window; ETag'd changes.

User rows: partition "user-<id>", row "limits": the sliding-window timestamps and the block (shared/domain/
throttling.py). Budget rows: partition "budget-<channel>-<scope>[-<ip>]", row = window start (UTC, ISO), one
counter each; old windows are left for the sweep (E4). Keys are built from validated values only: a user id is
a token's object id, a channel an enum, and an IP is hashed so no client input reaches a key (D6). An IP budget
counts an IPv6 client by its /64 and an IPv4 client by its address (`client_address.budget_key`, G6).

A global budget is counted by every send of the tenant, so one counter row would be the hottest row of the
service: it is spread over `GLOBAL_SHARDS` rows per window ("<window>-<shard>"), a send increments one at random
and the count is the sum of the window's rows (one range query). The sum can miss a send racing it, so a global
budget may admit a few more sends than its maximum (at most the sends in flight at that instant): an acceptable
error for a cost bound. Every increment is ETag'd and retried with backoff (shared/adapters/etag_retry.py).

Lifetime (`purge_expired`, security.md E4): a user row is dead once it would judge exactly like no row
(`throttling.forgettable`: every timestamp older than the window of the limit it counts for, failed flows' 24 hours
included, and no block running); a budget row is dead once its window has ended (window start older than the
longest budget window).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.data.tables import TableEntity

from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.storage import StorageClients, purge_where, read_row
from shared.adapters.storage_errors import storage_errors
from shared.domain.client_address import budget_key
from shared.domain.throttling import BUDGETS, Budget, UserThrottle, forgettable, window_start

TABLE = "Throttle"
USER_ROW = "limits"
GLOBAL_SHARDS = 8
WINDOW_KEY_FORMAT = "%Y%m%dT%H%M%SZ"


def _user_key(user_id: str) -> str:
    return f"user-{user_id}"


def _times(text: str | None) -> tuple[datetime, ...]:
    return tuple(datetime.fromisoformat(t) for t in json.loads(text or "[]"))


def _user_entity(t: UserThrottle) -> dict[str, Any]:
    return {
        "PartitionKey": _user_key(t.user_id),
        "RowKey": USER_ROW,
        "sends": json.dumps([s.isoformat() for s in t.sends]),
        "failures": json.dumps([f.isoformat() for f in t.failures]),
        "failedFlows": json.dumps([f.isoformat() for f in t.failed_flows]),
        "blockedUntil": t.blocked_until,
    }


def _user(user_id: str, e: Any) -> UserThrottle:
    blocked = e.get("blockedUntil")
    return UserThrottle(
        user_id=user_id, sends=_times(e.get("sends")), failures=_times(e.get("failures")),
        failed_flows=_times(e.get("failedFlows")),
        blocked_until=blocked if isinstance(blocked, datetime) else None, etag=e.metadata.get("etag"),
    )


def budget_partition(budget: Budget, client_ip: str | None) -> str:
    if budget.scope == "global":
        return f"budget-{budget.channel.value}-global"
    ip_hash = hashlib.sha256((budget_key(client_ip) or "unknown").encode()).hexdigest()[:32]
    return f"budget-{budget.channel.value}-ip-{ip_hash}"


@dataclass(frozen=True)
class ThrottleStore:
    storage: StorageClients

    async def user(self, user_id: str) -> UserThrottle:
        found = await read_row(await self.storage.table_ready(TABLE), _user_key(user_id), USER_ROW, "throttle")
        return UserThrottle(user_id=user_id) if found is None else _user(user_id, found)

    async def change_user(self, user_id: str, rule: Callable[[UserThrottle], UserThrottle]) -> tuple[UserThrottle, UserThrottle]:
        """Apply `rule` under the row's ETag (create if absent), re-reading on conflict; returns (before, after)."""
        table = await self.storage.table_ready(TABLE)

        async def attempt() -> tuple[UserThrottle, UserThrottle]:
            before = await self.user(user_id)
            after = rule(before)
            await write_if_unchanged(table, _user_entity(after), before.etag, "throttle")
            return before, after

        return await retry_lost_races(attempt, f"throttle row of {user_id}")

    async def spend(self, budget: Budget, client_ip: str | None, now: datetime) -> int:
        """Count one send against the budget's current window; returns the count including this send (for a
        global budget: the sum of its shards, which may miss a send racing this one)."""
        table = await self.storage.table_ready(TABLE)
        partition = budget_partition(budget, client_ip)
        window = window_start(now, budget.window).strftime(WINDOW_KEY_FORMAT)
        if budget.scope != "global":
            return await self._increment(partition, window)
        mine = await self._increment(partition, f"{window}-{secrets.randbelow(GLOBAL_SHARDS):02d}")
        with storage_errors("budget read"):
            rows = table.query_entities("PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                        parameters={"pk": partition, "lo": f"{window}-", "hi": f"{window}-~"},
                                        select=["RowKey", "count"])
            total = sum([int(e["count"]) async for e in rows])
        return max(total, mine)

    async def _increment(self, partition: str, row: str) -> int:
        """Add one to the counter row (created at 1); its new value."""
        table = await self.storage.table_ready(TABLE)

        async def attempt() -> int:
            entity = await read_row(table, partition, row, "budget")
            count = int(entity["count"]) + 1 if entity is not None else 1
            etag = entity.metadata["etag"] if entity is not None else None
            await write_if_unchanged(table, {"PartitionKey": partition, "RowKey": row, "count": count}, etag,
                                     "budget")
            return count

        return await retry_lost_races(attempt, f"budget counter {partition}/{row}")

    async def purge_expired(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` dead user rows and `limit` dead budget rows (each under the ETag read, so a row
        written meanwhile stays); the count deleted. Idempotent."""
        table = await self.storage.table_ready(TABLE)
        budget_cutoff = (now - max(b.window for b in BUDGETS)).strftime(WINDOW_KEY_FORMAT)

        def dead(row: TableEntity) -> bool:
            return forgettable(_user(str(row["PartitionKey"]).removeprefix("user-"), row), now)

        users = await purge_where(table, "PartitionKey ge @lo and PartitionKey lt @hi and RowKey eq @row",
                                  {"lo": "user-", "hi": "user.", "row": USER_ROW}, limit, "throttle", None, dead)
        return users + await purge_where(table, "PartitionKey ge @lo and PartitionKey lt @hi and RowKey lt @cutoff",
                                         {"lo": "budget-", "hi": "budget.", "cutoff": budget_cutoff}, limit,
                                         "throttle")
