"""Azure Table and Queue clients, reached with a connection string (Azurite) or a managed identity.

Queues use base64 message bodies because that is what the Functions host's queue trigger expects
(host.json `messageEncoding`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableEntity, TableTransactionError
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.adapters.storage_errors import storage_errors
from shared.config import Settings
from shared.endpoints import expand_development_storage
from shared.errors import StorageUnavailable

# Fail fast rather than hold a request for the SDK's default minutes-long retry ladder.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 3,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
    "connection_timeout": 5,
    "read_timeout": 15,
}


def _options() -> dict[str, Any]:
    """Client options with a transport of its own that does not read ~/.netrc and proxy variables on every
    request (15% of the sign-in hook's CPU went there); storage is reached directly, never through a proxy."""
    return {**CLIENT_OPTIONS, "transport": AioHttpTransport(use_env_settings=False)}


@dataclass(eq=False)  # one per process: compared, like any client, by identity
class StorageClients:
    """The process's Table and Queue service clients; table names carry the deployment's prefix."""

    table_service: TableServiceClient
    queue_service: QueueServiceClient
    table_prefix: str
    credential: AsyncTokenCredential | None = None
    queue_prefix: str = "sspr"
    _created: set[str] = field(default_factory=set, init=False)
    # Clients are built once per name: building one per call cost ~15% of the sign-in hook's time.
    _table_clients: dict[str, TableClient] = field(default_factory=dict, init=False)
    _queue_clients: dict[str, QueueClient] = field(default_factory=dict, init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageClients:
        if settings.storage_connection_string:
            conn = expand_development_storage(settings.storage_connection_string)
            return cls(
                TableServiceClient.from_connection_string(conn, **_options()),
                QueueServiceClient.from_connection_string(conn, **_options()),
                settings.table_prefix,
                queue_prefix=settings.queue_prefix,
            )
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        account = settings.storage_account_name
        table_uri = settings.storage_table_service_uri or f"https://{account}.table.core.windows.net"
        queue_uri = settings.storage_queue_service_uri or f"https://{account}.queue.core.windows.net"
        return cls(
            TableServiceClient(endpoint=table_uri, credential=credential, **_options()),
            QueueServiceClient(account_url=queue_uri, credential=credential, **_options()),
            settings.table_prefix,
            credential,
            queue_prefix=settings.queue_prefix,
        )

    def table_name(self, name: str) -> str:
        return f"{self.table_prefix}{name}"

    def table(self, name: str) -> TableClient:
        """The client of table `<prefix><name>`, e.g. table("Policy") -> "ssprPolicy"."""
        return self._table_client(self.table_name(name))

    def _table_client(self, full_name: str) -> TableClient:
        client = self._table_clients.get(full_name)
        if client is None:
            client = self._table_clients[full_name] = self.table_service.get_table_client(full_name)
        return client

    async def table_ready(self, name: str, prefixed: bool = True) -> TableClient:
        """`table(name)`, created on first use in this process (one extra call per table per process).
        `prefixed=False`: the table is named in full already (the on-premises agent's tables)."""
        client = self.table(name) if prefixed else self._table_client(name)
        key = f"table:{client.table_name}"
        if key not in self._created:
            await self.table_service.create_table_if_not_exists(client.table_name)
            self._created.add(key)
        return client

    def queue_name(self, name: str) -> str:
        """The real name of logical queue `name` (shared/queues.py), e.g. "notifications" -> "sspr-notifications"."""
        return f"{self.queue_prefix}-{name}"

    async def queue_ready(self, name: str) -> QueueClient:
        """`queue(name)`, created on first use in this process."""
        client = self.queue(name)
        key = f"queue:{name}"
        if key not in self._created:
            with suppress(ResourceExistsError):
                await client.create_queue()
            self._created.add(key)
        return client

    def queue(self, name: str) -> QueueClient:
        """The client of logical queue `name` (shared/queues.py): a queue client whose messages are base64 text, as the Functions queue trigger reads them."""
        client = self._queue_clients.get(name)
        if client is None:
            client = self._queue_clients[name] = self.queue_service.get_queue_client(
                self.queue_name(name),
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        return client

    async def ping(self) -> None:
        """One cheap authenticated call to each service, no retries; raises when either cannot answer."""
        async for _ in self.table_service.list_tables(results_per_page=1, retry_total=0):
            break
        async for _ in self.queue_service.list_queues(results_per_page=1, retry_total=0):
            break

    async def close(self) -> None:
        for table in self._table_clients.values():
            await table.close()
        for queue in self._queue_clients.values():
            await queue.close()
        await self.table_service.close()
        await self.queue_service.close()
        if self.credential is not None:
            await self.credential.close()


# ---- purging expired rows (security.md E4) ------------------------------------------------------------------

TRANSACTION_LIMIT = 100  # entities per single-partition transaction (Azure Tables)


KEYS = ["PartitionKey", "RowKey"]


async def read_row(table: TableClient, partition: str, row: str, what: str) -> TableEntity | None:
    """One point read: the row, or None when there is none."""
    with storage_errors(f"{what} read"):
        try:
            return await table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None


async def create_row(table: TableClient, entity: dict[str, Any], what: str) -> None:
    """Insert a row keyed by a fresh random id: one already there is a collision, never expected, and refused."""
    with storage_errors(f"{what} write"):
        try:
            await table.create_entity(entity)
        except ResourceExistsError:
            raise StorageUnavailable(f"{what} id collision") from None


async def purge_where(table: TableClient, query: str, parameters: dict[str, Any], limit: int, what: str,
                      select: list[str] | None = KEYS, dead: Callable[[TableEntity], bool] | None = None) -> int:
    """Delete up to `limit` of the rows `query` finds (those `dead` judges dead, when it is given), each under the
    ETag read, so a row written meanwhile stays; the count deleted. Idempotent."""
    found: list[TableEntity] = []
    with storage_errors(f"{what} purge read"):
        async for row in table.query_entities(query, parameters=parameters, select=select, results_per_page=1000):
            if dead is None or dead(row):
                found.append(row)
                if len(found) >= limit:
                    break
    return await delete_rows(table, found)


async def purge_partitions(table: TableClient, query: str, parameters: dict[str, Any], limit: int, what: str) -> int:
    """Delete the whole partition of each row `query` finds (a flow or a verification: its row and its challenge
    rows), until at least `limit` rows are read; the count deleted. Idempotent."""
    rows: list[TableEntity] = []
    with storage_errors(f"{what} purge read"):
        async for found in table.query_entities(query, parameters=parameters, select=["PartitionKey"],
                                                results_per_page=1000):
            partition = table.query_entities("PartitionKey eq @pk", parameters={"pk": found["PartitionKey"]},
                                             select=KEYS)
            rows.extend([row async for row in partition])
            if len(rows) >= limit:
                break
    return await delete_rows(table, rows)


async def delete_rows(table: TableClient, rows: list[TableEntity]) -> int:
    """Delete `rows` as read (each under its ETag), in single-partition transactions of up to 100; the count deleted.

    A row changed since it was read stays (someone is using it); a row already gone counts as done, so a repeated
    purge is a no-op. A transaction that fails on one such row is redone row by row.
    """
    by_partition: dict[str, list[TableEntity]] = {}
    for row in rows:
        by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
    deleted = 0
    with storage_errors(f"purge of {table.table_name}"):
        for partition_rows in by_partition.values():
            for i in range(0, len(partition_rows), TRANSACTION_LIMIT):
                chunk = partition_rows[i:i + TRANSACTION_LIMIT]
                ops: list[Any] = [
                    ("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]},
                     {"etag": r.metadata["etag"], "match_condition": MatchConditions.IfNotModified})
                    for r in chunk
                ]
                try:
                    await table.submit_transaction(ops)
                    deleted += len(ops)
                except TableTransactionError:
                    deleted += await _delete_one_by_one(table, chunk)
    return deleted


async def _delete_one_by_one(table: TableClient, rows: list[TableEntity]) -> int:
    deleted = 0
    for row in rows:
        try:
            await table.delete_entity(row["PartitionKey"], row["RowKey"], etag=row.metadata["etag"],
                                      match_condition=MatchConditions.IfNotModified)
            deleted += 1
        except (ResourceNotFoundError, ResourceModifiedError):
            continue  # gone already (an earlier purge), or changed since read (in use again): leave it
        except HttpResponseError as exc:
            if exc.status_code not in (404, 409, 412):
                raise
    return deleted
