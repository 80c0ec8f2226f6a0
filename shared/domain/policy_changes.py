"""What an admin changed in the policy: the settings that differ, by dotted camelCase path (for the audit)."""

from __future__ import annotations

from typing import Any

from shared.domain.policy import Policy


def changed_settings(old: Policy, new: Policy) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings that differ, as ({path: old value}, {path: new value}) with dotted camelCase paths."""
    before, after = _flatten(old.as_document()), _flatten(new.as_document())
    paths = [p for p in dict.fromkeys([*before, *after]) if before.get(p) != after.get(p)]
    return {p: before.get(p) for p in paths}, {p: after.get(p) for p in paths}


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value  # lists (custom questions) compare and show whole
    return flat

