"""The per-user report of a compliance run: its filters, its paging tokens, and a stored row as the report shows it.

Pure rules, no I/O. The report pages like the JSON API everywhere (the next page's URL in `Link`, its token in
`X-Continuation`); a token is the table's own continuation bound to its run, so a token of another run is a clear
400 instead of a confusing page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.compliance import NotCapableReason, Status
from shared.domain.policy import Method

# Rows per CSV response of the per-user report: an export is paged like the JSON (the next page's URL in
# `Link: <...>; rel="next"`, its token in `X-Continuation`), so no process or response holds a 100,000-user run.
CSV_PAGE_ROWS = 10_000


def user_document(e: Mapping[str, Any]) -> dict[str, Any]:
    """A stored per-user row as the report shows it (JSON-ready)."""

    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else None

    has_entra = "entraCapable" in e
    return {
        "userId": e["RowKey"], "displayName": str(e.get("displayName") or ""),
        "userPrincipalName": str(e.get("userPrincipalName") or ""), "status": e["status"], "enabled": bool(e["enabled"]),
        "registered": bool(e["registered"]), "capable": bool(e["capable"]),
        "reasons": [r for r in str(e.get("reasons") or "").split(",") if r],
        "reconfirmation": e["reconfirmation"], "reconfirmDueAt": iso(e.get("reconfirmDueAt")),
        "methods": [m for m in str(e.get("methods") or "").split(",") if m], "methodsRequired": int(e["required"]),
        "lastConfirmedAt": iso(e.get("lastConfirmedAt")), "isAdmin": bool(e.get("isAdmin")),
        "entraRegistered": bool(e["entraRegistered"]) if has_entra else None,
        "entraCapable": bool(e["entraCapable"]) if has_entra else None,
        "entraMethods": [m for m in str(e.get("entraMethods") or "").split(",") if m] if has_entra else None,
        "entraAgrees": bool(e["entraAgrees"]) if has_entra else None,
    }


@dataclass(frozen=True)
class UserFilter:
    """Validated filters of the per-user report (values from fixed enums only)."""

    status: Status | None = None
    method: Method | None = None
    reason: NotCapableReason | None = None


def encode_continuation(run_id: str, token: Mapping[str, Any] | None) -> str | None:
    """The table's continuation (opaque next keys) bound to its run, for the client to send back."""
    if not token:
        return None
    bound = {"run": run_id, "pk": token.get("PartitionKey"), "rk": token.get("RowKey")}
    return base64.urlsafe_b64encode(json.dumps(bound, separators=(",", ":")).encode()).decode()


def decode_continuation(run_id: str, text: str) -> dict[str, str] | None:
    """The table continuation a client sent back, if it is one of this run's (else None: refused by the caller).

    The query stays restricted to the run's partitions whatever the token says; the binding only turns a token
    of another run into a clear 400 instead of a confusing page."""
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(token, dict) or set(token) != {"run", "pk", "rk"} or token["run"] != run_id:
        return None
    pk, rk = token["pk"], token["rk"]
    if not isinstance(pk, str) or not isinstance(rk, str) or len(pk) > 200 or len(rk) > 200:
        return None
    return {"PartitionKey": pk, "RowKey": rk}
