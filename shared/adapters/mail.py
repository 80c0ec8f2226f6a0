"""Sending mail through Graph sendMail from SSPR_MAIL_SENDER, its texts (web/i18n/mail.<lang>.json) and its ledger.

Addresses are masked in logs (E2); bodies are never logged (they may carry a code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableEntity, UpdateMode

from shared import i18n
from shared.adapters.graph import GraphGateway
from shared.adapters.storage import StorageClients, delete_rows
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

    async def send(self, to: list[str], subject: str, html: str) -> None:
        await self.graph.send_mail(self.sender, to, subject, html)
        log.info("mail sent to %s", ", ".join(mask_contact(a) or "" for a in to))


@dataclass(frozen=True)
class MailLedger:
    """Which notification messages already sent their mail (table "Notifications", one row per message id).

    A worker claims a message id before sending (create; a second worker's create fails), and marks it sent
    after. A claim older than `lease` is a crashed worker's: it may be taken over (ETag'd), so a crash between
    claim and send does not lose the mail. A claim is its row's ETag: a failed send releases only its own claim,
    never a claim another worker took over meanwhile.

    Lifetime: a row guards against a second send of its message only while a copy of that message can still
    arrive (queue messages live at most 7 days, redeliveries included); `purge_expired` deletes rows last
    written before a cutoff the purge sets well past that (security.md E4).
    """

    TABLE = "Notifications"

    storage: StorageClients

    async def claim(self, message_id: str, now: datetime, lease: timedelta) -> str | None:
        """This worker's claim (the row's ETag) to send the message's mail; None if it was sent or is being sent."""
        table = await self.storage.table_ready(self.TABLE)
        entity = {"PartitionKey": message_id, "RowKey": "mail", "state": "sending", "at": now}
        with storage_errors("ledger write"):
            try:
                return str((await table.create_entity(entity))["etag"])
            except ResourceExistsError:
                pass
            try:
                current = await table.get_entity(message_id, "mail")
                if current.get("state") == "sent" or now - current["at"] < lease:
                    return None
                taken = await table.update_entity(entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                                  match_condition=MatchConditions.IfNotModified)
                return str(taken["etag"])
            except HttpResponseError as exc:
                if exc.status_code in (404, 412):
                    return None  # another worker took it over or released it: let the queue's retry decide
                raise

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

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` ledger rows last written before `cutoff` (under the ETag read); the count deleted."""
        table = await self.storage.table_ready(self.TABLE)
        old: list[TableEntity] = []
        with storage_errors("ledger purge read"):
            async for row in table.query_entities("at lt @cutoff", parameters={"cutoff": cutoff},
                                                  select=["PartitionKey", "RowKey"], results_per_page=1000):
                old.append(row)
                if len(old) >= limit:
                    break
        return await delete_rows(table, old)
