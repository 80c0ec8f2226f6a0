"""`make run`: Azurite, the Graph + identity emulator and the local Functions host, up together until Ctrl-C.

Ports are the ones local.settings.json.sample expects (Azurite 10000-10002, emulator 7072, host 7071). A
second `make run` finds the first one's lock file and says so instead of failing on a busy port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT, ManagedProcess, port_open

# The defaults match local.settings.json.sample; the SSPR_RUN_* variables move everything (the tests use them).
RUN_DIR = Path(os.environ.get("SSPR_RUN_DIR", REPO_ROOT / ".run"))
DATA_DIR = Path(os.environ.get("SSPR_RUN_DATA_DIR", REPO_ROOT / ".data"))
LOCK = RUN_DIR / "make-run.json"
SETTINGS = REPO_ROOT / "local.settings.json"
SAMPLE = REPO_ROOT / "local.settings.json.sample"
HOST_PORT = int(os.environ.get("SSPR_RUN_HOST_PORT", "7071"))
EMULATOR_PORT = int(os.environ.get("SSPR_RUN_EMULATOR_PORT", "7072"))
AZURITE_PORTS = tuple(int(p) for p in os.environ.get("SSPR_RUN_AZURITE_PORTS", "10000,10001,10002").split(","))
# `make run ONPREM=1`: also a Samba AD DC with the demo's synced users and the on-premises agent (devtools/onprem_run.py).
ONPREM = os.environ.get("SSPR_RUN_ONPREM", "").lower() in ("1", "true", "yes")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_second_run() -> None:
    if LOCK.exists():
        info = json.loads(LOCK.read_text())
        if _alive(int(info["pid"])):
            pid = info["pid"]
            print(
                f"make run is already running (pid {pid}, since {info['started']}): its function app is at"
                f" {info.get('url', 'http://localhost:7071/api/health')}.\n"
                f"Stop it with Ctrl-C in its terminal (or `kill {pid}`) before starting another.",
                file=sys.stderr,
            )
            sys.exit(1)
        LOCK.unlink()
    busy = [p for p in (*AZURITE_PORTS, EMULATOR_PORT, HOST_PORT) if port_open(p)]
    if busy:
        print(
            f"Port(s) {', '.join(map(str, busy))} are already in use by another program, so make run cannot start.\n"
            "Stop that program (e.g. another Azurite or `func start`), or choose other ports with "
            "SSPR_RUN_HOST_PORT / SSPR_RUN_EMULATOR_PORT.",
            file=sys.stderr,
        )
        sys.exit(1)


def _ensure_local_settings() -> dict[str, str]:
    """local.settings.json, created from the sample, or given the sample's settings it does not have yet (an
    upgrade added them); values the user set are never changed."""
    sample = json.loads(SAMPLE.read_text())
    if not SETTINGS.exists():
        shutil.copyfile(SAMPLE, SETTINGS)
        print("Created local.settings.json from local.settings.json.sample (dev values for the demo tenant).")
        return dict(sample["Values"])
    current = json.loads(SETTINGS.read_text())
    values: dict[str, str] = current.setdefault("Values", {})
    added = [name for name in sample["Values"] if name not in values]
    if added:
        for name in added:
            values[name] = sample["Values"][name]
        SETTINGS.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")
        print(f"Added new settings to local.settings.json from the sample: {', '.join(added)}.")
    return values


def _endpoint_overrides(azurite: Azurite, values: dict[str, str]) -> dict[str, str]:
    """App settings that follow the ports chosen here, when they differ from local.settings.json's defaults."""
    overrides: dict[str, str] = {}
    if AZURITE_PORTS != (10000, 10001, 10002) and values.get("AzureWebJobsStorage") == "UseDevelopmentStorage=true":
        overrides["AzureWebJobsStorage"] = azurite.connection_string
    emulator = f"http://127.0.0.1:{EMULATOR_PORT}"
    if EMULATOR_PORT != 7072 and values.get("SSPR_AUTHORITY_HOST") == "http://127.0.0.1:7072":
        overrides["SSPR_AUTHORITY_HOST"] = emulator
        overrides["SSPR_GRAPH_BASE_URL"] = f"{emulator}/v1.0"
        if values.get("SSPR_SMS_ENDPOINT") == "http://127.0.0.1:7072":
            overrides["SSPR_SMS_ENDPOINT"] = emulator
    if HOST_PORT != 7071 and values.get("SSPR_PUBLIC_BASE_URL") == "http://localhost:7071":
        overrides["SSPR_PUBLIC_BASE_URL"] = f"http://localhost:{HOST_PORT}"
        overrides["SSPR_CORS_ALLOWED_ORIGINS"] = f"http://localhost:{HOST_PORT}"
    return {k: v for k, v in overrides.items() if k not in os.environ}


def _wait_healthy(url: str, timeout: float) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, time.perf_counter() - started
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            pass
        time.sleep(0.2)
    return status, 0.0


def main() -> int:
    _refuse_second_run()
    values = _ensure_local_settings()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    health_url = f"http://localhost:{HOST_PORT}/api/health"
    LOCK.write_text(json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "url": health_url}))
    started = time.monotonic()
    processes: list[ManagedProcess | Azurite] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        print("Starting Azurite (tables, queues, blobs) ...", flush=True)
        azurite = Azurite(DATA_DIR / "azurite", *AZURITE_PORTS)
        processes.append(azurite.start())

        onprem = None
        if ONPREM:
            from devtools import onprem_run

            print("Starting the Samba AD domain controller (the first start provisions it, ~30 s) ...", flush=True)
            onprem = onprem_run.start_domain(DATA_DIR, azurite.connection_string, values.get("SSPR_QUEUE_PREFIX", "sspr"))
            processes.append(onprem.domain.dc)

        print("Starting the Graph + identity emulator ...", flush=True)
        emulator = ManagedProcess(
            "graph-emulator",
            [sys.executable, "-m", "devtools.graph_emulator", "--port", str(EMULATOR_PORT)],
            echo=True,
        )
        processes.append(emulator.start(ready_prefix="graph-emulator ready", timeout=60))
        if onprem is not None:
            onprem_run.join_demo_users(onprem, f"http://127.0.0.1:{EMULATOR_PORT}")

        print("Starting the local Functions host with function_app.py ...", flush=True)
        host = ManagedProcess(
            "funchost",
            [sys.executable, "-m", "devtools.funchost", "--app-dir", str(REPO_ROOT), "--port", str(HOST_PORT),
             "--settings", str(SETTINGS)],
            env={**os.environ, **_endpoint_overrides(azurite, values), "PYTHONUNBUFFERED": "1",
                 **({"SSPR_ONPREM_AGENT_PUBLIC_KEY": onprem.public_key} if onprem else {})},
            echo=True,
        )
        processes.append(host.start(ready_prefix="funchost ready", timeout=90))

        status, first_latency = _wait_healthy(health_url, 60)
        onprem_lines = ""
        if onprem is not None:
            onprem_run.turn_on_writeback(f"http://localhost:{HOST_PORT}", f"http://127.0.0.1:{EMULATOR_PORT}",
                                         values.get("SSPR_TENANT_ID", ""))
            processes.append(onprem_run.start_agent(onprem))
            onprem_lines = (
                f"  Samba AD DC      {onprem.domain.dc.url}   (CA {onprem.domain.dc.ca_file}; data in {DATA_DIR / 'samba'})\n"
                f"  On-prem agent    agent-demo (python -m onprem_agent run; config and key in {DATA_DIR / 'onprem'})\n"
                "  Synced users     synced.user@contoso.example, synced.p1@contoso.example reset in AD (policy: writeback on)\n"
            )
        elapsed = time.monotonic() - started
        print(
            f"""
SSPR is running ({elapsed:.1f} s to start; health answered {status} in {first_latency * 1000:.0f} ms).

  Function app     http://localhost:{HOST_PORT}/api/health
  Graph emulator   http://127.0.0.1:{EMULATOR_PORT}/v1.0   (tenant {values.get('SSPR_TENANT_ID')})
  Pages            http://localhost:{HOST_PORT}/api/pages/reset   .../api/pages/register   .../api/pages/admin
  Outbox page      http://localhost:{HOST_PORT}/api/pages/dev/outbox   (mails and SMS, newest first)
  Mail outbox      http://127.0.0.1:{EMULATOR_PORT}/_emulator/outbox
  Token endpoint   http://127.0.0.1:{EMULATOR_PORT}/{values.get('SSPR_TENANT_ID')}/oauth2/v2.0/token
  Azurite          blob :{AZURITE_PORTS[0]}  queue :{AZURITE_PORTS[1]}  table :{AZURITE_PORTS[2]}  (data in {DATA_DIR / 'azurite'})
{onprem_lines}
Demo users and app ids are in the README. Press Ctrl-C to stop everything.
""",
            flush=True,
        )
        while not stopping:
            for p in processes:
                if not p.running:
                    print(f"{getattr(p, 'name', type(p).__name__)} stopped unexpectedly; shutting down.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    except (TimeoutError, RuntimeError, OSError) as exc:
        print(f"make run could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        print("Stopping ...", flush=True)
        for p in reversed(processes):
            p.stop()
        LOCK.unlink(missing_ok=True)
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
