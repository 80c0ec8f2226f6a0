"""GET /api/manage/tenant/eligibility: is the tenant, and are its synced users in scope, entitled to SSPR?"""

from typing import Literal

import azure.functions as func
from pydantic import BaseModel

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.i18n import choose_language

bp = func.Blueprint()


class FindingDocument(BaseModel):
    code: str
    severity: Literal["ok", "warning", "blocking"]
    counts: dict[str, int]
    message: str


class ScopeDocument(BaseModel):
    """Who counted as in scope: "enablement" (the Enablement table's rows once an enablement run has completed;
    `runId` names the latest completed run) or "allEnabledMembers" (no run has completed yet: every enabled member)."""

    source: Literal["enablement", "allEnabledMembers"]
    runId: str | None = None


class EligibilityDocument(BaseModel):
    """Findings about the tenant's entitlement to SSPR, worded in the caller's language (en or sv)."""

    lang: Literal["en", "sv"]
    severity: Literal["ok", "warning", "blocking"]
    scope: ScopeDocument
    findings: list[FindingDocument]


OPERATIONS = [
    Operation(
        "get", "manage/tenant/eligibility", "Tenant eligibility for self-service password reset", "tenant",
        "admin-read", responses={200: EligibilityDocument},
        parameters=[{"name": "Accept-Language", "in": "header", "schema": {"type": "string"},
                     "description": "sv for Swedish messages; anything else gives English"}],
        description="Paid plan or trial, Entra ID P1/P2, and how many synced users in scope lack P1/P2. Codes: "
                    "PAID_PLAN, TRIAL_ONLY, NO_ACTIVE_PLAN, PREMIUM_PRESENT, PREMIUM_TRIAL_ONLY, PREMIUM_ABSENT, "
                    "NO_SYNCED_USERS, SYNCED_USERS_LICENSED, SYNCED_USERS_WITHOUT_PREMIUM.",
    ),
]


@bp.route(route="manage/tenant/eligibility", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def tenant_eligibility(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    language = choose_language(req.headers.get("Accept-Language"))
    report = await composition.root.tenant_eligibility.report(language)
    return api.json_response(report.as_dict(), headers={"Content-Language": language, "Vary": "Accept-Language"})
