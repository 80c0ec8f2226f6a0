"""Graph v1.0 routes of the admin page's pickers and the pages' branding: listing and searching groups (with
`$count`, paging and a member count), and the organisation's company branding with its localisations and logos.

Registered on graph.py's router, so the same token checks, fault rules, counters and permission checks apply.
Each behaviour names the Microsoft Learn page (https://learn.microsoft.com/graph/<page>) it follows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import GraphError
from .graph import (
    READ_MEMBERS,
    READ_ORG,
    GraphRequest,
    GraphResult,
    collection,
    find_group,
    paged,
    route,
    select_dict,
)
from .tenant import Group
from .user_search import joined

# api/group-list: GroupMember.Read.All is the least privileged application permission to list groups.
READ_GROUPS = READ_MEMBERS
# api/organizationalbranding-get: OrganizationalBranding.Read.All least privileged, Organization.Read.All higher.
READ_BRANDING = READ_ORG | {"OrganizationalBranding.Read.All", "OrganizationalBranding.ReadWrite.All"}
GROUP_PROPERTIES = ("id", "displayName", "description", "createdDateTime", "groupTypes", "mailEnabled",
                    "securityEnabled", "mailNickname", "isAssignableToRole", "visibility")
SEARCHABLE = frozenset({"displayName", "description"})  # search-query-parameter: tokenized on these two only


def _eventual(req: GraphRequest) -> bool:
    return req.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"


# ---- $search (search-query-parameter#using-search-on-directory-object-collections) --------------------------

_CLAUSE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def tokens(text: str) -> list[str]:
    """Tokenized search: words split at spaces, symbols, digits and a lower-to-upper case change ("HelloWorld" is
    hello + world, "HELLOworld" one token); words joined only by symbols also count joined ("hello-world" gives
    helloworld too)."""
    words: list[str] = []
    for chunk in re.split(r"\s+", text.strip()):
        parts = [p for p in re.findall(r"[A-Za-z\u00c0-\u024f]+|\d+", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", chunk))
                 for p in p.split()]
        words.extend(p.lower() for p in parts)
        if len(parts) > 1 and re.search(r"[^\w\s]", chunk):
            words.append("".join(parts).lower())
    return words


def _clause_test(clause: str) -> Callable[[Group], bool]:
    prop, sep, text = clause.replace('\\"', '"').replace("\\\\", "\\").partition(":")
    if not sep or not prop:
        raise GraphError(400, "Request_UnsupportedQuery", f"Invalid search clause '{clause}': the syntax of a clause "
                         "is \"<property>:<text to search>\".")
    if prop not in SEARCHABLE:
        # Other properties fall back to startswith in Graph; the emulator keeps to what the service sends.
        raise GraphError(400, "Request_UnsupportedQuery", f"Search on property '{prop}' is not supported here.")
    wanted = tokens(text)

    def matches(group: Group) -> bool:
        have = tokens(group.display_name if prop == "displayName" else group.description)
        return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)

    return matches


def search_test(raw: str) -> Callable[[Group], bool]:
    """`"clause1" AND|OR "clause2" ...`: every clause inside double quotes, AND / OR outside them, upper case; a
    double quote or backslash inside a clause escaped with a backslash. (Parentheses are not supported here.)"""
    rest = raw.strip()
    tests: list[Callable[[Group], bool]] = []
    operators: list[str] = []
    while True:
        found = _CLAUSE.match(rest)
        if found is None:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "Invalid $search: each clause must be put inside double quotes, such as "
                             "$search=\"displayName:Pilot\".")
        tests.append(_clause_test(found.group(1)))
        rest = rest[found.end():].strip()
        if not rest:
            break
        operator, _, rest = rest.partition(" ")
        if operator not in ("AND", "OR"):
            raise GraphError(400, "Request_UnsupportedQuery", "Logical operators in $search are AND and OR, in "
                                                              "upper case, outside the double quotes.")
        operators.append(operator)
        rest = rest.strip()

    return joined(tests, operators)


_GROUP_FILTER = re.compile(r"^\s*startswith\(\s*displayName\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)


def _group_filter(raw: str) -> Callable[[Group], bool]:
    found = _GROUP_FILTER.match(raw)
    if found is None:
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.")
    prefix = found.group(1).replace("''", "'").lower()
    return lambda group: group.display_name.lower().startswith(prefix)


@route("GET", "/groups", r"/groups", READ_GROUPS)
async def list_groups(req: GraphRequest) -> GraphResult:
    """api/group-list. `$search` works only as an advanced query: without `ConsistencyLevel: eventual` Graph answers
    400 Request_UnsupportedQuery (aad-advanced-queries, "Error handling"); `$count=true` without the header is
    silently ignored there, so no `@odata.count` comes back; `$expand` is not supported in advanced queries."""
    if "search" in req.query and not _eventual(req):
        raise GraphError(400, "Request_UnsupportedQuery", "Request with $search query parameter only works through "
                                                          "MSGraph with a special request header: 'ConsistencyLevel: "
                                                          "eventual'")
    if "expand" in req.query and _eventual(req):
        raise GraphError(400, "Request_UnsupportedQuery", "$expand is not supported with advanced queries.")
    groups = sorted(req.tenant.groups.values(), key=lambda g: (g.display_name.lower(), g.id))
    if req.query.get("search"):
        keep = search_test(req.query["search"])
        groups = [g for g in groups if keep(g)]
    if req.query.get("filter"):
        keep_filtered = _group_filter(req.query["filter"])
        groups = [g for g in groups if keep_filtered(g)]
    counted = req.query.get("count", "").lower() == "true" and _eventual(req)
    return paged(req, groups, "groups", lambda g: select_dict(req, g.to_graph()), count=counted)


def _count(req: GraphRequest, number: int) -> GraphResult:
    """A `$count` segment: the number as text/plain; only in advanced queries (aad-advanced-queries: without the
    header Graph answers 400 Request_BadRequest "$count is not currently supported.")."""
    if not _eventual(req):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    return GraphResult(200, raw=str(number).encode(), content_type="text/plain")


@route("GET", "/groups/{id}/members/$count", r"/groups/(?P<id>[^/]+)/members/\$count", READ_MEMBERS)
async def group_members_count(req: GraphRequest) -> GraphResult:
    """api/group-list-members: direct members, users and groups alike."""
    return _count(req, len(find_group(req).members))


@route("GET", "/groups/{id}/transitiveMembers/microsoft.graph.user/$count",
       r"/groups/(?P<id>[^/]+)/transitiveMembers/(?:microsoft\.)?graph\.user/\$count", READ_MEMBERS)
async def group_transitive_users_count(req: GraphRequest) -> GraphResult:
    """api/group-list-transitivemembers: the users among the members, nested groups' members included."""
    group = find_group(req)
    return _count(req, len(req.tenant.transitive_user_members(group.id)))


# ---- company branding (api/organizationalbranding-get, api/organizationalbrandinglocalization-get) --------------

BRANDING_TEXTS = ("backgroundColor", "signInPageText", "usernameHintText", "customAccountResetCredentialsUrl")
BRANDING_STREAMS = {"bannerLogo": "bannerlogo", "backgroundImage": "illustration", "squareLogo": "tilelogo"}
DEFAULT_LOCALE = ("0", "default")


def _organization(req: GraphRequest) -> None:
    if req.params["org"].lower() != req.tenant.id:
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{req.params['org']}' does not exist or one of its queried reference-property "
                         "objects are not present.")


def _localization(req: GraphRequest, locale: str) -> dict[str, Any] | None:
    branding = req.tenant.branding
    if locale.lower() in DEFAULT_LOCALE:
        return branding.get("default")
    found = {k.lower(): v for k, v in (branding.get("localizations") or {}).items()}.get(locale.lower())
    return None if found is None else found


def _rendered(req: GraphRequest, locale: str, values: dict[str, Any]) -> dict[str, Any]:
    base = f"{req.tenant.id[:8]}-branding/logintenantbranding/{locale}"
    body: dict[str, Any] = {"id": locale}
    for name in BRANDING_TEXTS:
        body[name] = values.get(name)
    for name, path in BRANDING_STREAMS.items():
        body[f"{name}RelativeUrl"] = f"{base}/{path}" if values.get(name) else None
    body["cdnList"] = ["emulator.invalid"] if any(values.get(n) for n in BRANDING_STREAMS) else []
    return body


def _not_found(what: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", f"Resource '{what}' does not exist or one of its queried "
                                                       "reference-property objects are not present.")


@route("GET", "/organization/{id}/branding", r"/organization/(?P<org>[^/]+)/branding", READ_BRANDING)
async def get_branding(req: GraphRequest) -> GraphResult:
    """The default branding when Accept-Language is 0 or default (404 when there is none), else the localization
    whose id the header names (404 when there is none); only the non-stream properties."""
    _organization(req)
    locale = req.headers.get("Accept-Language", "").strip() or "0"
    values = _localization(req, locale)
    if values is None:
        raise _not_found(f"branding/{locale}")
    shown = "0" if locale.lower() in DEFAULT_LOCALE else locale
    return GraphResult(200, {"@odata.context": f"{req.base}/$metadata#branding",
                             **select_dict(req, _rendered(req, shown, values))})


@route("GET", "/organization/{id}/branding/localizations",
       r"/organization/(?P<org>[^/]+)/branding/localizations", READ_BRANDING)
async def list_branding_localizations(req: GraphRequest) -> GraphResult:
    """api/organizationalbranding-list-localizations: the default branding (id "0") and every localization."""
    _organization(req)
    branding = req.tenant.branding
    value = [_rendered(req, "0", branding["default"])] if branding.get("default") else []
    value += [_rendered(req, locale, values) for locale, values in (branding.get("localizations") or {}).items()]
    return collection(req, f"organization('{req.tenant.id}')/branding/localizations", value)


@route("GET", "/organization/{id}/branding/localizations/{locale}/{stream}",
       r"/organization/(?P<org>[^/]+)/branding/localizations/(?P<locale>[^/]+)/(?P<stream>bannerLogo|backgroundImage|"
       r"squareLogo)", READ_BRANDING)
async def get_branding_stream(req: GraphRequest) -> GraphResult:
    """A stream property: the image (image/*), or `200 {}` when it is not set (organizationalbranding-get,
    example 5)."""
    _organization(req)
    values = _localization(req, req.params["locale"])
    if values is None:
        raise _not_found(f"localizations/{req.params['locale']}")
    image: tuple[bytes, str] | None = req.tenant.branding_images.get((values.get("_key"), req.params["stream"]))
    if image is None:
        return GraphResult(200, {})
    data, content_type = image
    return GraphResult(200, raw=data, content_type=content_type)
