"""Microsoft Graph v1.0 routes the SSPR service uses (contracts.md section 2), shaped like real Graph JSON.

One small router serves both plain HTTP requests and the sub-requests of ``POST /$batch``: a request is
authenticated (Bearer token from the emulator), counted, exposed to fault rules, checked against the
permission its route needs, then handled.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from aiohttp import web

from .errors import GraphError, default_code, error_body, graph_headers
from .identity import validate_graph_token
from .passwords import COMPLEXITY_MESSAGE, complies
from .state import STATE, EmulatorState
from .tenant import (
    DEFAULT_USER_PROPERTIES,
    PASSWORD_POLICIES,
    USER_PROPERTIES,
    USER_PROPERTY_GETTERS,
    WRITABLE_FOR_SYNCED,
    WRITABLE_USER_PROPERTIES,
    Group,
    Tenant,
    User,
    iso,
    utc_now,
)
from .user_search import search_test

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
DEFAULT_TOP, MAX_TOP = 100, 999
BATCH_LIMIT = 20
CHECK_MEMBER_GROUPS_LIMIT = 20
REPORT_LIMIT, REPORT_WINDOW_S = 5, 10.0

# Application permissions accepted per need, by the names of each API's documented permissions table: its
# least privileged permission first, then the higher privileged ones Graph also accepts. Each set names the
# Microsoft Learn page (https://learn.microsoft.com/graph/api/<page>) it follows.
READ_ORG = frozenset({"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
                      "Directory.ReadWrite.All"})  # organization-list, directory-list-subscriptions
READ_USERS = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                        "Directory.ReadWrite.All"})  # user-list, user-get, user-delta
# user-update: User.ReadUpdate.All is the least privileged permission to update a user's ordinary properties
# (passwordPolicies among them); User.ReadWrite.All and Directory.ReadWrite.All are higher privileged.
WRITE_USERS = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
# user-update, passwordProfile: User-PasswordProfile.ReadWrite.All least privileged (plus a directory role).
WRITE_PASSWORD = frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
REVOKE_SESSIONS = frozenset({"User.RevokeSessions.All", "User.ReadWrite.All",
                             "Directory.ReadWrite.All"})  # user-revokesigninsessions
READ_MEMBERS = frozenset({"GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All",
                          "Group.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"})  # group-list-transitivemembers, group-delta, checkmembergroups
READ_ROLES = frozenset({"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory",
                        "RoleManagement.Read.All", "Directory.Read.All",
                        "Directory.ReadWrite.All"})  # user-list-transitivememberof, directoryrole-list-members
# authenticationmethodsroot-list-userregistrationdetails: AuditLog.Read.All only.
READ_REPORTS = frozenset({"AuditLog.Read.All"})
READ_DOMAINS = frozenset({"Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"})  # domain-list, domain-get
WRITE_DOMAINS = frozenset({"Domain.ReadWrite.All", "Directory.ReadWrite.All"})  # domain-update
SEND_MAIL = frozenset({"Mail.Send"})  # user-sendmail
NO_PERMISSION: frozenset[str] = frozenset()

# Directory roles that let a caller reset a password: any of these for ordinary users, only the second set
# when the target user holds a directory role itself.
RESET_ROLES = frozenset({"User Administrator", "Helpdesk Administrator", "Authentication Administrator",
                         "Privileged Authentication Administrator", "Global Administrator"})
RESET_ADMIN_ROLES = frozenset({"Privileged Authentication Administrator", "Global Administrator"})
SYNCED_MESSAGE = ("Unable to update the specified properties for on-premises mastered Directory Sync objects or "
                  "objects currently undergoing migration.")


@dataclass(slots=True)
class GraphRequest:
    state: EmulatorState
    method: str
    path: str  # below /v1.0, decoded
    query: dict[str, str]  # OData options with "$" dropped and names lower-cased
    raw_query: list[tuple[str, str]]
    body: Any
    headers: Mapping[str, str]
    claims: dict[str, Any]
    origin: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def tenant(self) -> Tenant:
        return self.state.tenant

    @property
    def base(self) -> str:
        return f"{self.origin}/v1.0"


@dataclass(slots=True)
class GraphResult:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A body that is not JSON: `$count` segments answer text/plain, media streams (branding logos) image/*.
    raw: bytes | None = None
    content_type: str | None = None


Handler = Callable[[GraphRequest], Awaitable[GraphResult]]


@dataclass(slots=True, frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    permissions: frozenset[str]  # any one of them suffices; empty = checked by the handler
    handler: Handler


ROUTES: list[Route] = []
_ID = r"(?P<id>[^/]+)"


def route(method: str, template: str, regex: str, permissions: frozenset[str]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(f"^{regex}$", re.IGNORECASE), template, permissions, handler))
        return handler
    return register


# ---- helpers -------------------------------------------------------------------------------------------


def collection(req: GraphRequest, context: str, value: list[Any], **extra: Any) -> GraphResult:
    body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#{context}"}
    body.update({k: v for k, v in extra.items() if v is not None})
    body["value"] = value
    return GraphResult(200, body)


def entity(req: GraphRequest, context: str, value: dict[str, Any]) -> GraphResult:
    return GraphResult(200, {"@odata.context": f"{req.base}/$metadata#{context}/$entity", **value})


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, json.JSONDecodeError):
        raise GraphError(400, "Request_BadRequest", "Invalid skip token or delta token.") from None
    if not isinstance(data, dict):
        raise GraphError(400, "Request_BadRequest", "Invalid skip token or delta token.")
    return data


def link(req: GraphRequest, path: str, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{k}={quote(v, safe=',()$@:')}" for k, v in params)
    return f"{req.base}{path}?{query}"


def page_size(req: GraphRequest, default: int = DEFAULT_TOP) -> int:
    raw = req.query.get("top")
    if raw is None:
        prefer = req.headers.get("Prefer", "")
        match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        return min(int(match.group(1)), MAX_TOP) if match else default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.")
    return int(raw)


def paged(req: GraphRequest, items: list[Any], context: str, render: Callable[[Any], dict[str, Any]],
          count: bool = False, default_size: int = DEFAULT_TOP) -> GraphResult:
    """One page of ``items`` with an absolute ``@odata.nextLink`` that repeats the caller's options."""
    size = page_size(req, default_size)
    offset = int(decode_token(req.query["skiptoken"]).get("o", 0)) if "skiptoken" in req.query else 0
    chunk = items[offset:offset + size]
    next_link = None
    if offset + size < len(items):
        params = [(k, v) for k, v in req.raw_query if k.lstrip("$").lower() != "skiptoken"]
        params.append(("$skiptoken", encode_token({"o": offset + size})))
        next_link = link(req, req.path, params)
    return collection(req, context, [render(item) for item in chunk],
                      **{"@odata.count": len(items) if count else None, "@odata.nextLink": next_link})


def user_selection(req: GraphRequest) -> tuple[str, ...]:
    raw = req.query.get("select")
    if not raw:
        return DEFAULT_USER_PROPERTIES
    by_lower = {p.lower(): p for p in USER_PROPERTIES}
    chosen: list[str] = []
    for name in (n.strip() for n in raw.split(",")):
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise GraphError(400, "Request_BadRequest",
                             f"Could not find a property named '{name}' on type 'microsoft.graph.user'.")
        if canonical not in chosen:
            chosen.append(canonical)
    return tuple(chosen)


def user_renderer(select: tuple[str, ...]) -> Callable[[User], dict[str, Any]]:
    getters = [(name, USER_PROPERTY_GETTERS[name]) for name in select]
    return lambda user: {name: get(user) for name, get in getters}


def select_context(select: tuple[str, ...], base: str) -> str:
    return base if select is DEFAULT_USER_PROPERTIES else f"{base}({','.join(select)})"


def select_dict(req: GraphRequest, value: dict[str, Any]) -> dict[str, Any]:
    raw = req.query.get("select")
    if not raw:
        return value
    wanted = {n.strip().lower() for n in raw.split(",")}
    return {k: v for k, v in value.items() if k.lower() in wanted or k.startswith("@")}


_FILTER_EQ = re.compile(r"^\s*(\w+)\s+(eq|ne)\s+(true|false|null|'(?:[^']|'')*'|-?\d+)\s*$", re.IGNORECASE)
_FILTER_IN = re.compile(r"^\s*(\w+)\s+in\s+\(\s*('(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*)\s*\)\s*$", re.IGNORECASE)
_IN_VALUE = re.compile(r"'((?:[^']|'')*)'")
# https://learn.microsoft.com/graph/filter-query-parameter: `in` is supported wherever `eq` is. Graph refuses more
# than 15 values in one expression ("Too many child clauses ... Max allowed: 15"): observed from Graph, not written
# on Learn; callers split longer lists.
IN_VALUES_LIMIT = 15
_FILTER_STARTSWITH = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)


def user_filter(raw: str) -> Callable[[User], bool]:
    """Simple $filter: clauses ``prop eq|ne value`` or ``startswith(prop,'x')`` joined by ``and``."""
    by_lower = {p.lower(): p for p in USER_PROPERTIES}
    tests: list[Callable[[User], bool]] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        if match := _FILTER_EQ.match(clause):
            prop = by_lower.get(match.group(1).lower())
            literal = match.group(3)
            value: Any = (True if literal.lower() == "true" else False if literal.lower() == "false"
                          else None if literal.lower() == "null"
                          else literal[1:-1].replace("''", "'") if literal.startswith("'") else int(literal))
            negate = match.group(2).lower() == "ne"
            if prop is None:
                break
            getter = USER_PROPERTY_GETTERS[prop]
            if isinstance(value, str):
                folded = value.lower()
                tests.append(lambda u, g=getter, v=folded, n=negate: (str(g(u) or "").lower() == v) != n)
            else:
                tests.append(lambda u, g=getter, v=value, n=negate: (g(u) == v) != n)
        elif match := _FILTER_IN.match(clause):
            prop = by_lower.get(match.group(1).lower())
            if prop is None:
                break
            values = {v.replace("''", "'").lower() for v in _IN_VALUE.findall(match.group(2))}
            if len(_IN_VALUE.findall(match.group(2))) > IN_VALUES_LIMIT:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"Too many child clauses specified in search filter expression containing 'OR' "
                                 f"operators: {len(_IN_VALUE.findall(match.group(2)))}. Max allowed: "
                                 f"{IN_VALUES_LIMIT}.")
            getter = USER_PROPERTY_GETTERS[prop]
            tests.append(lambda u, g=getter, vs=values: str(g(u) or "").lower() in vs)
        elif match := _FILTER_STARTSWITH.match(clause):
            prop = by_lower.get(match.group(1).lower())
            if prop is None:
                break
            getter, prefix = USER_PROPERTY_GETTERS[prop], match.group(2).replace("''", "'").lower()
            tests.append(lambda u, g=getter, p=prefix: str(g(u) or "").lower().startswith(p))
        else:
            break
    else:
        return lambda user: all(test(user) for test in tests)
    raise GraphError(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.")


def require_advanced_query(req: GraphRequest) -> None:
    """An OData cast on directory objects is an advanced query (https://learn.microsoft.com/graph/aad-advanced-queries):
    it needs `ConsistencyLevel: eventual` and `$count=true` on every request, nextLinks included. Real Graph may
    answer a cast without them by ignoring the cast; the emulator never honours it silently and refuses."""
    eventual = req.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"
    if not eventual or req.query.get("count", "").lower() != "true":
        raise GraphError(400, "Request_UnsupportedQuery",
                         "The specified type cast is an advanced query: send the 'ConsistencyLevel: eventual' "
                         "header and $count=true.")


def find_user(req: GraphRequest) -> User:
    user = req.tenant.find_user(req.params["id"])
    if user is None:
        raise resource_not_found(req)
    return user


def json_object(req: GraphRequest) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    return req.body


def caller_roles(req: GraphRequest) -> set[str]:
    """Directory roles held by the caller: the app's service principal, or the signed-in user."""
    return {r.display_name for r in req.tenant.roles_of(req.claims.get("oid", ""))}


# ---- organization, subscriptions, licences, domains ------------------------------------------------------


@route("GET", "/organization", r"/organization", READ_ORG)
async def get_organization(req: GraphRequest) -> GraphResult:
    t = req.tenant
    org = t.organization
    plans = [{"assignedDateTime": s.created, "capabilityStatus": s.status, "service": "AADPremiumService"
              if p["servicePlanName"].startswith("AAD_PREMIUM") else "exchange", "servicePlanId": p["servicePlanId"]}
             for s in t.subscriptions for p in t.skus[s.sku_part_number].service_plans]
    value = {
        "id": t.id, "displayName": t.display_name, "tenantType": org.get("tenantType", "AAD"),
        "countryLetterCode": org.get("countryLetterCode"), "preferredLanguage": org.get("preferredLanguage"),
        "city": org.get("city"), "street": org.get("street"), "postalCode": org.get("postalCode"),
        "createdDateTime": org.get("createdDateTime"), "deletedDateTime": None, "businessPhones": [],
        "marketingNotificationEmails": [], "securityComplianceNotificationMails": [],
        "technicalNotificationMails": [f"admin@{next(iter(t.domains))}"], "onPremisesSyncEnabled": True,
        "onPremisesLastSyncDateTime": "2026-01-05T03:00:00Z", "assignedPlans": plans,
        "verifiedDomains": [{"capabilities": ", ".join(d.get("supportedServices", [])), "isDefault": d["isDefault"],
                             "isInitial": d["isInitial"], "name": d["id"], "type": d["authenticationType"]}
                            for d in t.domains.values()],
    }
    return collection(req, "organization", [select_dict(req, value)])


@route("GET", "/directory/subscriptions", r"/directory/subscriptions", READ_ORG)
async def get_subscriptions(req: GraphRequest) -> GraphResult:
    t = req.tenant
    value = [{
        "id": s.id, "commerceSubscriptionId": s.id, "createdDateTime": s.created, "isTrial": s.is_trial,
        "nextLifecycleDateTime": s.next_lifecycle, "ownerId": t.id, "ownerTenantId": t.id, "ownerType": "Tenant",
        "skuId": s.sku_id, "skuPartNumber": s.sku_part_number, "status": s.status, "totalLicenses": s.total_licenses,
        "serviceStatus": [{"servicePlan": {"servicePlanId": p["servicePlanId"], "servicePlanName": p["servicePlanName"]},
                           "provisioningStatus": "Success" if s.status == "Enabled" else "Disabled"}
                          for p in t.skus[s.sku_part_number].service_plans],
    } for s in t.subscriptions]
    return collection(req, "directory/subscriptions", [select_dict(req, v) for v in value])


@route("GET", "/subscribedSkus", r"/subscribedSkus", READ_ORG | {"LicenseAssignment.Read.All"})
async def get_subscribed_skus(req: GraphRequest) -> GraphResult:
    t = req.tenant
    consumed: dict[str, int] = {}
    for user in t.users.values():
        for sku_id in user.sku_ids:
            consumed[sku_id] = consumed.get(sku_id, 0) + 1
    value = []
    for sku in t.skus.values():
        subs = [s for s in t.subscriptions if s.sku_id == sku.sku_id]
        status = subs[0].status if subs else "Enabled"
        value.append({
            "accountId": t.id, "accountName": t.display_name, "appliesTo": "User", "capabilityStatus": status,
            "consumedUnits": consumed.get(sku.sku_id, 0), "id": f"{t.id}_{sku.sku_id}", "skuId": sku.sku_id,
            "skuPartNumber": sku.sku_part_number, "subscriptionIds": [s.id for s in subs],
            "prepaidUnits": {"enabled": sku.prepaid_units if status == "Enabled" else 0, "lockedOut": 0,
                             "suspended": sku.prepaid_units if status == "Suspended" else 0,
                             "warning": sku.prepaid_units if status == "Warning" else 0},
            "servicePlans": [{**p, "provisioningStatus": "Success", "appliesTo": "User"} for p in sku.service_plans],
        })
    return collection(req, "subscribedSkus", [select_dict(req, v) for v in value])


@route("GET", "/users/{id}/licenseDetails", rf"/users/{_ID}/licenseDetails", READ_USERS)
async def get_license_details(req: GraphRequest) -> GraphResult:
    user = find_user(req)
    t = req.tenant
    status = {s.sku_id: s.status for s in t.subscriptions}
    value = []
    for sku_id in user.sku_ids:
        sku = t.skus_by_id[sku_id]
        provisioning = "Success" if status.get(sku_id, "Enabled") == "Enabled" else "Disabled"
        value.append({
            "id": base64.urlsafe_b64encode(hashlib.sha256(f"{user.id}{sku_id}".encode()).digest()[:24]).decode(),
            "skuId": sku_id, "skuPartNumber": sku.sku_part_number,
            "servicePlans": [{**p, "provisioningStatus": provisioning, "appliesTo": "User"} for p in sku.service_plans],
        })
    return collection(req, f"users('{user.id}')/licenseDetails", value)


@route("GET", "/domains", r"/domains", READ_DOMAINS)
async def get_domains(req: GraphRequest) -> GraphResult:
    return collection(req, "domains", [select_dict(req, dict(d)) for d in req.tenant.domains.values()])


def resource_not_found(req: GraphRequest) -> GraphError:
    """Graph's 404 for an id that names nothing."""
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{req.params['id']}' does not exist or one of its queried reference-property "
                      "objects are not present.")


def find_domain(req: GraphRequest) -> dict[str, Any]:
    domain = req.tenant.domains.get(req.params["id"].lower())
    if domain is None:
        raise resource_not_found(req)
    return domain


@route("GET", "/domains/{id}", rf"/domains/{_ID}", READ_DOMAINS)
async def get_domain(req: GraphRequest) -> GraphResult:
    return entity(req, "domains", select_dict(req, dict(find_domain(req))))


@route("PATCH", "/domains/{id}", rf"/domains/{_ID}", WRITE_DOMAINS)
async def patch_domain(req: GraphRequest) -> GraphResult:
    domain = find_domain(req)
    body = json_object(req)
    limits = {"passwordValidityPeriodInDays": lambda v: 14 <= v <= 730 or v == 2147483647,
              "passwordNotificationWindowInDays": lambda v: 1 <= v <= 30}
    for name, value in body.items():
        if name not in limits:
            raise GraphError(400, "Request_BadRequest", f"Property '{name}' is read-only or not supported here.")
        if not isinstance(value, int) or isinstance(value, bool) or not limits[name](value):
            raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{name}' of "
                                                        "resource 'Domain'.")
    domain.update(body)
    return GraphResult(204)


# ---- users ---------------------------------------------------------------------------------------------


@route("GET", "/users", r"/users", READ_USERS)
async def list_users(req: GraphRequest) -> GraphResult:
    select = user_selection(req)
    users = req.tenant.user_list()
    if req.query.get("filter"):
        keep = user_filter(req.query["filter"])
        users = [u for u in users if keep(u)]
    if req.query.get("search"):
        eventual = req.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"
        found = search_test(req.query["search"], USER_PROPERTY_GETTERS, eventual)
        users = [u for u in users if found(u)]
    count = req.query.get("count", "").lower() == "true"
    return paged(req, users, select_context(select, "users"), user_renderer(select), count=count)


def resumed_delta(req: GraphRequest) -> dict[str, Any] | None:
    """The state a delta page resumes from: its skiptoken's, or a deltaLink's with the changes since it; None for a
    first round."""
    if "skiptoken" in req.query:
        return decode_token(req.query["skiptoken"])
    if "deltatoken" in req.query:
        delta = decode_token(req.query["deltatoken"])
        return {**delta, "s": delta.get("u"), "u": req.tenant.seq, "o": 0}
    return None


@route("GET", "/users/delta", r"/users/delta(?:\(\))?", READ_USERS)
async def users_delta(req: GraphRequest) -> GraphResult:
    """Full sync pages, then a deltaLink; the deltaLink returns users changed (or removed) since."""
    tenant = req.tenant
    token = resumed_delta(req)
    if token is None:
        token = {"e": tenant_epoch(tenant), "s": None, "u": tenant.seq, "o": 0,
                 "sel": list(user_selection(req)), "n": page_size(req)}
    check_sync_state(req, token, "/users/delta")
    select = tuple(token["sel"])
    render = user_renderer(select if "id" in select else ("id", *select))
    since, upto, offset, size = token["s"], token["u"], token["o"], token["n"]
    items: list[Any] = tenant.user_list() if since is None else tenant.changed_since(since, upto)
    chunk = items[offset:offset + size]
    value = []
    for item in chunk:
        if isinstance(item, User):
            value.append(render(item))
        elif (user := tenant.users.get(item)) is not None:
            value.append(render(user))
        else:
            value.append({"id": item, "@removed": {"reason": "deleted"}})
    body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#{select_context(select, 'users')}"}
    if offset + size < len(items):
        body["@odata.nextLink"] = link(req, "/users/delta", [("$skiptoken", encode_token({**token, "o": offset + size}))])
    else:
        body["@odata.deltaLink"] = link(req, "/users/delta", [("$deltatoken", encode_token(
            {"e": token["e"], "u": upto, "sel": token["sel"], "n": size}))])
    body["value"] = value
    return GraphResult(200, body)


def tenant_epoch(tenant: Tenant) -> str:
    return tenant.epoch


def check_sync_state(req: GraphRequest, token: dict[str, Any], path: str) -> None:
    """A token of an earlier state. https://learn.microsoft.com/graph/delta-query-overview: an expired token
    answers a 40X error with code syncStateNotFound (400 for directory objects); a resync the service forces
    answers 410 Gone with a Location header to start again from."""
    epoch = token.get("e")
    if epoch == tenant_epoch(req.tenant):
        return
    if epoch in req.tenant.resync_epochs:
        raise GraphError(410, "resyncRequired", "The service requires a full resync: restart the delta query "
                         "from the Location header.", headers={"Location": f"{req.base}{path}"})
    raise GraphError(400, "syncStateNotFound",
                     "The sync state generation is not found. The delta token is expired and data must be "
                     "synchronized again.")


@route("GET", "/users/{id}", rf"/users/{_ID}", READ_USERS)
async def get_user(req: GraphRequest) -> GraphResult:
    select = user_selection(req)
    return entity(req, select_context(select, "users"), user_renderer(select)(find_user(req)))


@route("PATCH", "/users/{id}", rf"/users/{_ID}", NO_PERMISSION)
async def patch_user(req: GraphRequest) -> GraphResult:
    user = find_user(req)
    body = json_object(req)
    profile = body.get("passwordProfile")
    others = {k: v for k, v in body.items() if k != "passwordProfile"}
    for name in others:
        if name not in WRITABLE_USER_PROPERTIES:
            raise GraphError(400, "Request_BadRequest",
                             f"Property '{name}' is read-only or does not exist on type 'microsoft.graph.user'.")
    if profile is not None:
        require(req, WRITE_PASSWORD)
    if others:
        require(req, WRITE_USERS)
    if user.synced and (profile is not None or set(others) - WRITABLE_FOR_SYNCED):
        raise GraphError(400, "Request_BadRequest", SYNCED_MESSAGE)
    if "passwordPolicies" in others and others["passwordPolicies"] not in PASSWORD_POLICIES:
        raise GraphError(400, "Request_BadRequest",
                         "Invalid value specified for property 'passwordPolicies' of resource 'User'.")
    if profile is not None:
        if not isinstance(profile, dict) or not isinstance(profile.get("password"), str):
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'passwordProfile'.")
        allowed = RESET_ADMIN_ROLES if req.tenant.is_admin(user.id) else RESET_ROLES
        if not caller_roles(req) & allowed:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        policies = others.get("passwordPolicies", user.password_policies) or "None"
        if not complies(profile["password"], strong="DisableStrongPassword" not in policies):
            raise GraphError(400, "Request_BadRequest", COMPLEXITY_MESSAGE)
    apply_user_fields(req.tenant, user, others)
    if profile is not None:
        user.password = profile["password"]
        user.force_change = bool(profile.get("forceChangePasswordNextSignIn", False))
        user.password_changed = iso(utc_now())
    req.tenant.touch(user)
    return GraphResult(204)


FIELD_SLOTS = {
    "accountEnabled": "account_enabled", "displayName": "display_name", "givenName": "given_name",
    "surname": "surname", "mail": "mail", "mobilePhone": "mobile_phone", "otherMails": "other_mails",
    "preferredLanguage": "preferred_language", "jobTitle": "job_title", "department": "department",
    "officeLocation": "office_location", "companyName": "company_name", "usageLocation": "usage_location",
    "businessPhones": "business_phones", "passwordPolicies": "password_policies",
}


def apply_user_fields(tenant: Tenant, user: User, fields: dict[str, Any]) -> None:
    """Write simple Graph properties onto a user (shared by PATCH /users and the control API)."""
    for name, value in fields.items():
        if name == "userPrincipalName":
            tenant.rename_upn(user, str(value))
            continue
        if name == "accountEnabled" and not isinstance(value, bool):
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled'.")
        if name in ("otherMails", "businessPhones"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{name}'.")
            value = tuple(value)
        elif name != "accountEnabled" and value is not None and not isinstance(value, str):
            raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{name}'.")
        setattr(user, FIELD_SLOTS[name], value)


@route("POST", "/users/{id}/revokeSignInSessions", rf"/users/{_ID}/revokeSignInSessions", REVOKE_SESSIONS)
async def revoke_sessions(req: GraphRequest) -> GraphResult:
    user = find_user(req)
    user.sessions_valid_from = iso(utc_now())
    return GraphResult(200, {"@odata.context": f"{req.base}/$metadata#Edm.Boolean", "value": True})


@route("POST", "/users/{id}/checkMemberGroups", rf"/users/{_ID}/checkMemberGroups", READ_MEMBERS)
async def check_member_groups(req: GraphRequest) -> GraphResult:
    user = find_user(req)
    ids = json_object(req).get("groupIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'groupIds'.")
    if len(ids) > CHECK_MEMBER_GROUPS_LIMIT:
        raise GraphError(400, "Request_BadRequest",
                         f"The number of groupIds in the request exceeds the limit of {CHECK_MEMBER_GROUPS_LIMIT}.")
    tenant = req.tenant
    hits = [gid for gid in ids if gid.lower() in tenant.groups
            and user.id in tenant.flattened_members(gid.lower())[1]]
    return GraphResult(200, {"@odata.context": f"{req.base}/$metadata#Collection(Edm.String)", "value": hits})


@route("GET", "/users/{id}/transitiveMemberOf/microsoft.graph.directoryRole",
       rf"/users/{_ID}/transitiveMemberOf/(?:microsoft\.)?graph\.directoryRole", READ_ROLES)
async def user_directory_roles(req: GraphRequest) -> GraphResult:
    require_advanced_query(req)
    user = find_user(req)
    roles = list(req.tenant.roles_of(user.id))
    return paged(req, roles, "directoryRoles", lambda r: select_dict(req, r.to_graph()), count=True)


@route("GET", "/directoryRoles(roleTemplateId='{id}')/members",
       r"/directoryRoles\(roleTemplateId='(?P<id>[0-9a-fA-F-]{36})'\)/members", READ_ROLES)
async def directory_role_members(req: GraphRequest) -> GraphResult:
    """The users holding an activated role (reset: mail the Global Administrators after an admin's reset)."""
    role = next((r for r in req.tenant.roles.values() if r.role_template_id == req.params["id"].lower()), None)
    if role is None:
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{req.params['id']}' does not exist.")
    select = user_selection(req)
    render = user_renderer(select)
    users = [u for u in (req.tenant.find_user(m) for m in role.members) if u is not None]
    value = [{"@odata.type": "#microsoft.graph.user", **render(u)} for u in users]
    return collection(req, "directoryObjects", value)


@route("POST", "/users/{id}/sendMail", rf"/users/{_ID}/sendMail", SEND_MAIL)
async def send_mail(req: GraphRequest) -> GraphResult:
    sender = req.tenant.find_user(req.params["id"])
    if sender is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{req.params['id']}' is invalid.")
    if not sender.mail:
        raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                         "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    # Graph reads action parameters case-insensitively; msgraph-sdk sends "Message" and "SaveToSentItems".
    body = {key[:1].lower() + key[1:]: value for key, value in json_object(req).items()}
    message = body.get("message")
    if not isinstance(message, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The 'message' parameter is missing or invalid.")
    recipients = [r for key in ("toRecipients", "ccRecipients", "bccRecipients") for r in message.get(key) or []]
    if not recipients or not all(isinstance(r, dict) and "@" in str(r.get("emailAddress", {}).get("address", ""))
                                 for r in recipients):
        raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is not valid., Recipient is missing.")
    # api/user-sendmail, resources/fileattachment: a file attachment names its type and carries contentBytes
    # (base64); an inline one (isInline) is shown by the HTML body as cid:<contentId>.
    for attachment in message.get("attachments") or []:
        if not isinstance(attachment, dict) or attachment.get("@odata.type") != "#microsoft.graph.fileAttachment" \
                or not attachment.get("name") or not isinstance(attachment.get("contentBytes"), str):
            raise GraphError(400, "ErrorInvalidRequest", "An attachment is not a valid fileAttachment.")
        try:
            base64.b64decode(attachment["contentBytes"], validate=True)
        except ValueError:
            raise GraphError(400, "ErrorInvalidRequest", "contentBytes is not valid base64.") from None
    req.state.outbox.add(sender.mail, message, bool(body.get("saveToSentItems", True)))
    return GraphResult(202)


# ---- groups --------------------------------------------------------------------------------------------


def find_group(req: GraphRequest) -> Group:
    group = req.tenant.groups.get(req.params["id"].lower())
    if group is None:
        raise resource_not_found(req)
    return group


GROUP_DELTA_FILTER = re.compile(r"^\s*id eq '([0-9a-fA-F-]{36})'((?:\s+or\s+id eq '[0-9a-fA-F-]{36}')*)\s*$")
GROUP_DELTA_IDS_LIMIT = 50


@route("GET", "/groups/delta", r"/groups/delta(?:\(\))?", READ_MEMBERS)
async def groups_delta(req: GraphRequest) -> GraphResult:
    """The groups of `$filter=id eq '..' or id eq '..'` (at most 50; none: every group) with `members@delta`:
    every direct member in the first round, then only the members added, or removed (`@removed`), since the
    deltaLink. Members are users or groups (nested groups are members, their own members are not listed). A
    group whose members span pages repeats in each page with the next part of its members, as real Graph does."""
    tenant = req.tenant
    token = resumed_delta(req)
    if token is None:
        raw = req.query.get("filter")
        ids = sorted(tenant.groups)
        if raw is not None:
            found = GROUP_DELTA_FILTER.match(raw)
            if found is None:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query: only $filter=id eq '<id>' "
                                 "(or id eq '<id>', up to 50) is supported on groups/delta.")
            ids = [i.lower() for i in re.findall(r"'([0-9a-fA-F-]{36})'", raw)]
            if len(ids) > GROUP_DELTA_IDS_LIMIT:
                raise GraphError(400, "Request_UnsupportedQuery", "At most 50 ids may be filtered on.")
        select = [p.strip() for p in req.query.get("select", "").split(",") if p.strip()]
        token = {"e": tenant_epoch(tenant), "s": None, "u": tenant.seq, "o": 0, "ids": ids, "sel": select,
                 "n": page_size(req)}
    check_sync_state(req, token, "/groups/delta")
    since, upto, offset, size = token["s"], token["u"], token["o"], token["n"]
    entries: list[tuple[str, str | None, bool]] = []  # (group id, member id or None, removed)
    if since is None:
        for gid in token["ids"]:
            if (group := tenant.groups.get(gid)) is not None:
                entries.extend([(gid, m, False) for m in group.members] or [(gid, None, False)])
    else:
        changed = tenant.membership_changes(since, upto, set(token["ids"]))
        for gid in token["ids"]:
            entries.extend((gid, m, not added) for m, added in changed.get(gid, {}).items())
    value: list[dict[str, Any]] = []
    for gid, member, removed in entries[offset:offset + size]:
        if not value or value[-1]["id"] != gid:
            group = tenant.groups.get(gid)
            shown = {k: v for k, v in (group.to_graph() if group else {}).items() if k in token["sel"]}
            value.append({**shown, "id": gid, "members@delta": []})
        if member is not None:
            kind = "group" if member in tenant.groups else "user"
            value[-1]["members@delta"].append({"@odata.type": f"#microsoft.graph.{kind}", "id": member,
                                               **({"@removed": {"reason": "deleted"}} if removed else {})})
    body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#groups"}
    if offset + size < len(entries):
        body["@odata.nextLink"] = link(req, "/groups/delta", [("$skiptoken", encode_token({**token, "o": offset + size}))])
    else:
        body["@odata.deltaLink"] = link(req, "/groups/delta", [("$deltatoken", encode_token(
            {"e": token["e"], "u": upto, "ids": token["ids"], "sel": token["sel"], "n": size}))])
    body["value"] = value
    return GraphResult(200, body)


@route("GET", "/groups/{id}", rf"/groups/{_ID}", READ_MEMBERS)
async def get_group(req: GraphRequest) -> GraphResult:
    return entity(req, "groups", select_dict(req, find_group(req).to_graph()))


@route("GET", "/groups/{id}/transitiveMembers/microsoft.graph.user",
       rf"/groups/{_ID}/transitiveMembers/(?:microsoft\.)?graph\.user", READ_MEMBERS)
async def group_transitive_users(req: GraphRequest) -> GraphResult:
    require_advanced_query(req)
    group = find_group(req)
    select = user_selection(req)
    users = req.tenant.transitive_user_members(group.id)
    count = req.query.get("count", "").lower() == "true"
    return paged(req, users, select_context(select, "users"), user_renderer(select), count=count)


WRITE_MEMBERS = frozenset({"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"})


@route("POST", "/groups/{id}/members/$ref", rf"/groups/{_ID}/members/\$ref", WRITE_MEMBERS)
async def add_group_member(req: GraphRequest) -> GraphResult:
    """Add a direct member ({"@odata.id": ".../directoryObjects/<id>"}). Like real Graph, a membership change
    shows in /groups/delta, not in /users/delta (the control API's member routes touch the users as well)."""
    group = find_group(req)
    ref = str(json_object(req).get("@odata.id") or "")
    member = ref.rstrip("/").rsplit("/", 1)[-1].lower()
    if (member not in req.tenant.users and member not in req.tenant.groups) or member == group.id:
        raise GraphError(400, "Request_BadRequest", "Invalid object identifier in '@odata.id'.")
    if member in group.members:
        raise GraphError(400, "Request_BadRequest",
                         "One or more added object references already exist for the following modified properties: "
                         "'members'.")
    req.tenant.add_member(group, member)
    return GraphResult(204, None)


@route("DELETE", "/groups/{id}/members/{member}/$ref", rf"/groups/{_ID}/members/(?P<member>[^/]+)/\$ref",
       WRITE_MEMBERS)
async def remove_group_member(req: GraphRequest) -> GraphResult:
    group = find_group(req)
    if not req.tenant.remove_member(group, req.params["member"].lower()):
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{req.params['member']}' does not exist or one of its queried reference-property "
                         "objects are not present.")
    return GraphResult(204, None)


# ---- reports -------------------------------------------------------------------------------------------

# https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails: "supports only the
# $filter and $orderBy OData query parameters". $skiptoken belongs to the nextLinks the emulator writes; $top is
# accepted although the page does not name it (unverified against real Graph: the sweep sends $top=999).
REPORT_QUERY_OPTIONS = frozenset({"filter", "orderby", "skiptoken", "top"})

METHOD_SETS = (
    [], ["email"], ["mobilePhone"], ["email", "mobilePhone"], ["microsoftAuthenticatorPush", "softwareOneTimePasscode"],
    ["email", "microsoftAuthenticatorPush"], ["mobilePhone", "microsoftAuthenticatorPush", "softwareOneTimePasscode"],
    ["securityQuestion", "email"],
)


@route("GET", "/reports/authenticationMethods/userRegistrationDetails",
       r"/reports/authenticationMethods/userRegistrationDetails", READ_REPORTS)
async def user_registration_details(req: GraphRequest) -> GraphResult:
    throttle_reports(req)
    unsupported = sorted(k for k in req.query if k not in REPORT_QUERY_OPTIONS)
    if unsupported:  # e.g. $select, which real Graph may refuse on this report
        raise GraphError(400, "BadRequest", f"Query option '${unsupported[0]}' is not supported on "
                         "userRegistrationDetails: only $filter and $orderby are.")
    tenant = req.tenant
    if not tenant.premium():
        raise GraphError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                         f"Tenant {tenant.id} is not a B2C tenant and doesn't have premium license.")
    admins = {uid for role in tenant.roles.values() for member in role.members
              for uid in ([member] if member not in tenant.groups else tenant.flattened_members(member)[0])}

    def render(user: User) -> dict[str, Any]:
        methods = METHOD_SETS[int(user.id[-2:], 16) % len(METHOD_SETS)] if user.user_type == "Member" else []
        sspr_methods = [m for m in methods if m in ("email", "mobilePhone", "microsoftAuthenticatorPush",
                                                    "softwareOneTimePasscode", "securityQuestion")]
        registered = len(sspr_methods) >= 1
        enabled = user.user_type == "Member" and user.account_enabled is True
        return {
            "id": user.id, "userPrincipalName": user.upn, "userDisplayName": user.graph_property("displayName"),
            "userType": "guest" if user.user_type == "Guest" else "member", "isAdmin": user.id in admins,
            "isSsprRegistered": registered, "isSsprEnabled": enabled, "isSsprCapable": registered and enabled,
            "isMfaRegistered": any(m != "email" and m != "securityQuestion" for m in methods),
            "isMfaCapable": any(m != "email" and m != "securityQuestion" for m in methods),
            "isPasswordlessCapable": False, "isSystemPreferredAuthenticationMethodEnabled": False,
            "systemPreferredAuthenticationMethods": [], "userPreferredMethodForSecondaryAuthentication": "none",
            "methodsRegistered": list(methods), "lastUpdatedDateTime": "2026-01-05T03:00:00Z",
        }

    return paged(req, tenant.user_list(), "reports/authenticationMethods/userRegistrationDetails", render)


def throttle_reports(req: GraphRequest) -> None:
    """Reports APIs allow 5 requests per 10 s per app: a sliding window per client id."""
    now = time.monotonic()
    calls = req.state.report_calls.setdefault(req.claims.get("azp", "?"), deque())
    while calls and now - calls[0] >= REPORT_WINDOW_S:
        calls.popleft()
    if len(calls) >= REPORT_LIMIT:
        wait = max(1, math.ceil(REPORT_WINDOW_S - (now - calls[0])))
        raise GraphError(429, "TooManyRequests", "Too many requests. Please retry after the time in Retry-After.",
                         headers={"Retry-After": str(wait)})
    calls.append(now)


# ---- $batch --------------------------------------------------------------------------------------------


@route("POST", "/$batch", r"/\$batch", NO_PERMISSION)
async def batch(req: GraphRequest) -> GraphResult:
    body = json_object(req)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > BATCH_LIMIT:
        raise GraphError(400, "BadRequest", f"Number of batch requests exceeds the limit of {BATCH_LIMIT}.")
    ids = [str(r.get("id")) if isinstance(r, dict) else "" for r in requests]
    if len(set(ids)) != len(ids) or not all(ids):
        raise GraphError(400, "BadRequest", "Batch request ids must be present and unique.")
    statuses: dict[str, int] = {}
    responses = []
    for sub in requests:
        sub_id = str(sub["id"])
        depends = sub.get("dependsOn") or []
        if any(statuses.get(str(d), 424) >= 400 for d in depends):
            result = GraphResult(424, error_body("FailedDependency", "A dependency of this request failed.",
                                                 str(uuid.uuid4())))
        else:
            url = str(sub.get("url", ""))
            parts = urlsplit(url if url.startswith("/") else "/" + url)
            path = parts.path[len("/v1.0"):] if parts.path.lower().startswith("/v1.0/") else parts.path
            result = await dispatch(req.state, str(sub.get("method", "GET")).upper(), path,
                                    parse_qsl(parts.query, keep_blank_values=True), sub.get("body"),
                                    {**req.headers, **(sub.get("headers") or {})}, req.origin, claims=req.claims)
        statuses[sub_id] = result.status
        entry: dict[str, Any] = {"id": sub_id, "status": result.status,
                                 "headers": {"Content-Type": result.content_type or "application/json",
                                             **result.headers}}
        if result.body is not None:
            entry["body"] = result.body
        elif result.raw is not None:  # the emulator's choice: text as it is, other bytes base64-encoded
            text = (result.content_type or "").startswith("text/")
            entry["body"] = result.raw.decode() if text else base64.b64encode(result.raw).decode()
        responses.append(entry)
    return GraphResult(200, {"responses": responses})


# ---- dispatch ------------------------------------------------------------------------------------------


def require(req: GraphRequest, accepted: frozenset[str]) -> None:
    granted = set(req.claims.get("roles") or ()) | set(str(req.claims.get("scp") or "").split())
    if accepted and not granted & accepted:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, path matched some route with another method)."""
    path_known = False
    for candidate in ROUTES:
        found = candidate.pattern.match(path)
        if found:
            if candidate.method == method:
                return candidate, found.groupdict(), True
            path_known = True
    return None, {}, path_known


async def dispatch(state: EmulatorState, method: str, path: str, raw_query: list[tuple[str, str]], body: Any,
                   headers: Mapping[str, str], origin: str, *, claims: dict[str, Any] | None = None,
                   authorization: str | None = None) -> GraphResult:
    """Run one Graph request (top level or inside $batch) and return its result, errors included."""
    request_id = str(uuid.uuid4())
    path = path.rstrip("/") or "/"
    found, params, path_known = match(method, path)
    template = found.template if found else "(unknown)"
    try:
        if claims is None:
            claims = validate_graph_token(state, f"{origin}/{state.tenant.id}/v2.0", authorization)
        if found is None:
            if path_known:
                raise GraphError(405, "Request_BadRequest",
                                 "Specified HTTP method is not allowed for the request target.")
            segment = path.strip("/").split("/")[-1] or "/"
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        decision = state.faults.decide(method, f"/v1.0{path}", "graph")
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision.error is not None:
            state.stats.faults_fired += 1
            rule = decision.error
            code, message = default_code(rule.status or 500)
            extra = {"Retry-After": str(math.ceil(rule.retryAfter))} if rule.retryAfter is not None else {}
            raise GraphError(rule.status or 500, rule.code or code, rule.message or message, headers=extra)
        query = {k.lstrip("$").lower(): v for k, v in raw_query}
        req = GraphRequest(state, method, path, query, raw_query, body, headers, claims, origin, params)
        require(req, found.permissions)
        result = await found.handler(req)
    except GraphError as err:
        result = GraphResult(err.status, error_body(err.code, err.message, request_id), dict(err.headers))
    state.stats.count_graph(f"{method} {template}", result.status)
    result.headers.update(graph_headers(request_id, headers.get("client-request-id")))
    return result


async def handle(request: web.Request) -> web.Response:
    """aiohttp entry point for everything under /v1.0."""
    state = request.app[STATE]
    body: Any = None
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                rid = str(uuid.uuid4())
                return web.json_response(
                    error_body("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.", rid),
                    status=400, headers=graph_headers(rid))
    path = request.path[len("/v1.0"):]
    result = await dispatch(state, request.method, path, list(request.query.items()), body, request.headers,
                            state.origin(request), authorization=request.headers.get("Authorization"))
    if result.raw is not None:
        return web.Response(status=result.status, headers=result.headers, body=result.raw,
                            content_type=result.content_type or "application/octet-stream")
    if result.body is None:
        return web.Response(status=result.status, headers=result.headers)
    return _json(result)


def _json(result: GraphResult) -> web.Response:
    response = web.Response(status=result.status, headers=result.headers,
                            body=json.dumps(result.body, separators=(",", ":")).encode())
    response.headers["Content-Type"] = JSON_CONTENT_TYPE
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/v1.0/{tail:.*}", handle)
