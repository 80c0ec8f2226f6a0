"""Real parts for every test: Azurite, the Graph + identity emulator and the local Functions host.

Each is started once per test session on free ports (never the `make run` ports), and stopped at the end.
Nothing of ours is mocked: tests talk to these processes over HTTP like the service does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.azurite import Azurite
from devtools.stack import FunctionHost, GraphEmulator, app_settings, azurite_running, host_running
from tests.fixtures import own_emulator


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with azurite_running() as server:
        yield server


graph_emulator = own_emulator("session", "graph_emulator")


@pytest.fixture(scope="session")
def service_host(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    """The product's own function_app, served by the local host against Azurite and the emulator."""
    with host_running(app_settings(azurite, graph_emulator)) as host:
        yield host
