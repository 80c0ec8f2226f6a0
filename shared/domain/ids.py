"""Identifiers the service accepts from outside: Entra object ids are GUIDs, checked whole (no trailing newline)."""

from __future__ import annotations

import re

# For pydantic `pattern=` (Rust regex: `$` is the end of the text, with no allowance for a trailing newline).
GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_guid(text: object) -> bool:
    """True for a GUID in its 8-4-4-4-12 hex form and nothing else (so it is safe in a table key or filter)."""
    return isinstance(text, str) and GUID.fullmatch(text) is not None
