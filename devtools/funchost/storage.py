"""Queue Storage access for triggers and output bindings: connections by app-setting name, created queues, encoding."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from contextlib import suppress
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient, QueueServiceClient


class StorageConnectionError(Exception):
    """A binding's `connection` names no usable app setting."""


class MessageEncodingError(Exception):
    """A message body that is not valid for the configured encoding."""


def encode_message(body: str | bytes, encoding: str) -> str:
    """The text put on the wire for a message body (host.json messageEncoding)."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    """The body bytes of a message as read from the wire."""
    if encoding != "base64":
        return content.encode("utf-8")
    try:
        return base64.b64decode(content.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MessageEncodingError(f"message content is not valid base64 ({exc})") from exc


class QueueStore:
    """Async Queue Storage clients for every connection the app names, bound to the host's event loop."""

    def __init__(self) -> None:
        self._services: dict[str, QueueServiceClient] = {}
        self._credentials: list[Any] = []
        self._created: set[tuple[str, str]] = set()
        self._create_lock = asyncio.Lock()

    def service(self, connection: str) -> QueueServiceClient:
        if connection not in self._services:
            self._services[connection] = self._connect(connection)
        return self._services[connection]

    def _connect(self, connection: str) -> QueueServiceClient:
        for name in (connection, f"AzureWebJobs{connection}"):
            value = os.environ.get(name)
            if value:
                return QueueServiceClient.from_connection_string(value)
            uri = os.environ.get(f"{name}__queueServiceUri") or os.environ.get(f"{name}__serviceUri")
            account = os.environ.get(f"{name}__accountName")
            if not uri and account:
                uri = f"https://{account}.queue.core.windows.net"
            if uri:
                from azure.identity.aio import DefaultAzureCredential  # only needed for identity connections

                credential = DefaultAzureCredential()
                self._credentials.append(credential)
                return QueueServiceClient(uri, credential=credential)
        raise StorageConnectionError(
            f"connection {connection!r}: set app setting {connection} to a storage connection string "
            f"(or {connection}__queueServiceUri for an identity connection)")

    def queue(self, connection: str, queue_name: str) -> QueueClient:
        return self.service(connection).get_queue_client(queue_name)

    async def ensure_queue(self, connection: str, queue_name: str) -> QueueClient:
        """The queue's client, creating the queue the first time it is used."""
        client = self.queue(connection, queue_name)
        key = (connection, queue_name)
        if key not in self._created:
            async with self._create_lock:
                if key not in self._created:
                    with suppress(ResourceExistsError):
                        await client.create_queue()
                    self._created.add(key)
        return client

    async def close(self) -> None:
        for service in self._services.values():
            await service.close()
        for credential in self._credentials:
            await credential.close()
        self._services.clear()
