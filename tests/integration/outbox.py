"""What reached the emulator's outbox: the messages to a contact and the code in them, waited for (the
notifications worker is another process)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from devtools.stack import GraphEmulator

WAIT_SECONDS = 25


def outbox(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def code_sent_to(emulator: GraphEmulator, contact: str, count: int = 1) -> str:
    """The newest code sent to `contact`, once `count` messages carrying a code have arrived there."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        messages = [m for m in outbox(emulator) if contact in m.get("to", [])
                    and re.search(r"(?<!\d)\d{8}(?!\d)", m["body"])]
        if len(messages) >= count:
            return re.findall(r"(?<!\d)(\d{8})(?!\d)", messages[0]["body"])[0]
        time.sleep(0.2)  # waiting for the notifications worker (another process), not for time to pass
    raise AssertionError(f"no code #{count} reached {contact}")


def wait_for(what: str, check: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    """What `check` returns once it is truthy; `what` names it when it never is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)  # waiting for the notifications worker (another process), not for time to pass
    raise AssertionError(f"{what} did not happen within {seconds} s")


def messages_to(emulator: GraphEmulator, contact: str) -> list[dict[str, Any]]:
    return [m for m in outbox(emulator) if contact in m.get("to", [])]
