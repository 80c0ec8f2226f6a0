"""The agent's configuration: one TOML file (see config.example.toml), secrets read from files it names."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Section):
    # Either a connection string (a SAS limited to the agent's queues and tables, or Azurite) ...
    connection_string_file: Path | None = None
    # ... or the account's service URLs with the host's managed identity / Azure CLI sign-in.
    queue_url: str | None = None
    table_url: str | None = None
    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,19}$")] = "sspr"


class DirectoryConfig(_Section):
    servers: list[tuple[str, int]]  # domain controllers, tried in this order
    ca_file: Path  # the CA that issued the DCs' LDAPS certificates
    base_dn: str
    allowed_ous: Annotated[list[str], Field(min_length=1)]  # only accounts under these are served
    bind_dn: str
    bind_password_file: Path
    connect_timeout_s: int = 5
    receive_timeout_s: int = 15

    @field_validator("servers", mode="before")
    @classmethod
    def _parse_servers(cls, value: object) -> object:
        if isinstance(value, list):
            parsed = []
            for item in value:
                if isinstance(item, str):
                    if "://" in item and not item.startswith("ldaps://"):
                        raise ValueError("domain controllers are reached over LDAPS only (ldaps://host:636)")
                    host, _, port = item.removeprefix("ldaps://").partition(":")
                    parsed.append((host, int(port or 636)))
                else:
                    parsed.append(item)
            return parsed
        return value


class AgentConfig(_Section):
    agent_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    private_key_files: Annotated[list[Path], Field(min_length=1)]  # newest first; older ones during a rotation
    storage: StorageConfig
    directory: DirectoryConfig
    concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    lease_s: Annotated[float, Field(gt=0, le=600)] = 60.0  # a claim's life; another agent takes over after it
    poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # How often the agent reports every account's password expiry (onprem_agent/expiry.py); 0: never (the service
    # then knows no synced user's AD expiry). The first scan runs at start.
    expiry_scan_s: Annotated[float, Field(ge=0, le=86400)] = 3600.0
    log_file: Path | None = None


def load(path: Path) -> AgentConfig:
    with path.open("rb") as f:
        data = tomllib.load(f)
    base = path.parent

    def resolve(p: object) -> object:
        return str(base / str(p)) if isinstance(p, str) and not Path(p).is_absolute() else p

    data["private_key_files"] = [resolve(p) for p in data.get("private_key_files", [])]
    directory = data.get("directory", {})
    for name in ("ca_file", "bind_password_file"):
        if name in directory:
            directory[name] = resolve(directory[name])
    storage = data.get("storage", {})
    if "connection_string_file" in storage:
        storage["connection_string_file"] = resolve(storage["connection_string_file"])
    if "log_file" in data:
        data["log_file"] = resolve(data["log_file"])
    return AgentConfig.model_validate(data)
