"""Configuration fails closed at start, naming each bad setting and what to put there (security.md D7)."""

from __future__ import annotations

import json
import re

import pytest

from devtools.processes import REPO_ROOT
from devtools.stack import DEV_CODE_HMAC_KEY, DEV_TOTP_ENCRYPTION_KEY
from shared.config import ConfigurationError, Settings, load_settings

VALID = {
    "SSPR_ENVIRONMENT": "dev",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "SSPR_TENANT_ID": "c0ffee00-5e1f-4ea5-b0a7-000000000001",
    "SSPR_API_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a1",
    "SSPR_AUTHORITY_HOST": "http://127.0.0.1:7072",
    "SSPR_GRAPH_BASE_URL": "http://127.0.0.1:7072/v1.0",
    "SSPR_GRAPH_CREDENTIAL": "client_secret",
    "SSPR_GRAPH_CLIENT_SECRET": "dev-sspr-service-secret",
    "SSPR_PUBLIC_BASE_URL": "http://localhost:7071",
    "SSPR_CODE_HMAC_KEY": DEV_CODE_HMAC_KEY,
    "SSPR_TOTP_ENCRYPTION_KEY": DEV_TOTP_ENCRYPTION_KEY,
    "SSPR_MAIL_SENDER": "noreply@contoso.example",
    "SSPR_QUEUE_PREFIX": "sspr",
    "SSPR_PAGES_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a2",
    "SSPR_MAINTENANCE_SCHEDULE": "0 0 3 * * *",
    "SSPR_SCOPE_SYNC_SCHEDULE": "0 */15 * * * *",
    "SSPR_COMPLIANCE_SCHEDULE": "0 0 2 * * *",
    "SSPR_EXPIRY_SCHEDULE": "0 0 6 * * *",
}

PRODUCTION = {
    "SSPR_ENVIRONMENT": "azure",
    "AzureWebJobsStorage__accountName": "ssprprod",
    "SSPR_TENANT_ID": "3f2c1d7e-1111-4a4a-9b9b-123456789abc",
    "SSPR_API_CLIENT_ID": "9a8b7c6d-2222-4b4b-8c8c-abcdef012345",
    "SSPR_PUBLIC_BASE_URL": "https://sspr.contoso.com",
    "SSPR_CORS_ALLOWED_ORIGINS": "https://sspr.contoso.com",
    "SSPR_CODE_HMAC_KEY": "q" * 43 + "=",
    "SSPR_TOTP_ENCRYPTION_KEY": "r" * 43 + "=",
    "SSPR_MAIL_SENDER": "no-reply@contoso.com",
    "SSPR_QUEUE_PREFIX": "sspr",
    "SSPR_PAGES_CLIENT_ID": "5b1e8c2a-3333-4c4c-9d9d-fedcba987654",
    "SSPR_MAINTENANCE_SCHEDULE": "0 0 3 * * *",
    "SSPR_SCOPE_SYNC_SCHEDULE": "0 */15 * * * *",
    "SSPR_COMPLIANCE_SCHEDULE": "0 0 2 * * *",
    "SSPR_EXPIRY_SCHEDULE": "0 0 6 * * *",
}


def problems_of(values: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(values)
    assert str(caught.value).startswith("The SSPR service cannot start")
    return caught.value.problems


def without(*names: str, base: dict[str, str] = VALID) -> dict[str, str]:
    return {k: v for k, v in base.items() if k not in names}


def test_the_dev_settings_and_a_production_shape_are_accepted() -> None:
    dev = load_settings(VALID)
    assert dev.issuer == "http://127.0.0.1:7072/c0ffee00-5e1f-4ea5-b0a7-000000000001/v2.0"
    prod = load_settings(PRODUCTION)
    assert prod.issuer == "https://login.microsoftonline.com/3f2c1d7e-1111-4a4a-9b9b-123456789abc/v2.0"
    assert prod.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert prod.graph_credential == "managed_identity"


@pytest.mark.parametrize("name", ["SSPR_TENANT_ID", "SSPR_API_CLIENT_ID", "SSPR_PUBLIC_BASE_URL"])
def test_a_missing_setting_is_named_with_what_to_put_there(name: str) -> None:
    [problem] = problems_of(without(name))
    assert problem.startswith(f"{name} is missing: put ")


def test_missing_storage_says_both_ways_to_configure_it() -> None:
    [problem] = problems_of(without("AzureWebJobsStorage"))
    assert "AzureWebJobsStorage is not set" in problem
    assert "UseDevelopmentStorage=true" in problem and "AzureWebJobsStorage__accountName" in problem


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(without("SSPR_TENANT_ID", "SSPR_API_CLIENT_ID", "SSPR_PUBLIC_BASE_URL"))
    assert len(problems) == 3


def test_an_unresolved_key_vault_reference_is_refused() -> None:
    values = {**VALID, "SSPR_GRAPH_CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x/)"}
    [problem] = problems_of(values)
    assert "unresolved Key Vault reference in SSPR_GRAPH_CLIENT_SECRET" in problem
    assert "https://kv.vault.azure.net" not in problem  # the reference itself is not echoed


def test_a_wildcard_cors_origin_is_refused() -> None:
    [problem] = problems_of({**VALID, "SSPR_CORS_ALLOWED_ORIGINS": "https://sspr.contoso.com, *"})
    assert problem.startswith("SSPR_CORS_ALLOWED_ORIGINS: a wildcard origin is refused")


def test_plain_http_is_only_for_localhost() -> None:
    [problem] = problems_of({**VALID, "SSPR_GRAPH_BASE_URL": "http://graph.contoso.com/v1.0"})
    assert problem.startswith("SSPR_GRAPH_BASE_URL: must use https")


def test_production_refuses_local_endpoints() -> None:
    problems = problems_of({**VALID, "SSPR_ENVIRONMENT": "azure"})
    assert any(p.startswith("SSPR_AUTHORITY_HOST points at localhost") for p in problems)
    assert any(p.startswith("SSPR_GRAPH_BASE_URL points at localhost") for p in problems)
    assert any(p.startswith("AzureWebJobsStorage points at the local storage emulator") for p in problems)


def test_a_client_secret_credential_needs_its_secret_and_managed_identity_refuses_one() -> None:
    [missing] = problems_of(without("SSPR_GRAPH_CLIENT_SECRET"))
    assert missing.startswith("SSPR_GRAPH_CLIENT_SECRET is empty")
    [contradiction] = problems_of({**PRODUCTION, "SSPR_GRAPH_CLIENT_SECRET": "s3cret"})
    assert contradiction.startswith("SSPR_GRAPH_CLIENT_SECRET is set but SSPR_GRAPH_CREDENTIAL is 'managed_identity'")
    assert "s3cret" not in contradiction


def test_two_ways_to_reach_storage_contradict() -> None:
    [problem] = problems_of({**VALID, "AzureWebJobsStorage__accountName": "ssprprod"})
    assert "both set" in problem


def test_a_malformed_tenant_id_is_named() -> None:
    [problem] = problems_of({**VALID, "SSPR_TENANT_ID": "contoso.com"})
    assert problem.startswith("SSPR_TENANT_ID:")


def test_an_empty_app_setting_means_not_set() -> None:
    settings = load_settings({**VALID, "SSPR_MANAGED_IDENTITY_CLIENT_ID": "", "AzureWebJobsStorage__accountName": ""})
    assert settings.managed_identity_client_id is None


def test_the_secret_never_appears_in_the_settings_repr() -> None:
    assert "dev-sspr-service-secret" not in repr(load_settings(VALID))


def test_the_sample_describes_every_setting_and_is_valid() -> None:
    sample = json.loads((REPO_ROOT / "local.settings.json.sample").read_text())
    described = set(sample["Descriptions"])
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert aliases <= described, f"settings without a description: {sorted(aliases - described)}"
    assert set(sample["Values"]) <= described, "a sample value has no description"
    for meaning in sample["Descriptions"].values():
        assert "\n" not in meaning and len(meaning) < 200
    assert load_settings(sample["Values"]).environment == "dev"


def test_names_in_messages_are_real_setting_names() -> None:
    problems = problems_of({"SSPR_ENVIRONMENT": "staging"})
    names = {m.group(0) for p in problems for m in re.finditer(r"\b(SSPR_[A-Z_]+|AzureWebJobsStorage\w*)", p)}
    assert "SSPR_ENVIRONMENT" in names
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert names <= aliases


@pytest.mark.parametrize("name", ["SSPR_CODE_HMAC_KEY", "SSPR_TOTP_ENCRYPTION_KEY", "SSPR_MAIL_SENDER"])
def test_keys_and_the_mail_sender_are_required(name: str) -> None:
    [problem] = problems_of(without(name))
    assert problem.startswith(f"{name} is missing: put ")


def test_a_short_or_non_base64_key_is_refused_without_echoing_it() -> None:
    [short] = problems_of({**VALID, "SSPR_CODE_HMAC_KEY": "c2hvcnQta2V5"})
    assert short.startswith("SSPR_CODE_HMAC_KEY: must hold at least 32 random bytes")
    [garbage] = problems_of({**VALID, "SSPR_TOTP_ENCRYPTION_KEY": "not base64 at all!"})
    assert garbage.startswith("SSPR_TOTP_ENCRYPTION_KEY: must be base64")
    assert "not base64 at all" not in garbage


def test_one_key_may_not_serve_two_purposes() -> None:
    [problem] = problems_of({**VALID, "SSPR_TOTP_ENCRYPTION_KEY": VALID["SSPR_CODE_HMAC_KEY"]})
    assert "must differ from SSPR_CODE_HMAC_KEY" in problem


def test_an_sms_provider_needs_its_endpoint_and_acs_its_sender_number() -> None:
    [endpoint] = problems_of({**VALID, "SSPR_SMS_PROVIDER": "emulator"})
    assert endpoint.startswith("SSPR_SMS_ENDPOINT is empty")
    [number] = problems_of({**PRODUCTION, "SSPR_SMS_PROVIDER": "acs",
                            "SSPR_SMS_ENDPOINT": "https://sspr.communication.azure.com"})
    assert number.startswith("SSPR_SMS_SENDER_NUMBER is empty")
    [emulator] = problems_of({**PRODUCTION, "SSPR_SMS_PROVIDER": "emulator", "SSPR_SMS_ENDPOINT": "https://x.example"})
    assert "'emulator' but SSPR_ENVIRONMENT is 'azure'" in emulator


def test_secrets_never_appear_in_the_settings_repr() -> None:
    text = repr(load_settings(VALID))
    assert VALID["SSPR_CODE_HMAC_KEY"] not in text and VALID["SSPR_TOTP_ENCRYPTION_KEY"] not in text


def test_v1_tokens_are_accepted_only_from_the_public_cloud_sts() -> None:
    assert load_settings(PRODUCTION).v1_issuer == "https://sts.windows.net/3f2c1d7e-1111-4a4a-9b9b-123456789abc/"
    assert load_settings(VALID).v1_issuer is None


@pytest.mark.parametrize("name", ["SSPR_MAINTENANCE_SCHEDULE", "SSPR_SCOPE_SYNC_SCHEDULE", "SSPR_COMPLIANCE_SCHEDULE",
                                  "SSPR_EXPIRY_SCHEDULE"])
def test_a_timer_schedule_is_required_and_must_be_six_field_ncrontab(name: str) -> None:
    [missing] = problems_of(without(name))
    assert missing.startswith(f"{name} is missing: put a 6-field NCRONTAB")
    [five_fields] = problems_of({**VALID, name: "0 3 * * *"})
    assert five_fields.startswith(f"{name}: must be a 6-field NCRONTAB expression")
