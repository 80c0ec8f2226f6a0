"""Tenant eligibility rules: paid vs trial, Entra ID P1/P2 from SKUs and assignments, synced users, languages."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from shared.domain.eligibility import (
    AAD_PREMIUM,
    AAD_PREMIUM_P2,
    AssignedLicense,
    FindingCode,
    LicenceCatalog,
    ScopeTally,
    ServicePlan,
    Severity,
    SubscribedSku,
    Subscription,
    UserLicensing,
    assess,
    catalog_key,
)
from shared.i18n import choose_language

CATALOGS = Path(__file__).resolve().parents[2] / "web" / "i18n"

SPB, P1_SKU, P2_SKU, E1 = "sku-spb", "sku-p1", "sku-p2", "sku-e1"
EXCHANGE = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"


def plan(plan_id: str, status: str = "Success") -> ServicePlan:
    return ServicePlan(plan_id, plan_id, status)


def sku(sku_id: str, *plans: ServicePlan, status: str = "Enabled", units: int = 10) -> SubscribedSku:
    return SubscribedSku(sku_id, sku_id.upper(), status, units, plans)


TENANT_SKUS = [
    sku(SPB, plan(AAD_PREMIUM), plan(EXCHANGE), units=100),
    sku(P2_SKU, plan(AAD_PREMIUM), plan(AAD_PREMIUM_P2), units=10),
    sku(E1, plan(EXCHANGE), units=50),
]


def sub(sku_id: str, trial: bool = False, status: str = "Enabled") -> Subscription:
    return Subscription(sku_id, sku_id.upper(), trial, status)


def codes(findings: object) -> list[FindingCode]:
    return [f.code for f in findings.findings]  # type: ignore[attr-defined]


def finding(result: object, code: FindingCode):  # type: ignore[no-untyped-def]
    return next(f for f in result.findings if f.code is code)  # type: ignore[attr-defined]


# ---- paid vs trial ----------------------------------------------------------------------------------------


def test_a_paid_subscription_makes_cloud_users_eligible() -> None:
    result = assess([sub(SPB), sub(E1, trial=True)], TENANT_SKUS, ScopeTally())
    paid = finding(result, FindingCode.PAID_PLAN)
    assert paid.severity is Severity.OK
    assert paid.counts == {"paidSubscriptions": 1, "trialSubscriptions": 1}


def test_only_trials_block_sspr_for_the_whole_tenant() -> None:
    result = assess([sub(SPB, trial=True), sub(P2_SKU, trial=True)], TENANT_SKUS, ScopeTally())
    assert finding(result, FindingCode.TRIAL_ONLY).severity is Severity.BLOCKING
    assert result.severity is Severity.BLOCKING
    assert FindingCode.PAID_PLAN not in codes(result)


def test_a_suspended_paid_subscription_does_not_count_as_paid() -> None:
    result = assess([sub(SPB, status="Suspended"), sub(E1, trial=True)], TENANT_SKUS, ScopeTally())
    assert FindingCode.TRIAL_ONLY in codes(result)


def test_a_subscription_in_its_grace_period_still_counts() -> None:
    result = assess([sub(SPB, status="Warning")], TENANT_SKUS, ScopeTally())
    assert FindingCode.PAID_PLAN in codes(result)


def test_no_active_subscription_at_all_is_blocking() -> None:
    result = assess([sub(SPB, status="Deleted")], [], ScopeTally())
    assert finding(result, FindingCode.NO_ACTIVE_PLAN).severity is Severity.BLOCKING


# ---- Entra ID P1/P2 in the tenant ------------------------------------------------------------------------


def test_premium_is_present_when_an_active_sku_provides_p1_or_p2() -> None:
    result = assess([sub(SPB), sub(P2_SKU)], TENANT_SKUS, ScopeTally())
    present = finding(result, FindingCode.PREMIUM_PRESENT)
    assert present.severity is Severity.OK
    assert present.counts == {"premiumLicences": 110}


def test_premium_is_absent_when_no_sku_provides_it() -> None:
    result = assess([sub(E1)], [sku(E1, plan(EXCHANGE))], ScopeTally())
    assert finding(result, FindingCode.PREMIUM_ABSENT).severity is Severity.WARNING
    assert result.severity is Severity.WARNING


def test_a_suspended_premium_sku_provides_nothing() -> None:
    skus = [sku(P1_SKU, plan(AAD_PREMIUM), status="Suspended"), sku(E1, plan(EXCHANGE))]
    result = assess([sub(P1_SKU, status="Suspended"), sub(E1)], skus, ScopeTally())
    assert FindingCode.PREMIUM_ABSENT in codes(result)


def test_a_premium_plan_that_is_not_provisioned_provides_nothing() -> None:
    skus = [sku(P1_SKU, plan(AAD_PREMIUM, status="PendingActivation"))]
    result = assess([sub(P1_SKU)], skus, ScopeTally())
    assert FindingCode.PREMIUM_ABSENT in codes(result)


def test_premium_only_from_a_trial_is_a_warning() -> None:
    skus = [sku(P1_SKU, plan(AAD_PREMIUM)), sku(E1, plan(EXCHANGE))]
    result = assess([sub(E1), sub(P1_SKU, trial=True)], skus, ScopeTally())
    assert finding(result, FindingCode.PREMIUM_TRIAL_ONLY).severity is Severity.WARNING
    assert FindingCode.PAID_PLAN in codes(result)


# ---- users: who has premium, synced users in scope -------------------------------------------------------


def test_a_user_has_premium_through_any_sku_that_carries_p1_or_p2() -> None:
    catalog = LicenceCatalog(TENANT_SKUS)
    assert catalog.has_premium([AssignedLicense(SPB)])
    assert catalog.has_premium([AssignedLicense(E1), AssignedLicense(P2_SKU.upper())])  # GUIDs compare case-blind
    assert not catalog.has_premium([AssignedLicense(E1)])
    assert not catalog.has_premium([])


def test_a_premium_plan_disabled_in_the_assignment_does_not_count() -> None:
    catalog = LicenceCatalog(TENANT_SKUS)
    assert not catalog.has_premium([AssignedLicense(SPB, frozenset({AAD_PREMIUM}))])
    # P2 SKU with only P1 switched off still carries P2.
    assert catalog.has_premium([AssignedLicense(P2_SKU, frozenset({AAD_PREMIUM}))])
    assert not catalog.has_premium([AssignedLicense(P2_SKU, frozenset({AAD_PREMIUM, AAD_PREMIUM_P2}))])


def test_synced_users_without_premium_are_counted_and_warned_about() -> None:
    tally = ScopeTally()
    tally.add(synced=False, has_premium=False)
    tally.add(synced=True, has_premium=True)
    tally.add(synced=True, has_premium=False)
    tally.add(synced=True, has_premium=False)
    result = assess([sub(SPB)], TENANT_SKUS, tally)
    synced = finding(result, FindingCode.SYNCED_USERS_WITHOUT_PREMIUM)
    assert synced.severity is Severity.WARNING
    assert synced.counts == {"usersInScope": 4, "syncedUsers": 3, "syncedWithoutPremium": 2}


def test_synced_users_all_licensed_is_ok() -> None:
    tally = ScopeTally()
    tally.add(synced=True, has_premium=True)
    result = assess([sub(SPB)], TENANT_SKUS, tally)
    assert finding(result, FindingCode.SYNCED_USERS_LICENSED).severity is Severity.OK
    assert result.severity is Severity.OK


def test_a_cloud_only_scope_needs_no_premium() -> None:
    tally = ScopeTally()
    tally.add(synced=False, has_premium=False)
    result = assess([sub(SPB)], TENANT_SKUS, tally)
    assert finding(result, FindingCode.NO_SYNCED_USERS).counts == {
        "usersInScope": 1, "syncedUsers": 0, "syncedWithoutPremium": 0}


def test_only_enabled_members_are_in_the_default_scope() -> None:
    def user(enabled: bool, kind: str) -> UserLicensing:
        return UserLicensing("id", enabled, kind, False, ())

    assert user(True, "Member").enabled_member
    assert not user(False, "Member").enabled_member
    assert not user(True, "Guest").enabled_member


# ---- language ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "language"), [
    ("sv", "sv"),
    ("sv-SE,sv;q=0.9,en;q=0.8", "sv"),
    ("en-US,sv;q=0.5", "en"),
    ("de-DE, sv;q=0.4", "sv"),
    ("en;q=0.3, sv;q=0.7", "sv"),
    ("fi", "en"),
    ("", "en"),
    (None, "en"),
    ("sv;q=0", "en"),
    ("sv;q=garbage", "en"),
])
def test_swedish_is_chosen_only_when_the_caller_prefers_it(header: str | None, language: str) -> None:
    assert choose_language(header) == language


# ---- message catalogs ------------------------------------------------------------------------------------


def load(language: str) -> dict[str, str]:
    return json.loads((CATALOGS / f"eligibility.{language}.json").read_text(encoding="utf-8"))


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_english_and_swedish_catalogs_have_the_same_keys() -> None:
    english, swedish = load("en"), load("sv")
    assert sorted(set(english) - set(swedish)) == [], "keys missing in sv.json"
    assert sorted(set(swedish) - set(english)) == [], "keys missing in en.json"


def test_each_message_uses_the_same_placeholders_in_both_languages() -> None:
    english, swedish = load("en"), load("sv")
    differing = [k for k in english if placeholders(english[k]) != placeholders(swedish.get(k, ""))]
    assert differing == []


def test_every_finding_has_a_one_sentence_message_that_its_counts_fill() -> None:
    counts = {"paidSubscriptions": 1, "trialSubscriptions": 0, "premiumLicences": 5, "usersInScope": 9,
              "syncedUsers": 3, "syncedWithoutPremium": 1, "served": 1, "notServed": 2, "noLiveAgent": 1,
              "outsideAgentOus": 1, "noSid": 0}
    for language in ("en", "sv"):
        messages = load(language)
        for code in FindingCode:
            text = messages[catalog_key(code)].format_map(counts)
            assert text.endswith(".") and text.count(". ") == 0, (language, code, text)
            assert "{" not in text


def test_each_finding_fills_its_message_from_its_own_counts() -> None:
    tally = ScopeTally()
    tally.add(synced=True, has_premium=False)
    results = [
        assess([sub(SPB)], TENANT_SKUS, tally),
        assess([sub(SPB, trial=True)], [sku(E1, plan(EXCHANGE))], ScopeTally()),
        assess([], [], ScopeTally()),
    ]
    for language in ("en", "sv"):
        messages = load(language)
        for result in results:
            for f in result.findings:
                messages[catalog_key(f.code)].format_map(dict(f.counts))  # KeyError if a count is missing
