"""Azure Table and Queue clients, reached with a connection string (Azurite) or a managed identity.

Queues use base64 message bodies because that is what the Functions host's queue trigger expects
(host.json `messageEncoding`).
"""

from __future__ import annotations

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
from shared.config import Settings, expand_development_storage

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


class StorageClients:
    """The process's Table and Queue service clients; table names carry the deployment's prefix."""

    def __init__(
        self,
        tables: TableServiceClient,
        queues: QueueServiceClient,
        table_prefix: str,
        credential: AsyncTokenCredential | None = None,
        queue_prefix: str = "sspr",
    ) -> None:
        self._tables = tables
        self._queues = queues
        self._table_prefix = table_prefix
        self._queue_prefix = queue_prefix
        self._credential = credential
        self._created: set[str] = set()
        # Clients are built once per name: building one per call cost ~15% of the sign-in hook's time.
        self._table_clients: dict[str, TableClient] = {}
        self._queue_clients: dict[str, QueueClient] = {}

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
        return f"{self._table_prefix}{name}"

    def table(self, name: str) -> TableClient:
        """The client of table `<prefix><name>`, e.g. table("Policy") -> "ssprPolicy"."""
        client = self._table_clients.get(name)
        if client is None:
            client = self._table_clients[name] = self._tables.get_table_client(self.table_name(name))
        return client

    async def table_ready(self, name: str) -> TableClient:
        """`table(name)`, created on first use in this process (one extra call per table per process)."""
        client = self.table(name)
        key = f"table:{client.table_name}"
        if key not in self._created:
            await self._tables.create_table_if_not_exists(client.table_name)
            self._created.add(key)
        return client

    def queue_name(self, name: str) -> str:
        """The real name of logical queue `name` (shared/queues.py), e.g. "notifications" -> "sspr-notifications"."""
        return f"{self._queue_prefix}-{name}"

    async def queue_ready(self, name: str) -> QueueClient:
        """`queue(name)`, created on first use in this process."""
        client = self.queue(name)
        key = f"queue:{name}"
        if key not in self._created:
            try:
                await client.create_queue()
            except ResourceExistsError:
                pass
            self._created.add(key)
        return client

    def queue(self, name: str) -> QueueClient:
        """The client of logical queue `name` (shared/queues.py): a queue client whose messages are base64 text, as the Functions queue trigger reads them."""
        client = self._queue_clients.get(name)
        if client is None:
            client = self._queue_clients[name] = self._queues.get_queue_client(
                self.queue_name(name),
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        return client

    @property
    def table_service(self) -> TableServiceClient:
        return self._tables

    @property
    def queue_service(self) -> QueueServiceClient:
        return self._queues

    async def ping(self) -> None:
        """One cheap authenticated call to each service, no retries; raises when either cannot answer."""
        async for _ in self._tables.list_tables(results_per_page=1, retry_total=0):
            break
        async for _ in self._queues.list_queues(results_per_page=1, retry_total=0):
            break

    async def close(self) -> None:
        for table in self._table_clients.values():
            await table.close()
        for queue in self._queue_clients.values():
            await queue.close()
        await self._tables.close()
        await self._queues.close()
        if self._credential is not None:
            await self._credential.close()


# ---- purging expired rows (security.md E4) ------------------------------------------------------------------

TRANSACTION_LIMIT = 100  # entities per single-partition transaction (Azure Tables)


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
