"""Real parts for every test: Azurite, the Graph + identity emulator and the local Functions host.

Each is started once per test session on free ports (never the `make run` ports), and stopped at the end.
Nothing of ours is mocked: tests talk to these processes over HTTP like the service does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT
from devtools.stack import (  # noqa: F401  (re-exported for tests)
    DEMO_TENANT_ID,
    FUNCTION_KEY,
    MASTER_KEY,
    SERVICE_APP_ID,
    SERVICE_APP_SECRET,
    FunctionHost,
    GraphEmulator,
    app_settings,
    start_function_host,
    start_graph_emulator,
)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory(prefix="sspr-azurite-") as location:
        server = Azurite(Path(location)).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def graph_emulator() -> Iterator[GraphEmulator]:
    emulator = start_graph_emulator()
    try:
        yield emulator
    finally:
        emulator.process.stop()


@pytest.fixture(scope="session")
def service_host(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    """The product's own function_app, served by the local host against Azurite and the emulator."""
    host = start_function_host(REPO_ROOT, app_settings(azurite, graph_emulator))
    try:
        yield host
    finally:
        host.stop()
