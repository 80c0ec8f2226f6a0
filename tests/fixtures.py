"""Fixture factories for the parts a test session, package or module starts for itself alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest

from devtools.stack import GraphEmulator, emulator_running

Scope = Literal["session", "package", "module"]


def own_emulator(scope: Scope, name: str, *extra_args: str) -> Any:
    """A fixture `name`: a Graph + identity emulator of the scope's own, for tests that change the tenant."""

    @pytest.fixture(scope=scope, name=name)
    def emulator() -> Iterator[GraphEmulator]:
        with emulator_running(*extra_args) as started:
            yield started

    return emulator
