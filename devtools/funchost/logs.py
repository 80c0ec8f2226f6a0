"""Log setup: one line per record on stderr (and an optional file), with CR/LF neutralised."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

invocations = logging.getLogger("funchost.invocation")


class OneLineFormatter(logging.Formatter):
    """UTC timestamps, and every record (traceback included) on one line so messages cannot forge log lines."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\r", "\\r").replace("\n", "\\n")


def configure(log_file: Path | None) -> None:
    """Root logger at INFO to stderr (and log_file); quiet the SDKs' per-request logging."""
    formatter = OneLineFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    # The Azure SDK logs every request (URLs and headers) at INFO; aiohttp's access log carries query strings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def invocation(function: str, trigger: str, duration_ms: float, outcome: str) -> None:
    """The one line logged per invocation."""
    invocations.info("%s [%s] %.1f ms %s", function, trigger, duration_ms, outcome)


def report_crash(task: asyncio.Task[object]) -> None:
    """Done-callback for the host's long-running tasks: a crash must be visible, never silent."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("funchost").error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
