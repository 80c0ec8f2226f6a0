"""Tenant eligibility for SSPR: the rules that turn subscriptions, SKUs and a tally of users in scope into findings.

The seed article's facts (contracts.md section 1): SSPR for cloud users needs a paid Microsoft 365 plan, never a
trial; users synchronised from on-premises AD need Entra ID P1 or P2 (and password writeback) to reset. Every
finding carries a stable code, a severity and the counts behind it; its wording lives in the message catalogs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shared.domain.onprem import Coverage, OnPremAccount

AAD_PREMIUM = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
AAD_PREMIUM_P2 = "eec0eb4f-6444-4f95-aba0-50c24d67f998"
PREMIUM_PLAN_IDS = frozenset({AAD_PREMIUM, AAD_PREMIUM_P2})

# "Warning" is Microsoft's grace period after expiry: the services keep working, so the licence still counts.
ACTIVE_STATUSES = frozenset({"Enabled", "Warning"})
PROVISIONED = "Success"



class Severity(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BLOCKING = "blocking"


SEVERITY_ORDER = {Severity.OK: 0, Severity.WARNING: 1, Severity.BLOCKING: 2}


class FindingCode(StrEnum):
    """Stable codes; the catalogs key their sentences as `eligibility.<code>`."""

    PAID_PLAN = "PAID_PLAN"
    TRIAL_ONLY = "TRIAL_ONLY"
    NO_ACTIVE_PLAN = "NO_ACTIVE_PLAN"
    PREMIUM_PRESENT = "PREMIUM_PRESENT"
    PREMIUM_TRIAL_ONLY = "PREMIUM_TRIAL_ONLY"
    PREMIUM_ABSENT = "PREMIUM_ABSENT"
    NO_SYNCED_USERS = "NO_SYNCED_USERS"
    SYNCED_USERS_LICENSED = "SYNCED_USERS_LICENSED"
    SYNCED_USERS_WITHOUT_PREMIUM = "SYNCED_USERS_WITHOUT_PREMIUM"
    ONPREM_ALL_SERVED = "ONPREM_ALL_SERVED"
    ONPREM_SOME_NOT_SERVED = "ONPREM_SOME_NOT_SERVED"


def catalog_key(code: FindingCode) -> str:
    return f"eligibility.{code.value}"


@dataclass(frozen=True)
class Subscription:
    """One commercial subscription (`/directory/subscriptions`)."""

    sku_id: str
    sku_part_number: str
    is_trial: bool
    status: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class ServicePlan:
    plan_id: str
    name: str
    provisioning_status: str


@dataclass(frozen=True)
class SubscribedSku:
    """One SKU the tenant holds (`/subscribedSkus`) and the service plans it contains."""

    sku_id: str
    sku_part_number: str
    capability_status: str
    enabled_units: int
    service_plans: tuple[ServicePlan, ...]

    def premium_plans(self) -> frozenset[str]:
        """The Entra ID P1/P2 plans this SKU provides right now (none when the SKU is suspended or locked out)."""
        if self.capability_status not in ACTIVE_STATUSES:
            return frozenset()
        return frozenset(
            p.plan_id for p in self.service_plans if p.plan_id in PREMIUM_PLAN_IDS and p.provisioning_status == PROVISIONED
        )


@dataclass(frozen=True)
class AssignedLicense:
    """A licence assigned to a user (`assignedLicenses`): a SKU with some of its plans possibly switched off."""

    sku_id: str
    disabled_plans: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserLicensing:
    """What eligibility needs of one directory user: who, whether enabled, member or guest, synced, licences."""

    id: str
    account_enabled: bool
    user_type: str
    synced: bool
    licenses: tuple[AssignedLicense, ...]
    upn: str = ""
    on_premises: OnPremAccount | None = None  # a synced user's AD account (SID, DN): which agent serves them
    display_name: str = ""

    @property
    def enabled_member(self) -> bool:
        return self.account_enabled and self.user_type.lower() == "member"


class LicenceCatalog:
    """Which SKUs grant Entra ID P1/P2, so a user's `assignedLicenses` answer "premium?" without a Graph call."""

    def __init__(self, skus: Iterable[SubscribedSku]) -> None:
        self._premium_by_sku: dict[str, frozenset[str]] = {}
        for sku in skus:
            plans = sku.premium_plans()
            if plans:
                self._premium_by_sku[sku.sku_id.lower()] = plans

    @property
    def premium_sku_ids(self) -> frozenset[str]:
        return frozenset(self._premium_by_sku)

    def has_premium(self, licenses: Iterable[AssignedLicense]) -> bool:
        for licence in licenses:
            plans = self._premium_by_sku.get(licence.sku_id.lower())
            # A plan disabled in the assignment is not provisioned for that user.
            if plans and plans - {p.lower() for p in licence.disabled_plans}:
                return True
        return False


AFFECTED_SHOWN = 50  # the synced users without P1/P2 a finding names; the count says how many more there are
UNSERVED_LISTED = 100  # the synced users the report names who cannot reset here (the counts cover them all)


@dataclass(frozen=True)
class UnservedUser:
    id: str
    upn: str
    coverage: Coverage


@dataclass
class ScopeTally:
    """Counts over the users in scope, accumulated one user at a time (memory stays flat in the tenant's size), and
    the first AFFECTED_SHOWN users synced without Entra ID P1/P2, so a finding can name who it is about."""

    users: int = 0
    synced: int = 0
    synced_without_premium: int = 0
    coverage: dict[Coverage, int] = field(default_factory=dict)  # synced users by whether the agents serve them
    unserved: list[UnservedUser] = field(default_factory=list)  # the first UNSERVED_LISTED not served
    affected: list[UserLicensing] = field(default_factory=list)  # the first AFFECTED_SHOWN without P1/P2

    def add(self, *, synced: bool, has_premium: bool, coverage: Coverage | None = None,
            user: UserLicensing | None = None) -> None:
        self.users += 1
        if synced:
            self.synced += 1
            if not has_premium:
                self.synced_without_premium += 1
                if user is not None and len(self.affected) < AFFECTED_SHOWN:
                    self.affected.append(user)
            if coverage is not None:
                self.coverage[coverage] = self.coverage.get(coverage, 0) + 1
                if coverage is not Coverage.SERVED and user is not None and len(self.unserved) < UNSERVED_LISTED:
                    self.unserved.append(UnservedUser(user.id, user.upn, coverage))


@dataclass(frozen=True)
class Finding:
    code: FindingCode
    severity: Severity
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Eligibility:
    findings: tuple[Finding, ...]

    @property
    def severity(self) -> Severity:
        """The worst finding: "blocking" means SSPR cannot work for the tenant's cloud users as things stand."""
        return max((f.severity for f in self.findings), key=SEVERITY_ORDER.__getitem__, default=Severity.OK)


def assess(subscriptions: Iterable[Subscription], skus: Iterable[SubscribedSku], tally: ScopeTally) -> Eligibility:
    subscriptions = list(subscriptions)
    skus = list(skus)
    findings = [_plan_finding(subscriptions), _premium_finding(subscriptions, skus), _synced_finding(tally)]
    onprem = _onprem_finding(tally)
    return Eligibility(tuple(findings + ([onprem] if onprem else [])))


def _plan_finding(subscriptions: list[Subscription]) -> Finding:
    active = [s for s in subscriptions if s.active]
    paid = sum(1 for s in active if not s.is_trial)
    trial = len(active) - paid
    counts = {"paidSubscriptions": paid, "trialSubscriptions": trial}
    if paid:
        return Finding(FindingCode.PAID_PLAN, Severity.OK, counts)
    if trial:
        return Finding(FindingCode.TRIAL_ONLY, Severity.BLOCKING, counts)
    return Finding(FindingCode.NO_ACTIVE_PLAN, Severity.BLOCKING, counts)


def _premium_finding(subscriptions: list[Subscription], skus: list[SubscribedSku]) -> Finding:
    premium_skus = {sku.sku_id.lower(): sku for sku in skus if sku.premium_plans()}
    premium_subscriptions = [s for s in subscriptions if s.active and s.sku_id.lower() in premium_skus]
    counts = {"premiumLicences": sum(sku.enabled_units for sku in premium_skus.values())}
    if not premium_skus:
        return Finding(FindingCode.PREMIUM_ABSENT, Severity.WARNING, counts)
    # A SKU listed without a matching subscription (e.g. assigned through a partner) counts as paid.
    if premium_subscriptions and all(s.is_trial for s in premium_subscriptions):
        return Finding(FindingCode.PREMIUM_TRIAL_ONLY, Severity.WARNING, counts)
    return Finding(FindingCode.PREMIUM_PRESENT, Severity.OK, counts)


def _synced_finding(tally: ScopeTally) -> Finding:
    counts = {"usersInScope": tally.users, "syncedUsers": tally.synced,
              "syncedWithoutPremium": tally.synced_without_premium}
    if tally.synced == 0:
        return Finding(FindingCode.NO_SYNCED_USERS, Severity.OK, counts)
    if tally.synced_without_premium == 0:
        return Finding(FindingCode.SYNCED_USERS_LICENSED, Severity.OK, counts)
    return Finding(FindingCode.SYNCED_USERS_WITHOUT_PREMIUM, Severity.WARNING, counts)


def _onprem_finding(tally: ScopeTally) -> Finding | None:
    """Whether the synced users in scope can reset here, through the on-premises agent (docs/onprem.md); none
    while writeback is off (the synced findings say what that means, and the report lists the users)."""
    by = tally.coverage
    if not tally.synced or not by or by.get(Coverage.WRITEBACK_OFF):
        return None
    served = by.get(Coverage.SERVED, 0)
    counts = {"syncedUsers": tally.synced, "served": served, "notServed": tally.synced - served,
              "noLiveAgent": by.get(Coverage.NO_LIVE_AGENT, 0), "outsideAgentOus": by.get(Coverage.OUTSIDE_AGENT_OUS, 0),
              "noSid": by.get(Coverage.NO_SID, 0)}
    if served == tally.synced:
        return Finding(FindingCode.ONPREM_ALL_SERVED, Severity.OK, counts)
    return Finding(FindingCode.ONPREM_SOME_NOT_SERVED, Severity.WARNING, counts)
