"""Real parts for every test: Azurite, the Graph + identity emulator and the local Functions host.

Each is started once per test session on free ports (never the `make run` ports), and stopped at the end.
Nothing of ours is mocked: tests talk to these processes over HTTP like the service does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.azurite import Azurite
from devtools.onprem_site import Domain, provisioned_domain
from devtools.samba_dc import MISSING, samba_installed
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


@pytest.fixture(scope="session")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domain]:
    """A real Samba AD DC for the session (one DC per machine: it owns port 636), started on first use. Tests that
    need it fail, never skip, when Samba is missing."""
    if not samba_installed():
        pytest.fail(MISSING)
    with provisioned_domain(tmp_path_factory.mktemp("samba") / "dc") as started:
        yield started



# ---- how `make test` spreads over processes (pytest-xdist) -----------------------------------------------------
# A module runs whole in one process (its own host, emulator and browser start once), and every module that needs
# the Samba DC runs in the same process: one machine has one DC (it owns port 636). pytest-xdist's own
# `--dist loadgroup` cannot group here (it renames node ids, which pytest 9 no longer allows), so the grouping is a
# scheduler of ours: `make test` passes `--dist loadscope` and this hook replaces that scheduler.
# The longest modules start first (longest processing time first), so no process is left with a long one at the end;
# `make test` passes --no-loadscope-reorder so that xdist keeps this order. A hint only: a stale entry costs time.
LONGEST_FIRST = ("tests/onprem/", "tests/integration/test_multi_instance.py", "tests/integration/test_reset_timing.py",
                 "tests/integration/test_compliance.py", "tests/devtools/test_timer_singleton.py",
                 "tests/fuzz/", "tests/integration/test_reset_security.py", "tests/reliability/",
                 "tests/integration/test_enablement.py", "tests/integration/test_registration_api.py",
                 "tests/integration/test_expiry_crash.py", "tests/e2e/test_change_page.py",
                 "tests/e2e/test_onprem_pages.py")
SAMBA_MODULES = ("tests/onprem/", "tests/e2e/test_change_page.py", "tests/e2e/test_onprem_pages.py",
                 "tests/reliability/test_secrets_canary.py")


def _test_module(nodeid: str) -> str:
    return nodeid.split("::")[0]


def _needs_samba(module: str) -> bool:
    return module.startswith(SAMBA_MODULES)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _test_module(nodeid)
            return "samba" if _needs_samba(module) else module

    return ModuleScheduling(config, log)


def _start_rank(item: pytest.Item) -> int:
    module = _test_module(item.nodeid)
    return next((rank for rank, prefix in enumerate(LONGEST_FIRST) if module.startswith(prefix)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (a stable sort: each module's own order stays). A module that starts the Samba DC
    and is not listed in SAMBA_MODULES would start a second DC in another process: refuse to run rather than fail
    at random."""
    items.sort(key=_start_rank)
    unlisted = sorted({_test_module(item.nodeid) for item in items
                       if "domain" in getattr(item, "fixturenames", ()) and not _needs_samba(_test_module(item.nodeid))})
    if unlisted:
        raise pytest.UsageError(f"add these modules to SAMBA_MODULES in tests/conftest.py: {unlisted}")
