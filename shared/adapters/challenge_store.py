"""Code challenges in Table Storage ("Challenges"): partition = the flow, row = the method; ETag'd changes.

Generic on purpose: registration uses partition = a registration session id, reset flows use
partition = the reset flow id. Every read-modify-write goes through `change`, which re-reads and re-applies the
rule when another writer got there first (412), backing off between tries (shared/adapters/etag_retry.py), so
concurrent submissions serialise on the row's ETag (F3, A6).

Lifetime: a challenge lives while its flow may still use it. Once its latest moment (created, sent, expiry, used,
delivered) lies more than the purge's grace in the past, no code of it can be accepted and no resend can reach
it (a new flow starts a new challenge), so `purge_expired` deletes it (security.md E4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.adapters.etag_retry import LostRace, retry_lost_races
from shared.adapters.storage import StorageClients, create_row, purge_where, read_row
from shared.domain.codes import Challenge, Channel, Delivery
from shared.domain.policy import Method
from shared.errors import StorageUnavailable

TABLE = "Challenges"

T = TypeVar("T")
Change = Callable[[Challenge], tuple[T, Challenge]]


def _entity(c: Challenge) -> dict[str, Any]:
    return {
        "PartitionKey": c.partition,
        "RowKey": c.row,
        "userId": c.user_id,
        "method": c.method.value,
        "channel": c.channel.value,
        "contact": c.contact,
        "createdAt": c.created_at,
        "codeDigest": c.code_digest,
        "sentAt": c.sent_at,
        "expiresAt": c.expires_at,
        "sendCount": c.send_count,
        "failedAttempts": c.failed_attempts,
        "usedAt": c.used_at,
        "messageId": c.message_id,
        "delivery": c.delivery.value,
        "deliveryAt": c.delivery_at,
    }


def _challenge(e: Any) -> Challenge:
    def when(name: str) -> datetime | None:
        value = e.get(name)
        return value if isinstance(value, datetime) else None

    return Challenge(
        partition=e["PartitionKey"],
        row=e["RowKey"],
        user_id=e["userId"],
        method=Method(e["method"]),
        channel=Channel(e["channel"]),
        contact=e["contact"],
        created_at=e["createdAt"],
        code_digest=e.get("codeDigest"),
        sent_at=when("sentAt"),
        expires_at=when("expiresAt"),
        send_count=int(e.get("sendCount") or 0),
        failed_attempts=int(e.get("failedAttempts") or 0),
        used_at=when("usedAt"),
        message_id=e.get("messageId"),
        delivery=Delivery(e.get("delivery") or Delivery.REQUESTED.value),
        delivery_at=when("deliveryAt"),
        etag=e.metadata.get("etag"),
    )


@dataclass(frozen=True)
class ChallengeStore:
    """Challenges of one table: "Challenges" (registration sessions) or "ResetFlows" (a reset flow's partition also
    holds its flow row, which is not a challenge and is skipped here)."""

    storage: StorageClients
    table: str = TABLE

    async def create(self, challenge: Challenge) -> None:
        await create_row(await self.storage.table_ready(self.table), _entity(challenge), "challenge")

    async def get(self, partition: str, row: str) -> Challenge | None:
        found = await read_row(await self.storage.table_ready(self.table), partition, row, "challenge")
        return None if found is None else _challenge(found)

    async def in_partition(self, partition: str) -> list[Challenge]:
        """Every challenge of one flow (a registration session has one)."""
        table = await self.storage.table_ready(self.table)
        try:
            rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
            return [_challenge(e) async for e in rows if e.get("method") is not None]
        except AzureError as exc:
            raise StorageUnavailable(f"challenge read failed: {type(exc).__name__}") from None

    async def change(self, partition: str, row: str, rule: Change[T]) -> tuple[T, Challenge] | None:
        """Apply `rule` to the stored challenge under its ETag, re-reading on 412; None if there is none.

        `rule` returns (result, new challenge); an unchanged challenge is not written. Returns the result of the
        application that was stored, and the stored challenge. `WriteContention` if writers kept overtaking.
        """
        table = await self.storage.table_ready(self.table)

        async def attempt() -> tuple[T, Challenge] | None:
            current = await self.get(partition, row)
            if current is None:
                return None
            result, updated = rule(current)
            if updated == current:
                return result, current
            try:
                meta = await table.update_entity(
                    _entity(updated), mode=UpdateMode.REPLACE, etag=current.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceNotFoundError:
                return None
            except HttpResponseError as exc:
                if exc.status_code == 412:
                    raise LostRace from None
                raise StorageUnavailable(f"challenge write failed: {exc.status_code}") from None
            except AzureError as exc:
                raise StorageUnavailable(f"challenge write failed: {type(exc).__name__}") from None
            return result, Challenge(**{**updated.__dict__, "etag": meta.get("etag")})

        return await retry_lost_races(attempt, f"challenge {partition}/{row}")

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` challenges whose latest moment is before `cutoff` (each under the ETag read, so a
        challenge used meanwhile stays); the count deleted. Idempotent."""
        table = await self.storage.table_ready(self.table)
        moments = ["createdAt", "sentAt", "expiresAt", "usedAt", "deliveryAt"]

        def dead(row: TableEntity) -> bool:
            return max(v for m in moments if isinstance(v := row.get(m), datetime)) < cutoff

        return await purge_where(table, "createdAt lt @cutoff", {"cutoff": cutoff}, limit, "challenge",
                                 select=["PartitionKey", "RowKey", *moments], dead=dead)
