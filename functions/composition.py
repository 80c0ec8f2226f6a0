"""The composition root: settings validated at import (fail closed), adapters built once per process.

Blueprints take their services from here. Adapters are created lazily on first use, inside the event loop
that runs the async functions, because async SDK clients bind to the loop that first uses them.
"""

from __future__ import annotations

import logging

from shared.adapters.credentials import graph_credential
from shared.adapters.graph import GraphGateway
from shared.adapters.storage import StorageClients
from shared.config import Settings, load_settings

log = logging.getLogger("sspr")

settings: Settings = load_settings()

_storage: StorageClients | None = None
_graph: GraphGateway | None = None


def storage() -> StorageClients:
    global _storage
    if _storage is None:
        _storage = StorageClients.from_settings(settings)
    return _storage


def graph() -> GraphGateway:
    global _graph
    if _graph is None:
        _graph = GraphGateway.create(settings, graph_credential(settings))
    return _graph
