"""Reads local.settings.json into the environment and models the parts of host.json the local host honours."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


class SettingsError(Exception):
    """A settings or host.json value the host cannot use."""


def parse_timespan(value: Any, *, what: str) -> float:
    """Seconds from a .NET TimeSpan string ("[d.]hh:mm:ss[.fff]") or a number of milliseconds."""
    if isinstance(value, bool):
        raise SettingsError(f"{what}: expected a TimeSpan or milliseconds, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value) / 1000.0
    if isinstance(value, str):
        match = _TIMESPAN.match(value.strip())
        if match:
            days, hours, minutes, seconds, fraction = match.groups()
            total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
            return total + (float("0." + fraction) if fraction else 0.0)
    raise SettingsError(f"{what}: expected a TimeSpan like '00:00:02' or milliseconds, got {value!r}")


def is_timespan(value: str) -> bool:
    """True when the text is a TimeSpan ("hh:mm:ss") rather than an NCRONTAB expression."""
    return bool(_TIMESPAN.match(value.strip()))


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the real host's defaults."""

    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> QueueOptions:
        lowered = {k.lower(): v for k, v in raw.items()}
        batch_size = int(lowered.get("batchsize", 16))
        if not 1 <= batch_size <= 32:
            raise SettingsError(f"host.json extensions.queues.batchSize must be 1..32, got {batch_size}")
        threshold = int(lowered.get("newbatchthreshold", batch_size // 2))
        encoding = str(lowered.get("messageencoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise SettingsError(f"host.json extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
        max_dequeue = int(lowered.get("maxdequeuecount", 5))
        if max_dequeue < 1:
            raise SettingsError("host.json extensions.queues.maxDequeueCount must be at least 1")
        return cls(
            max_polling_interval=parse_timespan(
                lowered.get("maxpollinginterval", 60000), what="extensions.queues.maxPollingInterval"),
            visibility_timeout=parse_timespan(
                lowered.get("visibilitytimeout", 0), what="extensions.queues.visibilityTimeout"),
            batch_size=batch_size,
            new_batch_threshold=max(0, threshold),
            max_dequeue_count=max_dequeue,
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    """The host.json settings the local host uses."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)

    @classmethod
    def load(cls, path: Path) -> HostConfig:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SettingsError(f"{path}: not valid JSON: {exc}") from exc
        extensions = raw.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = str(http.get("routePrefix", "api")).strip("/")
        return cls(route_prefix=prefix, queues=QueueOptions.from_json(extensions.get("queues") or {}))


def apply_local_settings(path: Path, environ: os._Environ[str] | dict[str, str] = os.environ) -> list[str]:
    """Copy `Values` from local.settings.json into the environment; variables already set win.

    Returns the names that were applied (never their values).
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.strip():  # e.g. --settings /dev/null: the environment alone holds the settings
        return []
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid JSON: {exc}") from exc
    if raw.get("IsEncrypted"):
        raise SettingsError(f"{path}: encrypted settings are not supported; set IsEncrypted to false")
    applied = []
    for name, value in (raw.get("Values") or {}).items():
        if name in environ:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = "" if value is None else str(value)
        environ[name] = text
        applied.append(name)
    return applied


def resolve_app_setting_expression(value: str) -> str:
    """Replace `%Name%` binding expressions with app settings, as the real host does."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SettingsError(f"binding expression %{name}% names an app setting that is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", substitute, value)


def flag(name: str) -> bool:
    """True when an environment flag is set to 1/true/yes."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
