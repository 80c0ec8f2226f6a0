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

An admin choosing a scope asks about that scope instead (`ScopeInView`, source "requested"): everyone (the one pass
over `/users`), the users of one group (its `transitiveMembers/microsoft.graph.user` pages) or nobody, before any
run, so the numbers change with the scope being looked at. A finding about synced users names the first of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared import i18n
from shared.adapters.enablement_store import EnablementStore
from shared.domain import onprem
from shared.domain.clock import Clock, utc_now
from shared.domain.eligibility import (
    Eligibility,
    LicenceCatalog,
    ScopeTally,
    SubscribedSku,
    Subscription,
    UnservedUser,
    UserLicensing,
    assess,
    catalog_key,
)
from shared.domain.enablement import EnabledIdIndex
from shared.domain.onprem_jobs import Heartbeat
from shared.domain.policy import Policy, Scope

CATALOG_DIR = Path(__file__).resolve().parents[2] / "web" / "i18n"


@dataclass(frozen=True)
class ScopeMembers:
    """The users in scope: `ids` to test membership, or None for "every enabled member user of the directory"."""

    source: str
    ids: Container[str] | None
    run_id: str | None = None  # the completed enablement run the rows come from


@dataclass(frozen=True)
class ScopeInView:
    """The scope an admin is looking at (not yet applied): everyone, one group's users, or nobody."""

    scope: Scope
    group_id: str | None = None
    include_guests: bool = False


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
class OnPremisesView:
    """The synced users as the on-premises agents see them: who cannot reset here, and why (the first 100)."""

    writeback: bool
    agents_live: int
    unserved: list[UnservedUser]

    def as_dict(self) -> dict[str, object]:
        return {"writeback": self.writeback, "agentsLive": self.agents_live,
                "notServed": [{"id": u.id, "userPrincipalName": u.upn, "reason": u.coverage.value}
                              for u in self.unserved]}


@dataclass(frozen=True)
class EligibilityReport:
    eligibility: Eligibility
    scope: ScopeMembers
    language: str
    on_premises: OnPremisesView | None = None
    tally: ScopeTally | None = None
    in_view: ScopeInView | None = None
    group_name: str | None = None

    def _scope(self) -> dict[str, object]:
        found: dict[str, object] = {"source": self.scope.source}
        if self.scope.run_id:
            found["runId"] = self.scope.run_id
        if self.in_view is not None:
            found.update(scope=self.in_view.scope.value, groupId=self.in_view.group_id, groupName=self.group_name)
        if self.tally is not None:
            found["users"] = self.tally.users
        return found

    def as_dict(self) -> dict[str, object]:
        messages = catalog(self.language)
        tally = self.tally or ScopeTally()
        return {
            "lang": self.language,
            "severity": self.eligibility.severity.value,
            "scope": self._scope(),
            "affected": [{"id": u.id, "displayName": u.display_name, "userPrincipalName": u.upn}
                         for u in tally.affected],
            "affectedMore": tally.synced_without_premium - len(tally.affected),
            "findings": [
                {
                    "code": f.code.value,
                    "severity": f.severity.value,
                    "counts": dict(f.counts),
                    "message": messages[catalog_key(f.code)].format_map(dict(f.counts)),
                }
                for f in self.eligibility.findings
            ],
            **({"onPremises": self.on_premises.as_dict()} if self.on_premises else {}),
        }


class TenantDirectory(Protocol):
    """What the eligibility check reads of the directory: subscriptions, SKUs and every user's licences."""

    async def subscriptions(self) -> list[Subscription]: ...

    async def subscribed_skus(self) -> list[SubscribedSku]: ...

    def user_licensing_pages(self, page_size: int = 999) -> AsyncIterator[list[UserLicensing]]: ...

    def group_licensing_pages(self, group_id: str) -> AsyncIterator[list[UserLicensing]]: ...

    async def group_name(self, group_id: str) -> str | None: ...


async def _no_users() -> AsyncIterator[list[UserLicensing]]:
    return
    yield


class Heartbeats(Protocol):
    async def heartbeats(self) -> list[Heartbeat]: ...


class PolicyReader(Protocol):
    async def get(self) -> Policy: ...


@dataclass(frozen=True)
class TenantEligibilityService:
    graph: TenantDirectory
    scope: ScopeSource
    agents: Heartbeats | None = None  # with `policies`: whether the on-premises agents serve each synced user
    policies: PolicyReader | None = None
    clock: Clock = utc_now

    async def report(self, language: str, in_view: ScopeInView | None = None) -> EligibilityReport:
        """The tenant's findings, counted over the scope of the Enablement table, or over `in_view` when given."""
        subscriptions = await self.graph.subscriptions()
        skus = await self.graph.subscribed_skus()
        licences = LicenceCatalog(skus)
        group_name = None
        if in_view is None:
            scope = await self.scope.members()
            pages, keep = self.graph.user_licensing_pages(), _member_of(scope.ids)
        else:
            scope = ScopeMembers("requested", None)
            pages, keep = _pages_of(self.graph, in_view), _counted(in_view.include_guests)
            if in_view.scope is Scope.SELECTED and in_view.group_id:
                group_name = await self.graph.group_name(in_view.group_id)
        tally = ScopeTally()
        onprem_known = self.agents is not None and self.policies is not None
        writeback = onprem_known and (await self.policies.get()).on_premises.writeback  # type: ignore[union-attr]
        beats = await self.agents.heartbeats() if writeback and self.agents else []
        now = self.clock()
        async for page in pages:
            for user in page:
                if keep(user):
                    coverage = onprem.coverage(writeback, beats, user.on_premises, now) \
                        if user.synced and onprem_known else None
                    tally.add(synced=user.synced, has_premium=licences.has_premium(user.licenses), coverage=coverage,
                              user=user)
        view = OnPremisesView(writeback, sum(onprem.is_live(b, now) for b in beats), tally.unserved) \
            if onprem_known else None
        return EligibilityReport(assess(subscriptions, skus, tally), scope, language, view, tally, in_view,
                                 group_name)


def _pages_of(graph: TenantDirectory, in_view: ScopeInView) -> AsyncIterator[list[UserLicensing]]:
    if in_view.scope is Scope.ALL:
        return graph.user_licensing_pages()
    if in_view.scope is Scope.SELECTED and in_view.group_id:
        return graph.group_licensing_pages(in_view.group_id)
    return _no_users()


def _member_of(ids: Container[str] | None) -> Callable[[UserLicensing], bool]:
    return lambda user: user.enabled_member if ids is None else user.id in ids


def _counted(include_guests: bool) -> Callable[[UserLicensing], bool]:
    """In scope as an enablement run counts it (shared/domain/enablement.in_scope): enabled, guests only if asked."""
    return lambda user: user.account_enabled and (user.user_type.lower() != "guest" or include_guests)
