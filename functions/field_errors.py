"""Field errors as a person reads them: pydantic's errors turned into FieldErrors with a code, and a FieldError's
plain words in the caller's language (web/i18n/fields.<lang>.json).

Kept apart from functions/api.py (which builds the composition root) so the i18n test can read it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared import i18n
from shared.errors import FieldError


def field_text(error: FieldError, language: str) -> str:
    """The field error in a person's words, in `language` (web/i18n/fields.<lang>.json): never a rule's code name
    or an English sentence on a Swedish page; a code without words (a defect the i18n test catches) reads as the
    catalog's general "not valid"."""
    texts = i18n.catalog("fields", language)
    try:
        return texts[error.code].format(**dict(error.values))
    except (KeyError, IndexError, ValueError):
        return texts["invalid"]


# Pydantic's own error types, by the plain words (web/i18n/fields.<lang>.json) that say them to a person; a rule of
# ours raises its own type (a policy Rule's name), which is its code. Anything else reads "invalid".
PYDANTIC_CODES = {
    "missing": "required", "extra_forbidden": "unknownField", "string_too_long": "text.tooLong",
    "string_too_short": "text.tooShort", "string_pattern_mismatch": "text.pattern", "too_long": "list.tooLong",
    "too_short": "list.tooShort", "greater_than_equal": "number.atLeast", "greater_than": "number.atLeast",
    "less_than_equal": "number.atMost", "less_than": "number.atMost", "literal_error": "value.choice",
    "enum": "value.choice", "timezone_aware": "time.zone", "datetime_parsing": "time.format",
    "datetime_from_date_parsing": "time.format", "uuid_parsing": "id.guid", "uuid_type": "id.guid",
    "uuid_version": "id.guid",
}
TYPE_ERRORS = ("_type", "_parsing", "int_from_float")


def field_error(error: Mapping[str, Any]) -> FieldError:
    path = ""
    for part in error.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "is not valid"))
    if kind == "extra_forbidden":
        message = "is not a known field"
    elif kind == "missing":
        message = "is required"
    context = error.get("ctx") or {}
    values = {k: v for k, v in context.items() if isinstance(v, (str, int)) and not isinstance(v, bool)}
    if kind == "greater_than":
        values["ge"] = values.pop("gt", "")
    if kind == "less_than":
        values["le"] = values.pop("lt", "")
    own = kind.isupper() or kind in i18n.catalog("fields", i18n.DEFAULT_LANGUAGE)  # a rule of ours names its words
    code = kind if own else PYDANTIC_CODES.get(kind) or (
        "value.type" if kind.endswith(TYPE_ERRORS) else "invalid")
    return FieldError.of(path or "body", code, message.removeprefix("Value error, "), **values)
