"""The expiry rule (who expires when) and the reminder stages, at their boundaries: leap days, time zones, the
policy changing between runs, synced users with and without the cloud policy, a new password starting over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.expiry_reminders import Run, Tally, reminder_id, rules_document, rules_from
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.domain.password_expiry import (
    ExpiryRules,
    ExpiryState,
    OnPremisesExpiry,
    PasswordFacts,
    Source,
    StagesSent,
    after_sending,
    due_stage,
    parse_instant,
    password_expiry,
    reminder_due,
)
from shared.domain.policy import DEFAULT_DOCUMENT, Policy
from shared.domain.runs import RunState

UID = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAGES = (14, 7, 3, 1)


def domain(name: str, validity: int | None, kind: str = "Managed") -> VerifiedDomain:
    return VerifiedDomain(name, False, kind, DomainExpiration(name, validity, 14))


RULES = ExpiryRules.of([domain("contoso.example", 90), domain("contosodemo.onmicrosoft.com", None),
                        domain("fed.example", 90, "Federated")], cloud_policy_for_synced_users=False)


def user(changed: datetime | None = NOW - timedelta(days=83), upn: str = "casey@contoso.example",
         policies: str | None = "None", synced: bool = False, enabled: bool = True,
         kind: str | None = "Member") -> PasswordFacts:
    return PasswordFacts(UID, upn, enabled, kind, synced, policies, changed)


def test_a_cloud_user_expires_the_domains_validity_after_the_last_change() -> None:
    expiry = password_expiry(user(), RULES, NOW)
    assert expiry.state is ExpiryState.EXPIRING and expiry.source is Source.CLOUD
    assert expiry.expires_at == NOW + timedelta(days=7)
    assert expiry.days_left(NOW) == 7 and expiry.password_version == "2025-12-08T12:00:00Z"


def test_a_started_day_counts_as_a_day_and_the_instant_of_expiry_is_expired() -> None:
    expiry = password_expiry(user(NOW - timedelta(days=90) + timedelta(hours=2)), RULES, NOW)
    assert expiry.days_left(NOW) == 1 and expiry.state is ExpiryState.EXPIRING  # 2 hours left
    assert password_expiry(user(NOW - timedelta(days=84, hours=-2)), RULES, NOW).days_left(NOW) == 7  # 6 d 2 h
    on_the_dot = password_expiry(user(NOW - timedelta(days=90)), RULES, NOW)
    assert on_the_dot.state is ExpiryState.EXPIRED and on_the_dot.days_left(NOW) == 0


@pytest.mark.parametrize(("facts", "state"), [
    (user(policies="DisablePasswordExpiration"), ExpiryState.NEVER),
    (user(policies="DisablePasswordExpiration, DisableStrongPassword"), ExpiryState.NEVER),
    (user(upn="erin@contosodemo.onmicrosoft.com"), ExpiryState.NEVER),  # the domain's 2147483647
    (user(enabled=False), ExpiryState.DISABLED),
    (user(enabled=False, policies="DisablePasswordExpiration"), ExpiryState.DISABLED),
    (user(kind="Guest", upn="gia_fabrikam.example#EXT#@contosodemo.onmicrosoft.com"), ExpiryState.NOT_MANAGED),
    (user(upn="fred@fed.example"), ExpiryState.NOT_MANAGED),  # a federated domain: its identity provider decides
    (user(upn="x@unlisted.example"), ExpiryState.UNKNOWN),
    (user(changed=None), ExpiryState.UNKNOWN),
])
def test_never_expiring_disabled_guests_federated_and_unknown_are_left_out(facts: PasswordFacts,
                                                                           state: ExpiryState) -> None:
    expiry = password_expiry(facts, RULES, NOW)
    assert expiry.state is state and expiry.expires_at is None
    assert due_stage(expiry, STAGES, NOW) is None


def test_a_domain_without_a_validity_has_graphs_default_of_90_days() -> None:
    unset = DomainExpiration.from_graph("contoso.example", None, None)
    assert (unset.validity_days, unset.notification_days) == (90, 14)
    assert DomainExpiration.from_graph("contoso.example", 2147483647, 14).never


def test_synced_users_follow_the_cloud_policy_only_when_the_tenant_says_so() -> None:
    synced = user(synced=True, policies="None")
    assert password_expiry(synced, RULES, NOW).state is ExpiryState.UNKNOWN  # AD decides, and AD was not read
    cloud = ExpiryRules(RULES.domains, cloud_policy_for_synced_users=True)
    followed = password_expiry(synced, cloud, NOW)
    assert followed.state is ExpiryState.EXPIRING and followed.expires_at == NOW + timedelta(days=7)
    # Entra Connect keeps DisablePasswordExpiration on a user until their next password sync.
    assert password_expiry(user(synced=True, policies="DisablePasswordExpiration"), cloud, NOW).state \
        is ExpiryState.NEVER


def test_a_synced_users_earlier_expiry_wins_whichever_directory_sets_it() -> None:
    cloud = ExpiryRules(RULES.domains, cloud_policy_for_synced_users=True)
    synced = user(synced=True)
    ad_sooner = password_expiry(synced, cloud, NOW, OnPremisesExpiry(NOW + timedelta(days=2)))
    assert (ad_sooner.expires_at, ad_sooner.source) == (NOW + timedelta(days=2), Source.ON_PREMISES)
    cloud_sooner = password_expiry(synced, cloud, NOW, OnPremisesExpiry(NOW + timedelta(days=20)))
    assert (cloud_sooner.expires_at, cloud_sooner.source) == (NOW + timedelta(days=7), Source.CLOUD)
    ad_never = password_expiry(synced, RULES, NOW, OnPremisesExpiry(None))
    assert ad_never.state is ExpiryState.NEVER
    assert password_expiry(synced, cloud, NOW, OnPremisesExpiry(None)).source is Source.CLOUD


def test_a_leap_day_is_a_day_like_any_other() -> None:
    changed = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert password_expiry(user(changed), RULES, changed).expires_at == datetime(2024, 5, 29, 12, 0, tzinfo=UTC)
    year = ExpiryRules.of([domain("contoso.example", 365)], False)
    over_the_leap_day = password_expiry(user(datetime(2023, 3, 1, tzinfo=UTC)), year, NOW)
    assert over_the_leap_day.expires_at == datetime(2024, 2, 29, tzinfo=UTC)  # not March 1st
    assert over_the_leap_day.days_left(datetime(2024, 2, 28, 0, 0, 1, tzinfo=UTC)) == 1


def test_graphs_instants_are_read_in_any_offset_and_compared_in_utc() -> None:
    z = parse_instant("2025-12-08T12:00:00Z")
    assert z == parse_instant("2025-12-08T14:00:00+02:00") == parse_instant("2025-12-08T07:00:00.0000000-05:00")
    assert parse_instant("2025-12-08T12:00:00") == z  # a naive value is UTC, as Graph always sends
    assert parse_instant("yesterday") is None and parse_instant(None) is None
    stockholm = password_expiry(user(parse_instant("2025-12-08T13:00:00+01:00")), RULES, NOW)
    assert stockholm.expires_at == NOW + timedelta(days=7) and stockholm.password_version == "2025-12-08T12:00:00Z"


def test_the_smallest_due_stage_is_the_one_sent_and_its_window_starts_on_the_second() -> None:
    def stage_at(left: timedelta) -> int | None:
        return due_stage(password_expiry(user(NOW + left - timedelta(days=90)), RULES, NOW), STAGES, NOW)

    assert stage_at(timedelta(days=14, seconds=1)) is None
    assert stage_at(timedelta(days=14)) == 14
    assert stage_at(timedelta(days=7, seconds=1)) == 14
    assert stage_at(timedelta(days=7)) == 7
    assert stage_at(timedelta(days=2)) == 3  # first seen 2 days before: the 3-day reminder, not three mails
    assert stage_at(timedelta(hours=1)) == 1
    assert stage_at(timedelta(0)) is None  # expired: no reminder


def test_each_stage_goes_once_per_password_and_a_new_password_starts_over() -> None:
    expiry = password_expiry(user(), RULES, NOW)
    version = expiry.password_version or ""
    assert reminder_due(expiry, STAGES, None, NOW) == 7
    sent = after_sending(None, version, 7)
    assert reminder_due(expiry, STAGES, sent, NOW) is None  # the same stage, the same password: never again
    later = NOW + timedelta(days=5)
    assert reminder_due(expiry, STAGES, sent, later) == 3
    assert after_sending(sent, version, 3) == StagesSent(version, (7, 3))
    renewed = password_expiry(user(NOW - timedelta(days=89)), RULES, NOW)  # changed again since
    assert reminder_due(renewed, STAGES, sent, NOW) == 1
    assert after_sending(sent, renewed.password_version or "", 1).stages == (1,)


def test_a_lengthened_validity_never_repeats_an_earlier_warning_and_a_shortened_one_skips_to_its_stage() -> None:
    changed = NOW - timedelta(days=83)
    sent = after_sending(None, "2025-12-08T12:00:00Z", 7)  # told "7 days" under a 90-day validity
    longer = ExpiryRules.of([domain("contoso.example", 97)], False)  # the admin lengthened it: 14 days left
    assert due_stage(password_expiry(user(changed), longer, NOW), STAGES, NOW) == 14
    assert reminder_due(password_expiry(user(changed), longer, NOW), STAGES, sent, NOW) is None
    a_week_on = NOW + timedelta(days=7)  # 7 days left again: that stage was sent for this password
    assert reminder_due(password_expiry(user(changed), longer, a_week_on), STAGES, sent, a_week_on) is None
    shorter = ExpiryRules.of([domain("contoso.example", 85)], False)  # 2 days left
    assert reminder_due(password_expiry(user(changed), shorter, NOW), STAGES, sent, NOW) == 3


def test_the_policy_names_one_to_five_distinct_stages_and_stores_them_largest_first() -> None:
    def policy(**reminders: object) -> Policy:
        return Policy.model_validate({**DEFAULT_DOCUMENT, "expiryReminders": {**DEFAULT_DOCUMENT["expiryReminders"],
                                                                              **reminders}})

    assert Policy.model_validate(DEFAULT_DOCUMENT).expiry_reminders.stages == (14, 7, 3, 1)
    assert not Policy.model_validate(DEFAULT_DOCUMENT).expiry_reminders.enabled
    assert policy(stages=[1, 30, 7]).expiry_reminders.stages == (30, 7, 1)
    for stages, rule in (([], "EXPIRY_STAGES_RANGE"), ([0], "EXPIRY_STAGES_RANGE"), ([91], "EXPIRY_STAGES_RANGE"),
                         ([1, 2, 3, 4, 5, 6], "EXPIRY_STAGES_RANGE"), ([7, 7], "EXPIRY_STAGES_UNIQUE")):
        with pytest.raises(ValidationError) as refused:
            policy(stages=stages)
        errors = refused.value.errors()
        assert [(e["type"], e["loc"]) for e in errors] == [(rule, ("expiryReminders", "stages"))], stages
    stored = {k: v for k, v in DEFAULT_DOCUMENT.items() if k != "expiryReminders"}
    assert Policy.model_validate(stored).expiry_reminders.stages == (14, 7, 3, 1)  # a policy saved before


def test_a_runs_tally_counts_states_windows_and_reminders_by_stage() -> None:
    judged = [password_expiry(user(NOW - timedelta(days=90 - left)), RULES, NOW) for left in (1, 6, 13, 29, 45)]
    judged.append(password_expiry(user(policies="DisablePasswordExpiration"), RULES, NOW))
    judged.append(password_expiry(user(NOW - timedelta(days=100)), RULES, NOW))
    tally = Tally().add_users(judged, NOW).with_reminders([1, 7, 14])
    assert tally.users == 7 and tally.by_state == {"expiring": 5, "never": 1, "expired": 1}
    assert tally.within == {"7": 2, "14": 3, "30": 4}
    assert tally.reminders == {"1": 1, "7": 1, "14": 1} and tally.reminders_sent == 3
    assert Tally.from_dict(tally.plus(tally).as_dict()).within == {"7": 4, "14": 6, "30": 8}


def test_a_run_completes_with_the_last_of_its_pages_whatever_order_they_finish_in() -> None:
    run = Run(id=UID, trigger="manual", requested_by="admin", created_at=NOW, updated_at=NOW,
              rules=rules_document(RULES, STAGES, sms=True))
    last_first = run.after_page(Tally(users=2), 1, last=True, index=1, total=None, now=NOW)
    assert last_first.state is RunState.RUNNING and last_first.page_count == 2
    done = last_first.after_page(Tally(users=3), 1, last=False, index=0, total=5, now=NOW)
    assert done.state is RunState.COMPLETED and done.tally.users == 5 and done.users_total == 5
    rules, stages, sms = rules_from(run.rules)
    assert stages == STAGES and sms and rules.domains["contosodemo.onmicrosoft.com"].expiration.never
    assert not rules.domains["fed.example"].managed


def test_a_reminders_id_names_the_user_the_password_and_the_stage() -> None:
    first = reminder_id(UID, "2025-12-08T12:00:00Z", 7)
    assert first == reminder_id(UID.upper(), "2025-12-08T12:00:00Z", 7)
    assert len({first, reminder_id(UID, "2025-12-08T12:00:00Z", 3), reminder_id(UID, "2026-01-01T00:00:00Z", 7)}) == 3


def test_a_synced_user_ad_says_must_change_at_next_logon_has_expired_whatever_the_cloud_says() -> None:
    cloud = ExpiryRules(RULES.domains, cloud_policy_for_synced_users=True)
    must = password_expiry(user(synced=True), cloud, NOW, OnPremisesExpiry(None, must_change=True))
    assert (must.state, must.expires_at, must.source) == (ExpiryState.EXPIRED, None, Source.ON_PREMISES)


def test_a_password_ad_reports_is_known_by_ads_pwdlastset_so_a_change_in_ad_starts_the_reminders_over() -> None:
    set_in_ad = NOW - timedelta(days=30)
    judged = password_expiry(user(NOW - timedelta(days=400), synced=True), RULES, NOW,
                             OnPremisesExpiry(NOW + timedelta(days=12), password_last_set=set_in_ad))
    assert judged.password_version == "2026-01-30T12:00:00Z" and judged.version_source is Source.ON_PREMISES
    changed = password_expiry(user(NOW - timedelta(days=400), synced=True), RULES, NOW,
                              OnPremisesExpiry(NOW + timedelta(days=42), password_last_set=NOW))
    assert changed.password_version != judged.password_version
    # without AD's report a synced user is known by Entra's clock, as a cloud user is
    assert password_expiry(user(synced=True), RULES, NOW).version_source is Source.CLOUD
