"""The storage adapter against real Azurite: prefixed tables, base64 queues the Functions host can read."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite, connection_string
from devtools.processes import free_port
from devtools.stack import GraphEmulator, app_settings
from shared.adapters.storage import StorageClients
from shared.config import load_settings

# These tests never call Graph: the emulator settings only have to be well-formed.
UNUSED_EMULATOR = GraphEmulator(process=None, port=9)  # type: ignore[arg-type]


def _settings(azurite: Azurite, prefix: str = "t") -> dict[str, str]:
    return app_settings(azurite, UNUSED_EMULATOR, SSPR_TABLE_PREFIX=prefix)


async def test_tables_carry_the_deployment_prefix(azurite: Azurite) -> None:
    prefix = "p" + uuid.uuid4().hex[:8]
    clients = StorageClients.from_settings(load_settings(_settings(azurite, prefix)))
    try:
        table = clients.table("Policy")
        assert table.table_name == f"{prefix}Policy"
        await clients.table_service.create_table_if_not_exists(table.table_name)
        await table.upsert_entity({"PartitionKey": "policy", "RowKey": "current", "scope": "all"})
        entity = await table.get_entity("policy", "current")
        assert entity["scope"] == "all"
    finally:
        await clients.close()


async def test_queue_messages_are_base64_on_the_wire(azurite: Azurite) -> None:
    clients = StorageClients.from_settings(load_settings(_settings(azurite)))
    name = "q" + uuid.uuid4().hex[:12]
    try:
        queue = clients.queue(name)
        await queue.create_queue()
        await queue.send_message('{"requestId":"r1","text":"åäö"}')
        raw = QueueClient.from_connection_string(azurite.connection_string, clients.queue_name(name))  # no decoding
        [peeked] = raw.peek_messages()
        assert base64.b64decode(peeked.content).decode("utf-8") == '{"requestId":"r1","text":"åäö"}'
        [received] = [m async for m in queue.receive_messages()]
        assert received.content == '{"requestId":"r1","text":"åäö"}'
    finally:
        await clients.close()


async def test_ping_fails_when_storage_is_unreachable() -> None:
    dead = connection_string(free_port(), free_port(), free_port())
    values = app_settings(Azurite(Path("/nonexistent")), UNUSED_EMULATOR, AzureWebJobsStorage=dead)
    clients = StorageClients.from_settings(load_settings(values))
    try:
        with pytest.raises(ServiceRequestError):
            await clients.ping()
    finally:
        await clients.close()
