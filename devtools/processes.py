"""Small process helpers shared by `make run`, the tests and the benchmarks: free ports, readiness, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_ports(ports: list[int], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(port_open(p) for p in ports):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {ports}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {ports} within {timeout:.0f} s")


class ManagedProcess:
    """A child process whose output is kept (last lines) and which signals readiness by a line prefix."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO_ROOT,
                 echo: bool = False) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.cwd = cwd
        self.echo = echo
        self.lines: deque[str] = deque(maxlen=5000)
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._ready_prefix = ""
        self.ready_line = ""

    def start(self, ready_prefix: str = "", timeout: float = 60.0) -> ManagedProcess:
        self._ready.clear()
        self._ready_prefix = ready_prefix
        self.proc = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True, name=f"{self.name}-output").start()
        if ready_prefix and not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.output(40)}")
        if ready_prefix and not self.ready_line:
            raise RuntimeError(f"{self.name} exited with code {self.proc.poll()}:\n{self.output(40)}")
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.echo:
                print(f"[{self.name}] {line}", file=sys.stderr, flush=True)
            if self._ready_prefix and not self.ready_line and line.startswith(self._ready_prefix):
                self.ready_line = line
                self._ready.set()
        self._ready.set()  # exited: wake a waiter so it can report the exit

    def output(self, last: int | None = None) -> str:
        lines = list(self.lines)
        return "\n".join(lines[-last:] if last else lines)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.ready_line = ""
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class OneProcessService:
    """What a dev service run as one `ManagedProcess` (Azurite, a Samba DC) says of itself, and how it stops."""

    _process: ManagedProcess | None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def output(self) -> str:
        return self._process.output() if self._process else ""
