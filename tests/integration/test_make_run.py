"""`make run`'s orchestrator: everything up with the URLs printed, a second run refused, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import sys
import tempfile

import httpx

from devtools.processes import ManagedProcess, free_port, port_open


def test_make_run_starts_everything_refuses_a_second_run_and_stops_on_ctrl_c() -> None:
    with tempfile.TemporaryDirectory(prefix="sspr-make-run-") as scratch:
        ports = {"host": free_port(), "emulator": free_port(), "azurite": [free_port(), free_port(), free_port()]}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SSPR_", "AzureWebJobs", "FUNCHOST_"))},
            "SSPR_RUN_DIR": f"{scratch}/run",
            "SSPR_RUN_DATA_DIR": f"{scratch}/data",
            "SSPR_RUN_HOST_PORT": str(ports["host"]),
            "SSPR_RUN_EMULATOR_PORT": str(ports["emulator"]),
            "SSPR_RUN_AZURITE_PORTS": ",".join(map(str, ports["azurite"])),
        }
        first = ManagedProcess("make-run", [sys.executable, "-m", "devtools.run"], env=env)
        first.start(ready_prefix="SSPR is running", timeout=120)
        try:
            assert "(0.0 s" not in first.ready_line
            output = first.output()
            assert f"http://localhost:{ports['host']}/api/health" in output
            assert f"http://127.0.0.1:{ports['emulator']}/_emulator/outbox" in output
            health = httpx.get(f"http://localhost:{ports['host']}/api/health", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok"

            second = ManagedProcess("make-run-2", [sys.executable, "-m", "devtools.run"], env=env)
            second.start()
            assert second.proc is not None and second.proc.wait(30) == 1
            assert "make run is already running" in second.output()
            assert first.running
        finally:
            code = first.stop(signal.SIGINT, timeout=30)
        assert code == 0, first.output(30)
        assert "Stopped." in first.output()
        assert not any(port_open(p) for p in [ports["host"], ports["emulator"], *ports["azurite"]])
