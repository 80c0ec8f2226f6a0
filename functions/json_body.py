"""The one strict reader of JSON request bodies: every HTTP route parses its body here (security.md D5, D9).

Refused, each as `InvalidRequest` naming the body (400, never a 500): text that is not UTF-8 JSON, nesting deeper
than MAX_DEPTH arrays and objects, a number literal longer than MAX_NUMBER_CHARS characters, `NaN`/`Infinity`
(not JSON) and a key that appears twice in one object. The depth is measured before parsing, in linear time, so
a body of 5,000 `[` never reaches the recursive parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.errors import FieldError, InvalidRequest

MAX_DEPTH = 32  # arrays and objects inside each other; the deepest body of ours has 4
MAX_NUMBER_CHARS = 32  # a float64 needs at most 24 characters; every number of ours is far shorter

# A JSON string, or an unterminated one up to the end of the text: it always matches at a quote, so stripping the
# strings is one pass whatever the body holds.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


class _Refused(ValueError):
    pass


def load_json(body: bytes) -> Any:
    """The parsed body, or `InvalidRequest` with one `body` error saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("is not valid JSON") from None
    depth_problem = _nesting_problem(text)
    if depth_problem:
        raise _invalid(depth_problem)
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_int=_integer, parse_float=_float,
                          parse_constant=_constant)
    except _Refused as exc:
        raise _invalid(str(exc)) from None
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise _invalid("is not valid JSON") from None


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest([FieldError.of("body", "body.notJson", message)])


def _nesting_problem(text: str) -> str | None:
    """Why the brackets outside strings are not a nesting of at most MAX_DEPTH levels, or None when they are.

    Each pass removes the innermost `[]` and `{}` pairs, so a body nested n deep is empty after n passes."""
    brackets = _STRING.sub("", text).encode().translate(None, _NOT_BRACKET)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return None
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:
            return "is not valid JSON"  # brackets that never close, or close the wrong kind
    return f"is nested deeper than {MAX_DEPTH} arrays and objects" if brackets else None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {json.dumps(key)} appears twice")
        result[key] = value
    return result


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(f"holds a number longer than {MAX_NUMBER_CHARS} characters")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(f"holds a number longer than {MAX_NUMBER_CHARS} characters")
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _Refused("holds a number too large for a 64-bit float")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not JSON")
