"""`$search` on /users, as https://learn.microsoft.com/graph/search-query-parameter ("Using $search on directory
object collections") describes it, for what the helpdesk sends: `"prop:text"` clauses joined by `OR` / `AND`.

- It is an advanced query: without `ConsistencyLevel: eventual` Graph answers 400 Request_UnsupportedQuery.
- `displayName` (and `description`) are searched by tokens: words split at spaces, symbols and a lower-to-upper case
  change, each matched by prefix, case-insensitive ("jen" finds "Casey Jensen").
- Other string properties (`userPrincipalName`, `mail`, ...) match by prefix (startsWith), case-insensitive.
- A `"` or `\\` inside a clause is escaped with a backslash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import GraphError

T = TypeVar("T")

TOKENIZED = frozenset({"displayName"})
PREFIXED = frozenset({"userPrincipalName", "mail", "givenName", "surname"})
_CLAUSE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def tokens(text: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return [t.lower() for t in re.findall(r"[^\W_]+", spaced)]


def _clause(raw: str, getters: dict[str, Callable[[Any], Any]]) -> Callable[[Any], bool]:
    text = raw.replace('\\"', '"').replace("\\\\", "\\")
    prop, sep, value = text.partition(":")
    if not sep or prop not in TOKENIZED | PREFIXED:
        raise GraphError(400, "Request_UnsupportedQuery", f"Invalid search clause '{raw}'.")
    getter = getters[prop]
    if prop in TOKENIZED:
        wanted = tokens(value)
        return lambda user: bool(wanted) and all(any(h.startswith(w) for h in tokens(str(getter(user) or "")))
                                                 for w in wanted)
    prefix = value.lower()
    return lambda user: bool(prefix) and str(getter(user) or "").lower().startswith(prefix)


def search_test(raw: str, getters: dict[str, Callable[[Any], Any]], eventual: bool) -> Callable[[Any], bool]:
    if not eventual:
        raise GraphError(400, "Request_UnsupportedQuery",
                         "$search on directory objects is an advanced query: send 'ConsistencyLevel: eventual'.")
    rest = raw.strip()
    clauses = _CLAUSE.findall(rest)
    joins = [j.strip() for j in _CLAUSE.split(rest)[::2]]
    if not clauses or joins[0] or joins[-1] or any(j not in ("OR", "AND") for j in joins[1:-1]):
        raise GraphError(400, "Request_UnsupportedQuery", "Syntax error in $search: use \"prop:text\" clauses "
                         "joined by OR or AND.")
    return joined([_clause(c, getters) for c in clauses], joins[1:-1])


def joined(tests: list[Callable[[T], bool]], operators: list[str]) -> Callable[[T], bool]:
    """The clauses' tests joined by their operators ("AND" / "OR"), read left to right as Graph reads them."""

    def matches(item: T) -> bool:
        result = tests[0](item)
        for operator, test in zip(operators, tests[1:], strict=True):
            result = (result and test(item)) if operator == "AND" else (result or test(item))
        return result

    return matches
