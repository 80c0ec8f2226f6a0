"""The pure rules of issue 17: passkeys (security.md I1), the relying party, the Temporary Access Pass within the
tenant's policy (I3), and methods registered in Entra as ours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigurationError, load_settings
from shared.domain import passkeys
from shared.domain.access_pass import TenantPassPolicy, after_password_open, pass_terms
from shared.domain.entra_methods import as_methods
from shared.domain.passkeys import Passkey, UserPasskeys
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.recovery_policy import TemporaryAccessPass
from shared.domain.relying_party import relying_party, rp_id_problem
from shared.domain.reset_flow import (
    ResetFlow,
    Resolution,
    passkey_challenge_issued,
    passkey_challenge_taken,
    ready_for_password,
)
from shared.domain.security_info import SecurityInfoSummary, registration_status

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def key(count: int = 0, eligible: bool = False, backed_up: bool = False) -> Passkey:
    return Passkey(id="a", name="Laptop", credential="x", sign_count=count, backup_eligible=eligible,
                   backed_up=backed_up, created_at=NOW)


def policy(**changes: object) -> Policy:
    return Policy.model_validate({**DEFAULT_DOCUMENT, **changes})


def test_I1_a_sign_counter_must_move_forward_unless_the_authenticator_counts_nothing() -> None:
    assert passkeys.sign_counter_moves_forward(5, 6)
    assert not passkeys.sign_counter_moves_forward(5, 5)  # the same value: a clone used in parallel
    assert not passkeys.sign_counter_moves_forward(5, 1)  # gone back: a clone
    assert not passkeys.sign_counter_moves_forward(5, 0)
    assert passkeys.sign_counter_moves_forward(0, 0)  # synced passkeys do not count


def test_I1_backup_eligibility_never_changes_and_backed_up_needs_eligible() -> None:
    assert passkeys.backup_flags_valid(key(eligible=True), eligible=True, backed_up=True)
    assert passkeys.backup_flags_valid(key(eligible=True), eligible=True, backed_up=False)
    assert not passkeys.backup_flags_valid(key(eligible=False), eligible=True, backed_up=True)
    assert not passkeys.backup_flags_valid(key(eligible=True), eligible=False, backed_up=False)
    assert not passkeys.backup_flags_valid(key(eligible=False), eligible=False, backed_up=True)


def test_a_users_passkeys_round_trip_and_are_named_in_plain_printable_words() -> None:
    keys = UserPasskeys(handle="h").added(key(3)).added(Passkey(id="b", name="Phone", credential="y", sign_count=0,
                                                                 backup_eligible=True, backed_up=True,
                                                                 created_at=NOW, last_used_at=NOW))
    assert passkeys.decode(passkeys.encode(keys)) == keys
    assert passkeys.decode(passkeys.encode(keys.without("a"))).passkeys[0].id == "b"  # type: ignore[union-attr]
    assert passkeys.name_problem("Work laptop") is None
    assert passkeys.name_problem("   ") and passkeys.name_problem("x" * 65)
    assert passkeys.name_problem("a\u202eb") and passkeys.name_problem("two\nlines")


def test_I1_a_passkey_challenge_is_taken_once_and_dies_after_five_minutes() -> None:
    flow = ResetFlow(flow_id="f", secret_digest="d", username="u", created_at=NOW)
    issued = passkey_challenge_issued(flow, "c1", NOW)
    taken, after = passkey_challenge_taken(issued, NOW + timedelta(minutes=1))
    assert taken == "c1" and passkey_challenge_taken(after, NOW)[0] is None
    late, _ = passkey_challenge_taken(issued, NOW + timedelta(minutes=5))
    assert late is None
    replaced = passkey_challenge_issued(issued, "c2", NOW)
    assert passkey_challenge_taken(replaced, NOW)[0] == "c2"


def test_a_passkey_counts_as_two_only_when_the_policy_says_so_and_for_admins_only_when_it_names_them() -> None:
    on = policy(methodsRequired=2, methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "passkey": True},
                passkeys={"countsAsTwoMethods": True, "countsAsTwoForAdministrators": False})
    assert passkeys.counts_as_two(on, is_admin=False) and not passkeys.counts_as_two(on, is_admin=True)
    assert not passkeys.counts_as_two(policy(), is_admin=False)
    flow = ResetFlow(flow_id="f", secret_digest="d", username="u", created_at=NOW, verified=(Method.PASSKEY,),
                     resolution=Resolution(user_id="x", methods_required=2, passkey_counts_twice=True))
    assert ready_for_password(flow)
    assert not ready_for_password(ResetFlow(**{**flow.__dict__, "resolution": Resolution(user_id="x",
                                                                                         methods_required=2)}))
    summary = SecurityInfoSummary("x", methods=frozenset({Method.PASSKEY}))
    assert registration_status(summary, on, NOW).registered
    assert not registration_status(summary, policy(methodsRequired=2, methodsAllowed={
        **DEFAULT_DOCUMENT["methodsAllowed"], "passkey": True}), NOW).registered


def test_the_relying_party_is_the_pages_origin_and_its_id_their_host_or_a_parent_never_an_ip() -> None:
    party = relying_party("https://SSPR.contoso.com", None, "Contoso")
    assert party is not None and (party.id, party.origin) == ("sspr.contoso.com", "https://sspr.contoso.com")
    assert relying_party("https://sspr.contoso.com", "contoso.com", "C").id == "contoso.com"  # type: ignore[union-attr]
    assert relying_party("http://127.0.0.1:7071", None, "C") is None
    assert rp_id_problem("https://sspr.contoso.com", "contoso.com") is None
    assert rp_id_problem("https://sspr.contoso.com", "fabrikam.com")
    assert rp_id_problem("https://sspr.contoso.com", "tosso.com")  # a suffix of the string, not of the domain
    assert rp_id_problem("http://127.0.0.1:7071", "127.0.0.1")


def test_a_passkey_rp_id_that_does_not_fit_the_pages_stops_the_app_at_start() -> None:
    from devtools.stack import DEV_CODE_HMAC_KEY, DEV_TOTP_ENCRYPTION_KEY
    values = {"SSPR_ENVIRONMENT": "dev", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
              "SSPR_QUEUE_PREFIX": "sspr", "SSPR_TENANT_ID": "c0ffee00-5e1f-4ea5-b0a7-000000000001",
              "SSPR_API_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a1",
              "SSPR_PAGES_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a2",
              "SSPR_GRAPH_CREDENTIAL": "client_secret", "SSPR_GRAPH_CLIENT_SECRET": "s",
              "SSPR_MAINTENANCE_SCHEDULE": "0 0 3 * * *", "SSPR_SCOPE_SYNC_SCHEDULE": "0 */15 * * * *",
              "SSPR_COMPLIANCE_SCHEDULE": "0 0 2 * * *", "SSPR_EXPIRY_SCHEDULE": "0 0 6 * * *",
              "SSPR_CODE_HMAC_KEY": DEV_CODE_HMAC_KEY,
              "SSPR_TOTP_ENCRYPTION_KEY": DEV_TOTP_ENCRYPTION_KEY, "SSPR_MAIL_SENDER": "noreply@contoso.example",
              "SSPR_PUBLIC_BASE_URL": "https://sspr.contoso.com"}
    assert load_settings({**values, "SSPR_PASSKEY_RP_ID": "contoso.com"}).passkey_rp_id == "contoso.com"
    with pytest.raises(ConfigurationError, match="SSPR_PASSKEY_RP_ID"):
        load_settings({**values, "SSPR_PASSKEY_RP_ID": "fabrikam.com"})


TENANT = TenantPassPolicy(enabled=True, minimum_minutes=60, maximum_minutes=480, usable_once_only=False,
                          all_users=True)


def test_I3_a_pass_is_asked_within_the_tenants_bounds_and_one_time_when_either_policy_says_so() -> None:
    ours = TemporaryAccessPass.model_validate({"insteadOfPassword": True, "lifetimeMinutes": 30, "oneTimeUse": False})
    terms = pass_terms(ours, TENANT)
    assert terms is not None and (terms.lifetime_minutes, terms.usable_once) == (60, False)
    longest = TemporaryAccessPass.model_validate({"lifetimeMinutes": 900})
    assert pass_terms(longest, TENANT).lifetime_minutes == 480  # type: ignore[union-attr]
    once = TenantPassPolicy(**{**TENANT.__dict__, "usable_once_only": True})
    assert pass_terms(ours, once).usable_once is True  # type: ignore[union-attr]
    assert pass_terms(ours, TenantPassPolicy(**{**TENANT.__dict__, "enabled": False})) is None


def test_I3_the_tenant_targets_everyone_or_its_groups_and_exclusions_win() -> None:
    groups = TenantPassPolicy(**{**TENANT.__dict__, "all_users": False, "group_ids": ("G1",),
                                 "excluded_group_ids": ("G2",)})
    assert groups.targets({"g1"}) and not groups.targets(set()) and not groups.targets({"g1", "g2"})
    assert after_password_open(NOW, NOW + timedelta(minutes=9))
    assert not after_password_open(NOW, NOW + timedelta(minutes=10)) and not after_password_open(None, NOW)


def test_entra_phone_and_email_methods_become_ours_in_our_form_one_per_kind() -> None:
    methods = as_methods([("mobile", "+46 70 111 00 01"), ("alternateMobile", "+46701110002"),
                          ("office", "+46 8 123 456 78"), ("email", "Kim@Example.ORG"), ("fax", "+4681"),
                          ("mobile", "not a number")], NOW)
    assert [(m.kind, m.contact) for m in methods] == [
        (Method.EMAIL, "Kim@example.org"), (Method.MOBILE_PHONE, "+46701110001"),
        (Method.OFFICE_PHONE, "+46812345678")]


def test_entra_methods_count_only_when_the_policy_says_so() -> None:
    summary = SecurityInfoSummary("x", entra_methods=frozenset({Method.MOBILE_PHONE}))
    assert not registration_status(summary, policy(), NOW).registered
    assert registration_status(summary, policy(entraMethods={"count": True}), NOW).registered
