"""GET /api/manage/tenant/eligibility: is the tenant, and are its synced users in scope, entitled to SSPR?

Without a query it counts the scope the Enablement table holds; with `scope` (and `groupId`) it counts the scope
an admin is looking at before applying it, and names the synced users a finding is about.
"""

from typing import Annotated, Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.domain.ids import GUID_PATTERN
from shared.domain.policy import Scope
from shared.services.tenant import ScopeInView

bp = func.Blueprint()


class FindingDocument(BaseModel):
    code: str
    severity: Literal["ok", "warning", "blocking"]
    counts: dict[str, int]
    message: str


class ScopeDocument(BaseModel):
    """Who counted as in scope: "enablement" (the Enablement table's rows once an enablement run has completed;
    `runId` names the latest completed run), "allEnabledMembers" (no run has completed yet: every enabled member) or
    "requested" (the `scope` and `groupId` asked about; `groupName` names the group, `users` how many counted)."""

    source: Literal["enablement", "allEnabledMembers", "requested"]
    runId: str | None = None
    scope: Literal["all", "selected", "none"] | None = None
    groupId: str | None = None
    groupName: str | None = None
    users: int | None = None


class AffectedUser(BaseModel):
    id: str
    displayName: str
    userPrincipalName: str


class UnservedDocument(BaseModel):
    id: str
    userPrincipalName: str
    reason: Literal["writeback-off", "no-live-agent", "outside-agent-ous", "no-sid"]


class OnPremisesDocument(BaseModel):
    """Synced users and the on-premises agents: whether writeback is on, how many agents are live, and the first
    100 synced users in scope who cannot reset here now, with why."""

    writeback: bool
    agentsLive: int
    notServed: list[UnservedDocument]


class EligibilityDocument(BaseModel):
    """Findings about the tenant's entitlement to SSPR, worded in the caller's language (en or sv), and the first
    50 users synced from on-premises AD without Entra ID P1/P2 (`affectedMore`: how many more)."""

    lang: Literal["en", "sv"]
    severity: Literal["ok", "warning", "blocking"]
    scope: ScopeDocument
    findings: list[FindingDocument]
    affected: list[AffectedUser]
    affectedMore: int
    onPremises: OnPremisesDocument | None = None


class EligibilityQuery(BaseModel):
    """The scope to count instead of the Enablement table's: everyone, one group (nested included) or nobody."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["all", "selected", "none"] | None = None
    groupId: Annotated[str | None, Field(pattern=GUID_PATTERN, max_length=36)] = None
    includeGuests: bool = False
    lang: Literal["en", "sv"] | None = None


class GroupsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search: Annotated[str, Field(max_length=100)] = ""
    continuation: Annotated[str | None, Field(max_length=2000)] = None


class GroupDocument(BaseModel):
    id: str
    displayName: str
    description: str
    userCount: int | None = Field(description="users among its members, nested groups included, as Graph counts")


class GroupPageDocument(BaseModel):
    """Groups whose name matches, a page of 10, with the continuation of the next page of the same search."""

    value: list[GroupDocument]
    continuation: str | None
    total: int | None


OPERATIONS = [
    Operation(
        "get", "manage/groups", "Find groups by name (the admin page's group picker)", "tenant", "admin-read",
        responses={200: GroupPageDocument},
        parameters=[{"name": "search", "in": "query", "schema": {"type": "string", "maxLength": 100},
                     "description": "words the group's name has (each the start of a word in it); empty: every group"},
                    {"name": "continuation", "in": "query", "schema": {"type": "string"},
                     "description": "the next page of the same search"}],
        description="Graph `$search` on displayName (an advanced query), 10 a page, with each group's user count "
                    "(`transitiveMembers/microsoft.graph.user/$count`).",
    ),
    Operation(
        "get", "manage/tenant/eligibility", "Tenant eligibility for self-service password reset", "tenant",
        "admin-read", responses={200: EligibilityDocument},
        parameters=[{"name": "Accept-Language", "in": "header", "schema": {"type": "string"},
                     "description": "sv for Swedish messages; anything else gives English"},
                    {"name": "scope", "in": "query", "schema": {"enum": ["all", "selected", "none"]},
                     "description": "count this scope instead of the Enablement table's (the scope an admin is "
                                    "looking at before applying it)"},
                    {"name": "groupId", "in": "query", "schema": {"type": "string", "format": "uuid"},
                     "description": "with scope=selected: the group"},
                    {"name": "includeGuests", "in": "query", "schema": {"type": "boolean"}}],
        description="Paid plan or trial, Entra ID P1/P2, and how many synced users in scope lack P1/P2. Codes: "
                    "PAID_PLAN, TRIAL_ONLY, NO_ACTIVE_PLAN, PREMIUM_PRESENT, PREMIUM_TRIAL_ONLY, PREMIUM_ABSENT, "
                    "NO_SYNCED_USERS, SYNCED_USERS_LICENSED, SYNCED_USERS_WITHOUT_PREMIUM, ONPREM_ALL_SERVED, "
                    "ONPREM_SOME_NOT_SERVED (the last two while on-premises writeback is on).",
    ),
]


@bp.route(route="manage/groups", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def find_groups(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    query = api.parse_query(req, GroupsQuery)
    found = await composition.root.group_picker.search(query.search.strip(), query.continuation)
    return api.json_response({
        "value": [{"id": g.id, "displayName": g.display_name, "description": g.description, "userCount": g.user_count}
                  for g in found.groups],
        "continuation": found.continuation, "total": found.total,
    })


@bp.route(route="manage/tenant/eligibility", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def tenant_eligibility(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    query = api.parse_query(req, EligibilityQuery)
    language = api.request_language(req)
    in_view = None if query.scope is None else ScopeInView(
        Scope(query.scope), query.groupId.lower() if query.scope == "selected" and query.groupId else None,
        query.includeGuests)
    report = await composition.root.tenant_eligibility.report(language, in_view)
    return api.json_response(report.as_dict(), headers={"Content-Language": language, "Vary": "Accept-Language"})
