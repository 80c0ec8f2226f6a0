"""The emulator's tenant seen from outside, for tests and benchmarks: its users as Graph lists them to the service
app (the oracle that enablement and compliance rows are checked against) and the faults it injects."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.stack import GraphEmulator
from devtools.tokens import bearer, graph_token


def directory_users(emulator: GraphEmulator) -> list[dict[str, Any]]:
    """Every directory user (id, accountEnabled, userType), page by page, in Graph's order."""
    users: list[dict[str, Any]] = []
    url: str | None = f"{emulator.graph_url}/users?$select=id,accountEnabled,userType&$top=999"
    with httpx.Client(headers=bearer(graph_token(emulator)), timeout=60) as http:
        while url:
            page = http.get(url).json()
            users.extend(page["value"])
            url = page.get("@odata.nextLink")
    return users


def enabled_member_ids(emulator: GraphEmulator) -> list[str]:
    """The ids of the enabled members (no guests), in Graph's order: whom an enablement of All enables."""
    return [u["id"] for u in directory_users(emulator) if u["accountEnabled"] and u["userType"] != "Guest"]


def set_faults(emulator: GraphEmulator, *rules: dict[str, Any], seed: int = 7) -> None:
    """Inject these fault rules (each its own rate, status, latency, path); none clears them."""
    if rules:
        httpx.put(f"{emulator.base_url}/_emulator/faults", json={"seed": seed, "rules": list(rules)},
                  timeout=10).raise_for_status()
    else:
        httpx.delete(f"{emulator.base_url}/_emulator/faults", timeout=10).raise_for_status()
