"""Registration reminders in Table Storage (one ETag'd slot per user) and the queue messages sign-in events make.

Table "Reminders": PartitionKey = user id, RowKey = "registration", `sentAt` = when the last reminder was queued
and `messageId` = its notification id. Claiming the slot is a conditional write (create when absent, replace
under the read ETag), so of two workers that see the same sign-in at once exactly one claims the period.

Row "expiry" of the same partition: the password-expiry stages sent for the user's current password
(`passwordVersion`, `stages` "14,7"), and the run that last claimed one (`claimedBy`), claimed under its ETag like
the registration slot (shared/domain/password_expiry.py: each stage at most once per password).

Lifetime: a registration slot decides nothing once its period has passed (the next claim replaces it anyway), so
`ReminderStore.purge_expired` deletes slots claimed before `now - period` (under the ETag read: a slot claimed again
meanwhile stays). An "expiry" row decides nothing once its password has expired; `ExpirySlots.purge_expired` deletes
rows whose last stage was claimed before a cutoff the purge sets past the largest stage
(shared/services/maintenance.py), under the ETag read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity

from shared.adapters.etag_retry import LostRace, write_if_unchanged
from shared.adapters.run_store import KeyRange
from shared.adapters.storage import StorageClients, delete_rows
from shared.adapters.storage_errors import storage_errors
from shared.domain.password_expiry import StagesSent

TABLE = "Reminders"
REGISTRATION_ROW = "registration"
EXPIRY_ROW = "expiry"


@dataclass(frozen=True)
class ReminderSlot:
    """The user's last registration reminder as stored, with the ETag a new claim must name."""

    sent_at: datetime
    message_id: str
    etag: str
    claimed_by: str | None = None  # the compliance run that claimed the slot (None: a sign-in did)


def _slot_from(entity: TableEntity) -> ReminderSlot:
    return ReminderSlot(entity["sentAt"], str(entity.get("messageId") or ""), str(entity.metadata["etag"]),
                        entity.get("claimedBy"))


@dataclass(frozen=True)
class ReminderStore:
    storage: StorageClients

    async def registration_slot(self, user_id: str) -> ReminderSlot | None:
        entity = await _read(self.storage, user_id, REGISTRATION_ROW)
        return None if entity is None else _slot_from(entity)

    async def registration_slots_in(self, users: KeyRange) -> dict[str, ReminderSlot]:
        """The registration slots of the users with ids in `users`: one partition-range scan, for a compliance
        sweep's page."""
        clauses, params = users.clauses("PartitionKey")
        table = await self.storage.table_ready(TABLE)
        with storage_errors("reminder read"):
            rows = table.query_entities(" and ".join(["RowKey eq @row", *clauses]),
                                        parameters={"row": REGISTRATION_ROW, **params}, results_per_page=1000,
                                        select=["PartitionKey", "sentAt", "messageId", "claimedBy"])
            return {str(e["PartitionKey"]): _slot_from(e) async for e in rows}

    async def claim_registration_slot(self, user_id: str, seen: ReminderSlot | None, now: datetime,
                                      message_id: str, claimed_by: str | None = None) -> str | None:
        """Take the slot if nobody changed it since `seen` was read; the new ETag, or None when someone else won.
        `claimed_by`: the compliance run claiming it, so a redelivery of its page can tell the reminder is its own."""
        entity = {"PartitionKey": user_id, "RowKey": REGISTRATION_ROW, "sentAt": now, "messageId": message_id,
                  "claimedBy": claimed_by}
        table = await self.storage.table_ready(TABLE)
        try:
            return await write_if_unchanged(table, entity, seen.etag if seen else None, "reminder")
        except LostRace:
            return None

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` registration slots claimed before `cutoff` (now minus the reminder period)."""
        return await _purge_slots(self.storage, REGISTRATION_ROW, cutoff, limit, "reminder purge read")


@dataclass(frozen=True)
class ExpirySlot:
    """The expiry stages sent for the user's current password, the run that claimed the last, and the ETag."""

    sent: StagesSent
    claimed_by: str | None
    etag: str


@dataclass(frozen=True)
class ExpirySlots:
    """The "expiry" rows of table Reminders (module docstring)."""

    storage: StorageClients

    async def get(self, user_id: str) -> ExpirySlot | None:
        e = await _read(self.storage, user_id, EXPIRY_ROW)
        if e is None:
            return None
        stages = tuple(int(s) for s in str(e.get("stages") or "").split(",") if s)
        return ExpirySlot(StagesSent(str(e.get("passwordVersion") or ""), stages), e.get("claimedBy"),
                          str(e.metadata["etag"]))

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` "expiry" rows whose last stage was claimed before `cutoff`."""
        return await _purge_slots(self.storage, EXPIRY_ROW, cutoff, limit, "expiry reminder purge read")

    async def claim(self, user_id: str, seen: ExpirySlot | None, sent: StagesSent, run_id: str,
                    now: datetime) -> bool:
        """Store `sent` if nobody changed the row since `seen` was read; False when someone else did."""
        entity = {"PartitionKey": user_id, "RowKey": EXPIRY_ROW, "passwordVersion": sent.password_version,
                  "stages": ",".join(str(s) for s in sent.stages), "claimedBy": run_id, "sentAt": now}
        table = await self.storage.table_ready(TABLE)
        try:
            await write_if_unchanged(table, entity, seen.etag if seen else None, "expiry reminder")
        except LostRace:
            return False
        return True


async def _read(storage: StorageClients, user_id: str, row_key: str) -> TableEntity | None:
    table = await storage.table_ready(TABLE)
    with storage_errors("reminder read"):
        try:
            return await table.get_entity(user_id, row_key)
        except ResourceNotFoundError:
            return None


async def _purge_slots(storage: StorageClients, row_key: str, cutoff: datetime, limit: int, what: str) -> int:
    """Delete up to `limit` rows `row_key` of table Reminders claimed (`sentAt`) before `cutoff`."""
    table = await storage.table_ready(TABLE)
    old: list[TableEntity] = []
    with storage_errors(what):
        rows = table.query_entities("RowKey eq @row and sentAt lt @cutoff",
                                    parameters={"row": row_key, "cutoff": cutoff},
                                    select=["PartitionKey", "RowKey"], results_per_page=1000)
        async for row in rows:
            old.append(row)
            if len(old) >= limit:
                break
    return await delete_rows(table, old)


@dataclass(frozen=True)
class MessageQueues:
    """Sends JSON messages (ids only, never secrets) to the app's queues, base64 as the queue trigger reads them."""

    storage: StorageClients

    async def send(self, queue: str, body: dict[str, Any]) -> None:
        with storage_errors(f"queue {queue} send"):
            client = await self.storage.queue_ready(queue)
            await client.send_message(json.dumps(body, separators=(",", ":")))
