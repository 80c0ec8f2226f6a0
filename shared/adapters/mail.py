"""Sending mail through Graph sendMail from SSPR_MAIL_SENDER, its texts (web/i18n/mail.<lang>.json) and its ledger.

Addresses are masked in logs (E2); bodies are never logged (they may carry a code).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared import i18n
from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.graph import GraphGateway
from shared.adapters.graph.mail import InlineImage
from shared.adapters.storage import StorageClients, purge_where, read_row
from shared.adapters.storage_errors import storage_errors
from shared.domain.codes import mask_contact

log = logging.getLogger("sspr.mail")



def mail_texts(language: str) -> dict[str, str]:
    """The mail catalog of `language` ("en" or "sv"; anything else is English)."""
    return i18n.catalog("mail", language)


@dataclass(frozen=True)
class MailSender:
    graph: GraphGateway
    sender: str

    async def send(self, to: list[str], subject: str, html: str, inline: Sequence[InlineImage] = ()) -> None:
        await self.graph.send_mail(self.sender, to, subject, html, inline)
        log.info("mail sent to %s", ", ".join(mask_contact(a) or "" for a in to))


@dataclass(frozen=True)
class MailLedger:
    """Which notification messages already sent their mail (table "Notifications", one row per message id).

    A worker claims a message id before sending (create; a second worker's create loses), and marks it sent
    after. A claim older than `lease` is a crashed worker's: it may be taken over (under its ETag, through
    shared/adapters/etag_retry.py like every read-modify-write), so a crash between claim and send does not lose
    the mail. A claim is its row's ETag: a failed send releases only its own claim,
    never a claim another worker took over meanwhile.

    Lifetime: a row guards against a second send of its message only while a copy of that message can still
    arrive (queue messages live at most 7 days, redeliveries included); `purge_expired` deletes rows last
    written before a cutoff the purge sets well past that (security.md E4).
    """

    TABLE = "Notifications"

    storage: StorageClients

    async def claim(self, message_id: str, now: datetime, lease: timedelta) -> str | None:
        """This worker's claim (the row's ETag) to send the message's mail; None if it was sent or is being sent.
        Read, decide, write under the read's ETag (or create), and on losing the race read again (etag_retry): a
        takeover that lost to a release claims the message; one that lost to another takeover sees its claim."""
        table = await self.storage.table_ready(self.TABLE)
        entity = {"PartitionKey": message_id, "RowKey": "mail", "state": "sending", "at": now}

        async def attempt() -> str | None:
            current = await read_row(table, message_id, "mail", "ledger")
            if current is not None and (current.get("state") == "sent" or now - current["at"] < lease):
                return None
            return await write_if_unchanged(table, entity, current.metadata["etag"] if current else None, "ledger")

        return await retry_lost_races(attempt, f"mail ledger claim of {message_id}")

    async def mark_sent(self, message_id: str, now: datetime) -> None:
        """The mail went out: no copy of the message sends it again (whoever holds the claim now)."""
        table = await self.storage.table_ready(self.TABLE)
        with storage_errors("ledger write"):
            await table.upsert_entity({"PartitionKey": message_id, "RowKey": "mail", "state": "sent", "at": now},
                                      mode=UpdateMode.REPLACE)

    async def release(self, message_id: str, claim: str) -> None:
        """The send failed: give up this worker's `claim`, so the queue's retry may claim the message again. A claim
        another worker has taken over since (another ETag) is left alone."""
        table = await self.storage.table_ready(self.TABLE)
        with storage_errors("ledger release"):
            try:
                await table.delete_entity(message_id, "mail", etag=claim,
                                          match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                log.info("ledger claim of %s was taken over or removed meanwhile: left as it is", message_id)

    async def first_attempt(self, message_id: str, now: datetime, window: timedelta) -> datetime:
        """When the send of `message_id` was first tried, if that was less than `window` ago; else `now`, kept as
        the new first try (row "first" of the message, written under its ETag: of two racing tries both get the
        time the winner kept)."""
        table = await self.storage.table_ready(self.TABLE)

        async def attempt() -> datetime:
            current = await read_row(table, message_id, "first", "ledger")
            if current is not None and now - current["at"] < window:
                return datetime.fromisoformat(current["at"].isoformat())
            await write_if_unchanged(table, {"PartitionKey": message_id, "RowKey": "first", "at": now},
                                     current.metadata["etag"] if current else None, "ledger")
            return now

        return await retry_lost_races(attempt, f"first attempt of {message_id}")

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` ledger rows last written before `cutoff` (under the ETag read); the count deleted."""
        table = await self.storage.table_ready(self.TABLE)
        return await purge_where(table, "at lt @cutoff", {"cutoff": cutoff}, limit, "ledger")
