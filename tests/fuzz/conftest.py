"""The fuzzed service: its own local host (own table and queue prefix) and its own Graph emulator.

The fuzzer changes policy, security info and the emulator's domains and fires enablement and compliance runs, so
nothing it touches is shared with other tests: only the session's Azurite, under a prefix of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.openapi import from_dict

from devtools.azurite import Azurite
from devtools.stack import FunctionHost, GraphEmulator, private_stack
from tests.fixtures import own_emulator

fuzz_emulator = own_emulator("session", "fuzz_emulator")


@pytest.fixture(scope="session")
def fuzz_host(azurite: Azurite, fuzz_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    prefix = "fz" + uuid.uuid4().hex[:8]
    with private_stack(prefix, azurite=azurite, emulator=fuzz_emulator, FUNCHOST_DISABLE_TIMERS="1") as stack:
        yield stack.host


@pytest.fixture(scope="session")
def api_document(fuzz_host: FunctionHost) -> dict[str, Any]:
    """The document the running host serves, exactly as a client would fetch it."""
    response = httpx.get(f"{fuzz_host.base_url}/api/openapi.json", timeout=30)
    response.raise_for_status()
    return dict(response.json())


@pytest.fixture(scope="session")
def api_schema(api_document: dict[str, Any]) -> schemathesis.BaseSchema:
    # Loaded from the fetched dict, not from its URL: schemathesis leaves out the operation that serves the
    # schema it was loaded from, and GET /api/openapi.json is an operation too.
    return from_dict(api_document)
