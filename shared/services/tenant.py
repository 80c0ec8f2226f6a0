"""Tenant eligibility: is this tenant, and are its users in scope, entitled to self-service password reset?

Reads `/directory/subscriptions`, `/subscribedSkus` and one pass of `/users` selecting only `assignedLicenses`
and `onPremisesSyncEnabled` (999 users a page), so a 100,000-user tenant costs about 100 Graph requests instead
of one `licenseDetails` call per user. Which users are "in scope" comes from a `ScopeSource`, so the report can
follow the Enablement table once it exists instead of all enabled members.
"""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from shared.adapters.graph import GraphGateway
from shared.domain.eligibility import (
    LANGUAGES,
    Eligibility,
    LicenceCatalog,
    ScopeTally,
    UserLicensing,
    assess,
    catalog_key,
)

CATALOG_DIR = Path(__file__).resolve().parents[2] / "web" / "i18n"


class ScopeSource(Protocol):
    """Where the users in scope come from."""

    @property
    def name(self) -> str: ...

    async def user_ids(self) -> AbstractSet[str] | None:
        """The ids of the users in scope, or None for "every enabled member user of the directory"."""
        ...


class AllEnabledMembers:
    """Scope = every enabled member user (guests and disabled accounts left out), read from Graph itself."""

    name = "allEnabledMembers"

    async def user_ids(self) -> AbstractSet[str] | None:
        return None


@cache
def catalog(language: str) -> dict[str, str]:
    """The message catalog of one language (web/i18n/<language>.json), read once per process."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}")
    with (CATALOG_DIR / f"{language}.json").open(encoding="utf-8") as file:
        return dict(json.load(file))


@dataclass(frozen=True)
class EligibilityReport:
    eligibility: Eligibility
    scope_source: str
    language: str

    def as_dict(self) -> dict[str, object]:
        messages = catalog(self.language)
        return {
            "lang": self.language,
            "severity": self.eligibility.severity.value,
            "scope": {"source": self.scope_source},
            "findings": [
                {
                    "code": f.code.value,
                    "severity": f.severity.value,
                    "counts": dict(f.counts),
                    "message": messages[catalog_key(f.code)].format_map(dict(f.counts)),
                }
                for f in self.eligibility.findings
            ],
        }


class TenantEligibilityService:
    def __init__(self, graph: GraphGateway, scope: ScopeSource) -> None:
        self._graph = graph
        self._scope = scope

    async def report(self, language: str) -> EligibilityReport:
        subscriptions = await self._graph.subscriptions()
        skus = await self._graph.subscribed_skus()
        licences = LicenceCatalog(skus)
        in_scope = await self._scope.user_ids()
        tally = ScopeTally()
        async for page in self._graph.user_licensing_pages():
            for user in page:
                if _in_scope(user, in_scope):
                    tally.add(synced=user.synced, has_premium=licences.has_premium(user.licenses))
        return EligibilityReport(assess(subscriptions, skus, tally), self._scope.name, language)


def _in_scope(user: UserLicensing, ids: AbstractSet[str] | None) -> bool:
    return user.enabled_member if ids is None else user.id in ids
