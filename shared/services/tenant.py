"""Tenant eligibility: is this tenant, and are its users in scope, entitled to self-service password reset?

Reads `/directory/subscriptions`, `/subscribedSkus` and one pass of `/users` selecting only `assignedLicenses`
and `onPremisesSyncEnabled` (999 users a page), so a 100,000-user tenant costs about 100 Graph requests instead
of one `licenseDetails` call per user. Which users are "in scope" comes from a `ScopeSource`:

- `EnablementRows` (what the app uses): the rows of the Enablement table, once an enablement run has completed,
  reported as source "enablement" with that run's id. The rows are streamed into an `EnabledIdIndex` (16 bytes per
  user: 16 MB for a million users in scope, not a set of strings) and the one pass over `/users` is checked
  against it. While a later run is going (or after one failed), the table is what the sign-in hook sees: the
  completed run's rows plus what the later run has written and swept so far.
- `AllEnabledMembers`: every enabled member user, read from Graph itself: the fallback, source
  "allEnabledMembers", while no enablement run has completed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared import i18n
from shared.adapters.enablement_store import EnablementStore
from shared.domain.eligibility import (
    Eligibility,
    LicenceCatalog,
    ScopeTally,
    SubscribedSku,
    Subscription,
    UserLicensing,
    assess,
    catalog_key,
)
from shared.domain.enablement import EnabledIdIndex

CATALOG_DIR = Path(__file__).resolve().parents[2] / "web" / "i18n"


@dataclass(frozen=True)
class ScopeMembers:
    """The users in scope: `ids` to test membership, or None for "every enabled member user of the directory"."""

    source: str
    ids: Container[str] | None
    run_id: str | None = None  # the completed enablement run the rows come from


class ScopeSource(Protocol):
    """Where the users in scope come from."""

    async def members(self) -> ScopeMembers: ...


class AllEnabledMembers:
    """Scope = every enabled member user (guests and disabled accounts left out), read from Graph itself."""

    name = "allEnabledMembers"

    async def members(self) -> ScopeMembers:
        return ScopeMembers(self.name, None)


class EnablementRows:
    """Scope = the Enablement table's rows once a run has completed; all enabled members until then."""

    name = "enablement"

    def __init__(self, store: EnablementStore, fallback: ScopeSource | None = None) -> None:
        self._store = store
        self._fallback = fallback or AllEnabledMembers()

    async def members(self) -> ScopeMembers:
        completed = await self._store.latest_completed_run()
        if completed is None:
            return await self._fallback.members()
        index = EnabledIdIndex()
        async for partition, user_id in self._store.enabled_user_ids():
            index.add(partition, user_id)
        return ScopeMembers(self.name, index.freeze(), completed.id)


def catalog(language: str) -> dict[str, str]:
    """The eligibility findings' texts in `language`."""
    return i18n.catalog("eligibility", language)


@dataclass(frozen=True)
class EligibilityReport:
    eligibility: Eligibility
    scope: ScopeMembers
    language: str

    def as_dict(self) -> dict[str, object]:
        messages = catalog(self.language)
        return {
            "lang": self.language,
            "severity": self.eligibility.severity.value,
            "scope": {"source": self.scope.source, **({"runId": self.scope.run_id} if self.scope.run_id else {})},
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


class TenantDirectory(Protocol):
    """What the eligibility check reads of the directory: subscriptions, SKUs and every user's licences."""

    async def subscriptions(self) -> list[Subscription]: ...

    async def subscribed_skus(self) -> list[SubscribedSku]: ...

    def user_licensing_pages(self, page_size: int = 999) -> AsyncIterator[list[UserLicensing]]: ...


@dataclass(frozen=True)
class TenantEligibilityService:
    graph: TenantDirectory
    scope: ScopeSource

    async def report(self, language: str) -> EligibilityReport:
        subscriptions = await self.graph.subscriptions()
        skus = await self.graph.subscribed_skus()
        licences = LicenceCatalog(skus)
        scope = await self.scope.members()
        in_scope = scope.ids
        tally = ScopeTally()
        async for page in self.graph.user_licensing_pages():
            for user in page:
                if _in_scope(user, in_scope):
                    tally.add(synced=user.synced, has_premium=licences.has_premium(user.licenses))
        return EligibilityReport(assess(subscriptions, skus, tally), scope, language)


def _in_scope(user: UserLicensing, ids: Container[str] | None) -> bool:
    return user.enabled_member if ids is None else user.id in ids
