"""Azurite (the Azure Storage emulator) for the local run and the tests: install, start on chosen ports, stop.

Azurite is pinned to 3.35.0 in devtools/package.json because newer releases need Node 22; it runs with
--skipApiVersionCheck (the Python SDKs may speak a newer API version) and --disableTelemetry.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import REPO_ROOT, ManagedProcess, OneProcessService, free_port, wait_for_ports
from shared.endpoints import AZURITE_ACCOUNT, AZURITE_KEY

DEVTOOLS = REPO_ROOT / "devtools"
AZURITE_BIN = DEVTOOLS / "node_modules" / ".bin" / "azurite"


def ensure_installed() -> Path:
    """Install the pinned Azurite into devtools/node_modules if it is not there yet."""
    if not AZURITE_BIN.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: install Node.js 20 and npm, then try again")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DEVTOOLS, check=True
        )
    return AZURITE_BIN


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{AZURITE_ACCOUNT};"
    )


@dataclass
class Azurite(OneProcessService):
    """One Azurite process (blob, queue, table) with its data under `location`."""

    location: Path
    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    echo: bool = False
    _process: ManagedProcess | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    @property
    def ports(self) -> list[int]:
        return [self.blob_port, self.queue_port, self.table_port]

    def start(self, timeout: float = 60.0) -> Azurite:
        binary = ensure_installed()
        self.location.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(
            "azurite",
            [
                str(binary), "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
                "--location", str(self.location),
                "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
            ],
            echo=self.echo,
        )
        self._process.start()
        assert self._process.proc is not None
        wait_for_ports(self.ports, timeout, self._process.proc)
        return self

