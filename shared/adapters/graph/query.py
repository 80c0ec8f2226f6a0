"""Graph's advanced query settings (aad-advanced-queries): `ConsistencyLevel: eventual` and `$count=true`.

https://learn.microsoft.com/graph/aad-advanced-queries: an OData cast on directory objects (such as
`transitiveMembers/microsoft.graph.user`) is an advanced query; without both settings Graph may refuse it or
answer without the cast. Both go with every page, the nextLinks Graph returns included.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from kiota_abstractions.request_information import RequestInformation


def counted_link(link: str) -> str:
    """`link` with `$count=true` in its query (added when Graph's nextLink left it out)."""
    query = urlsplit(link).query
    if any(k.lstrip("$").lower() == "count" and v.lower() == "true" for k, v in parse_qsl(query)):
        return link
    return f"{link}{'&' if query else '?'}$count=true"


def advanced_query(info: RequestInformation) -> RequestInformation:
    """The request with `ConsistencyLevel: eventual` (its URL must already hold `$count=true`)."""
    info.headers.try_add("ConsistencyLevel", "eventual")
    return info
