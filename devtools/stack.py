"""Start the real parts on free ports: Azurite, the Graph + identity emulator and the local Functions host.

Used by the tests (their conftests and fixtures) and the benchmarks, so both run what `make run` runs, never on
its ports: `private_stack` starts what a test or benchmark needs and stops it again.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT, ManagedProcess, free_port

DEMO_TENANT_ID = "c0ffee00-5e1f-4ea5-b0a7-000000000001"
SERVICE_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a1"
SERVICE_APP_SECRET = "dev-sspr-service-secret"
PAGES_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a2"
# Dev-only keys (also in local.settings.json.sample); Azure reads real ones from Key Vault.
DEV_CODE_HMAC_KEY = "ZGV2LW9ubHkgY29kZSBobWFjIGtleSwgbm90IGEgc2VjcmV0IQ=="
DEV_TOTP_ENCRYPTION_KEY = "ZGV2LW9ubHkgdG90cCBrZXk6IDMyKyBieXRlcywgcHVibGlj"
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"


@dataclass
class GraphEmulator:
    process: ManagedProcess
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def tenant_id(self) -> str:
        return DEMO_TENANT_ID


def start_graph_emulator(*extra_args: str) -> GraphEmulator:
    port = free_port()
    process = ManagedProcess(
        "graph-emulator", [sys.executable, "-m", "devtools.graph_emulator", "--port", str(port), *extra_args]
    ).start(ready_prefix="graph-emulator ready", timeout=60)
    return GraphEmulator(process, port)


def app_settings(azurite: Azurite, emulator: GraphEmulator, **overrides: str) -> dict[str, str]:
    """The product's app settings for a test run: dev environment, Azurite and the emulator on test ports."""
    settings = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "SSPR_ENVIRONMENT": "dev",
        "SSPR_TABLE_PREFIX": "sspr",
        "SSPR_TENANT_ID": DEMO_TENANT_ID,
        "SSPR_API_CLIENT_ID": SERVICE_APP_ID,
        "SSPR_PAGES_CLIENT_ID": PAGES_APP_ID,
        "SSPR_AUTHORITY_HOST": emulator.base_url,
        "SSPR_GRAPH_BASE_URL": emulator.graph_url,
        "SSPR_GRAPH_CREDENTIAL": "client_secret",
        "SSPR_GRAPH_CLIENT_SECRET": SERVICE_APP_SECRET,
        "SSPR_MAINTENANCE_SCHEDULE": "0 0 3 * * *",
        "SSPR_SCOPE_SYNC_SCHEDULE": "0 */15 * * * *",
        "SSPR_CODE_HMAC_KEY": DEV_CODE_HMAC_KEY,
        "SSPR_TOTP_ENCRYPTION_KEY": DEV_TOTP_ENCRYPTION_KEY,
        "SSPR_MAIL_SENDER": "noreply@contoso.example",
        "SSPR_SMS_PROVIDER": "emulator",
        "SSPR_SMS_ENDPOINT": emulator.base_url,
        "SSPR_PUBLIC_BASE_URL": "http://localhost:7071",
        "SSPR_CORS_ALLOWED_ORIGINS": "http://localhost:7071",
        "SSPR_COMPLIANCE_SCHEDULE": "0 0 2 * * *",
        "SSPR_EXPIRY_SCHEDULE": "0 0 6 * * *",
        "SSPR_HELPDESK_DIGEST_SCHEDULE": "0 30 6 * * *",
        # Tests play the trusted proxy in front of the host: the X-Forwarded-For entry they send is the client.
        "SSPR_TRUSTED_PROXY_HOPS": "1",
        # Test hosts answer reset steps as soon as they are done; tests/integration/test_reset_timing.py runs its
        # own host with the deadline that makes every kind of username take the same time (security.md C6).
        "SSPR_RESET_STEP_DEADLINE_MS": "0",
        "SSPR_CHANGE_DEADLINE_MS": "0",
        "FUNCHOST_FUNCTION_KEY": FUNCTION_KEY,
        "FUNCHOST_MASTER_KEY": MASTER_KEY,
    }
    settings.update(overrides)
    # A host that keeps its tables apart keeps its queues apart too, so it never takes another host's messages.
    settings.setdefault("SSPR_QUEUE_PREFIX", settings["SSPR_TABLE_PREFIX"].lower())
    return settings


@dataclass
class FunctionHost:
    process: ManagedProcess
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int | None:
        return self.process.stop()


def start_function_host(app_dir: Path, settings: dict[str, str], *extra_args: str,
                        timeout: float = 60, port: int | None = None) -> FunctionHost:
    """Run `python -m devtools.funchost` for `app_dir` with exactly `settings` as its app settings (on `port`, or a
    free one)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSPR_", "AzureWebJobs", "FUNCHOST_"))}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    process = ManagedProcess(
        "funchost",
        [sys.executable, "-m", "devtools.funchost", "--app-dir", str(app_dir), "--port", str(port),
         "--settings", os.devnull, *extra_args],
        env=env,
    ).start(ready_prefix="funchost ready", timeout=timeout)
    return FunctionHost(process, port)


# ---- the parts as context managers: started on entry, stopped on exit, whatever happened in between ------------

@contextmanager
def azurite_running(prefix: str = "sspr-azurite-") -> Iterator[Azurite]:
    """A fresh Azurite with its data in a temporary folder that goes with it."""
    with tempfile.TemporaryDirectory(prefix=prefix) as location:
        azurite = Azurite(Path(location)).start()
        try:
            yield azurite
        finally:
            azurite.stop()


@contextmanager
def emulator_running(*extra_args: str, users: int | None = None) -> Iterator[GraphEmulator]:
    """A Graph + identity emulator of its own; `users` generated users on top of the demo tenant's."""
    emulator = start_graph_emulator(*extra_args, *(("--users", str(users)) if users is not None else ()))
    try:
        yield emulator
    finally:
        emulator.process.stop()


@contextmanager
def host_running(settings: dict[str, str], *extra_args: str, app_dir: Path = REPO_ROOT,
                 timeout: float = 60) -> Iterator[FunctionHost]:
    """The local host serving `app_dir` (the product's function_app unless told) with exactly `settings`."""
    host = start_function_host(app_dir, settings, *extra_args, timeout=timeout)
    try:
        yield host
    finally:
        host.stop()


@contextmanager
def api_running(settings: dict[str, str], timeout: float = 30) -> Iterator[httpx.Client]:
    """The product's host on `settings` and a client of its /api, both closed on exit."""
    with host_running(settings) as host, httpx.Client(base_url=f"{host.base_url}/api", timeout=timeout) as client:
        yield client


@dataclass
class Stack:
    """Azurite, an emulator, the app settings that join them and the host started on them (one at a time), or
    several hosts at once on the very same settings (`start_hosts`), as Azure runs one app on N instances."""

    azurite: Azurite
    emulator: GraphEmulator
    settings: dict[str, str]
    app_dir: Path = REPO_ROOT
    _host: FunctionHost | None = None
    _hosts: list[FunctionHost] = field(default_factory=list)

    @property
    def host(self) -> FunctionHost:
        if self._host is None:
            raise RuntimeError("no host was started on this stack")
        return self._host

    def start_host(self, *extra_args: str, timeout: float = 60, port: int | None = None) -> FunctionHost:
        """Start a host on the stack's settings; one still running (or killed) is stopped first."""
        self.stop_host()
        self._host = start_function_host(self.app_dir, self.settings, *extra_args, timeout=timeout, port=port)
        return self._host

    def stop_host(self) -> None:
        # The stopped host stays reachable, so its log can still be read.
        if self._host is not None:
            self._host.stop()

    def start_hosts(self, count: int, *extra_args: str, timeout: float = 60) -> list[FunctionHost]:
        """`count` hosts on the stack's settings, each on a port of its own, sharing Azurite (queues, tables, the
        timers' locks) and the emulator like the instances of one function app; those of an earlier call are
        stopped first, and all are stopped with the stack. `host` stays the single host of `start_host`."""
        self.stop_hosts()
        for _ in range(count):
            self._hosts.append(start_function_host(self.app_dir, self.settings, *extra_args, timeout=timeout))
        return list(self._hosts)

    def stop_hosts(self) -> None:
        for host in self._hosts:
            host.stop()
        self._hosts.clear()


@contextmanager
def private_stack(prefix: str = "sspr", *, users: int | None = None, azurite: Azurite | None = None,
                  emulator: GraphEmulator | None = None, start_host: bool = True,
                  **overrides: str) -> Iterator[Stack]:
    """A host on tables and queues named `prefix`, with the app settings `overrides`; the Azurite and emulator
    given are shared, the ones not given are started for this stack alone (the emulator with `users` generated
    users). With `start_host=False` the caller starts the host (`Stack.start_host`), e.g. after seeding.
    Everything this started is stopped on exit."""
    with ExitStack() as parts:
        if azurite is None:
            azurite = parts.enter_context(azurite_running(f"sspr-{prefix}-"))
        if emulator is None:
            emulator = parts.enter_context(emulator_running(users=users))
        elif users is not None:
            raise ValueError("generated users need an emulator of the stack's own")
        stack = Stack(azurite, emulator, app_settings(azurite, emulator, SSPR_TABLE_PREFIX=prefix, **overrides))
        parts.callback(stack.stop_host)
        parts.callback(stack.stop_hosts)
        if start_host:
            stack.start_host()
        yield stack
