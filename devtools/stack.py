"""Start the real parts on free ports: the Graph + identity emulator and the local Functions host.

Used by the tests (tests/conftest.py) and the benchmarks, so both run what `make run` runs, never on its ports.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.azurite import Azurite
from devtools.processes import ManagedProcess, free_port

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
        # Tests play the trusted proxy in front of the host: the X-Forwarded-For entry they send is the client.
        "SSPR_TRUSTED_PROXY_HOPS": "1",
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
                        timeout: float = 60) -> FunctionHost:
    """Run `python -m devtools.funchost` for `app_dir` with exactly `settings` as its app settings."""
    port = free_port()
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
