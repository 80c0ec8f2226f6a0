"""infra/main.bicep against shared/config.py: every required setting is set (or documented as manual), none holds a
storage key or client secret in clear, and the settings it writes pass the service's own start-up check.

Bicep cannot be compiled here (its CLI downloads a binary), so the file is read as text: app settings are the
one-line `{ name: '...', value: ... }` entries of `appSettings: [ ... ]`, and parameters the `param` lines.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from shared.config import Environment, GraphCredentialKind, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
BICEP = REPO / "infra" / "main.bicep"
PARAMETERS_EXAMPLE = REPO / "infra" / "main.parameters.example.json"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

SETTING = re.compile(r"^\s*\{\s*name:\s*'([^']+)',\s*value:\s*(.+?)\s*\}\s*$", re.MULTILINE)
PARAM = re.compile(r"^param\s+(\w+)\s+\w+(?:\s*=\s*(.+?))?\s*$", re.MULTILINE)
LITERAL = re.compile(r"^'([^'$]*)'$")
KEY_VAULT_REFERENCE = re.compile(r"^'@Microsoft\.KeyVault\(SecretUri=\$\{vault\.properties\.vaultUri\}secrets/\$\{\w+\}\)'$")
# What a key or secret written into a setting looks like in Bicep or in a connection string.
IN_CLEAR = re.compile(r"listKeys|listConnectionStrings|AccountKey=|SharedAccessKey|primaryKey|secondaryKey|"
                      r"\.keys\[|ClientSecret|client_secret|password", re.IGNORECASE)
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|CONNECTION_STRING|CONNECTIONSTRING)$", re.IGNORECASE)
# Settings whose very presence means a secret in app settings (the identity-based form is used instead).
FORBIDDEN_SETTINGS = frozenset({"AzureWebJobsStorage", "SSPR_GRAPH_CLIENT_SECRET"})
# Not secrets, though named like one: Application Insights' ingestion address (its key is no credential once local
# auth is off) and the Entra-only switch.
NOT_SECRETS = frozenset({"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"})

# What the platform puts in place of Bicep expressions that are not plain parameters, for the start-up check.
STAND_INS = {
    "AzureWebJobsStorage__accountName": "ssprprodstorage",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "SSPR_TENANT_ID": "c0ffee00-5e1f-4ea5-b0a7-000000000001",
    "SSPR_SMS_PROVIDER": "none",
    "SSPR_SMS_ENDPOINT": "",
    "SSPR_PUBLIC_BASE_URL": "https://ssprprod-func-abcdef.azurewebsites.net",
    "SSPR_CORS_ALLOWED_ORIGINS": "https://ssprprod-func-abcdef.azurewebsites.net",
}


def app_settings(bicep: str) -> dict[str, str]:
    """name -> Bicep value expression, for every entry of the `appSettings: [ ... ]` block."""
    start = bicep.index("appSettings: [")
    block = bicep[start:bicep.index("\n      ]", start)]
    return {name: value for name, value in SETTING.findall(block)}


def required_settings() -> set[str]:
    """The app settings shared/config.py refuses to start without (storage: the identity-based name)."""
    required = {field.alias or name for name, field in Settings.model_fields.items() if field.is_required()}
    return required | {"AzureWebJobsStorage__accountName"}


def manual_settings(doc: str) -> set[str]:
    """Settings docs/deploy.md lists under its 'Settings set by hand' heading."""
    match = re.search(r"^## Settings set by hand\n(.*?)(?=^## )", doc, re.MULTILINE | re.DOTALL)
    return set(re.findall(r"^- `([A-Za-z0-9_]+)`", match.group(1), re.MULTILINE)) if match else set()


def secrets_in_clear(settings: dict[str, str]) -> list[str]:
    """Each app setting that holds, or would hold, a storage key or a client secret outside Key Vault."""
    problems = [f"{name} is set: use the identity-based form" for name in sorted(FORBIDDEN_SETTINGS & set(settings))]
    for name, value in settings.items():
        if IN_CLEAR.search(value):
            problems.append(f"{name} takes a key or secret from {value}")
        elif SECRET_NAME.search(name) and name not in NOT_SECRETS and not KEY_VAULT_REFERENCE.match(value):
            problems.append(f"{name} is not a Key Vault reference")
        elif (literal := LITERAL.match(value)) and re.fullmatch(r"[A-Za-z0-9+/]{32,}={0,2}", literal.group(1)):
            problems.append(f"{name} holds what looks like a key")
    return problems


def parameter_values(bicep: str) -> dict[str, str]:
    """Each parameter's value in the example parameters file, else its literal default in the Bicep."""
    values = {name: literal.group(1) for name, default in PARAM.findall(bicep)
              if default and (literal := LITERAL.match(default))}
    example = json.loads(PARAMETERS_EXAMPLE.read_text())["parameters"]
    values.update({name: str(p["value"]).lower() if isinstance(p["value"], bool) else str(p["value"])
                   for name, p in example.items()})
    return values


@pytest.fixture(scope="module")
def bicep() -> str:
    return BICEP.read_text()


@pytest.fixture(scope="module")
def settings(bicep: str) -> dict[str, str]:
    return app_settings(bicep)


def test_every_setting_the_config_requires_is_set_by_the_bicep_or_listed_as_manual(settings: dict[str, str]) -> None:
    missing = required_settings() - set(settings) - manual_settings(DEPLOY_DOC.read_text())

    assert missing == set(), f"set these in infra/main.bicep or list them in docs/deploy.md: {sorted(missing)}"


def test_no_app_setting_holds_a_storage_key_or_client_secret_in_clear(settings: dict[str, str]) -> None:
    assert secrets_in_clear(settings) == []


def test_the_keys_are_key_vault_references_the_app_identity_may_read(bicep: str, settings: dict[str, str]) -> None:
    for name in ("SSPR_CODE_HMAC_KEY", "SSPR_TOTP_ENCRYPTION_KEY"):
        assert KEY_VAULT_REFERENCE.match(settings[name]), name
    assert "enableRbacAuthorization: true" in bicep
    assert re.search(r"roleDefinitions', roleKeyVaultSecretsUser\)\s+principalId: site\.identity\.principalId", bicep)
    # docs/deploy.md creates the very secrets the references name.
    doc = DEPLOY_DOC.read_text()
    for secret in re.findall(r"var \w+SecretName = '([^']+)'", bicep):
        assert f"--name {secret}" in doc


def test_the_secret_check_catches_keys_and_secrets_written_in_clear() -> None:
    planted = app_settings("""appSettings: [
        { name: 'AzureWebJobsStorage', value: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${storage.listKeys().keys[0].value}' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'SSPR_GRAPH_CLIENT_SECRET', value: graphSecret }
        { name: 'SSPR_CODE_HMAC_KEY', value: 'ZGV2LW9ubHkgY29kZSBobWFjIGtleSwgbm90IGEgc2VjcmV0IQ==' }
        { name: 'SSPR_TOTP_ENCRYPTION_KEY', value: totpKey }
        { name: 'SSPR_SMS_ENDPOINT', value: acs.listKeys().primaryConnectionString }
      ]""")

    problems = secrets_in_clear(planted)

    assert "AzureWebJobsStorage is set: use the identity-based form" in problems
    assert "SSPR_GRAPH_CLIENT_SECRET is set: use the identity-based form" in problems
    assert any(p.startswith("AzureWebJobsStorage takes a key") for p in problems)
    assert "SSPR_CODE_HMAC_KEY is not a Key Vault reference" in problems
    assert "SSPR_TOTP_ENCRYPTION_KEY is not a Key Vault reference" in problems
    assert any(p.startswith("SSPR_SMS_ENDPOINT takes a key") for p in problems)
    assert not any(p.startswith("AzureWebJobsStorage__accountName") for p in problems)


def test_storage_is_reached_only_with_the_apps_identity_and_its_three_data_roles(bicep: str,
                                                                                 settings: dict[str, str]) -> None:
    assert settings["AzureWebJobsStorage__accountName"] == "storage.name"
    assert "AzureWebJobsStorage" not in settings
    assert "allowSharedKeyAccess: false" in bicep
    for role in ("roleStorageBlobDataOwner", "roleStorageQueueDataContributor", "roleStorageTableDataContributor"):
        assert re.search(rf"scope: storage\s+properties: {{\s+roleDefinitionId: subscriptionResourceId\("
                         rf"'Microsoft\.Authorization/roleDefinitions', {role}\)\s+principalId: site\.identity\.principalId",
                         bicep), role


def test_the_bicep_settings_pass_the_services_own_start_up_check(bicep: str, settings: dict[str, str]) -> None:
    parameters = parameter_values(bicep)
    key = base64.b64encode(bytes(range(32))).decode()
    resolved: dict[str, str] = {}
    for name, value in settings.items():
        if literal := LITERAL.match(value):
            resolved[name] = literal.group(1)
        elif KEY_VAULT_REFERENCE.match(value):  # the platform resolves it before the app starts
            resolved[name] = key if name == "SSPR_CODE_HMAC_KEY" else base64.b64encode(bytes(range(32, 64))).decode()
        elif value in parameters:
            resolved[name] = parameters[value]
        else:
            assert name in STAND_INS, f"{name} = {value}: add a stand-in for this expression to the test"
            resolved[name] = STAND_INS[name]
    resolved.update({"SSPR_API_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a1",
                     "SSPR_PAGES_CLIENT_ID": "c0ffee00-5e1f-4ea5-b0a7-0000000000a2"})  # the example's are zeros

    loaded = load_settings(resolved)

    assert loaded.environment is Environment.AZURE
    assert loaded.graph_credential is GraphCredentialKind.MANAGED_IDENTITY
    assert loaded.storage_connection_string is None


def test_cors_allows_only_the_pages_origin(bicep: str, settings: dict[str, str]) -> None:
    cors = re.search(r"cors: \{(.*?)\}", bicep, re.DOTALL)
    assert cors is not None and re.search(r"allowedOrigins: \[ pagesOrigin \]", cors.group(1))
    assert settings["SSPR_CORS_ALLOWED_ORIGINS"] == settings["SSPR_PUBLIC_BASE_URL"] == "pagesOrigin"
    assert "'*'" not in bicep


def test_https_only_tls_1_2_and_no_ftp_or_basic_auth_publishing(bicep: str) -> None:
    assert "httpsOnly: true" in bicep
    assert "minTlsVersion: '1.2'" in bicep and "minimumTlsVersion: 'TLS1_2'" in bicep
    assert "ftpsState: 'Disabled'" in bicep
    for policy in ("ftp", "scm"):
        assert re.search(rf"name: '{policy}'\s+properties: {{ allow: false }}", bicep), policy


def test_python_3_11_on_a_plan_that_keeps_an_instance_warm_for_the_sign_in_hook(bicep: str) -> None:
    assert "runtime: { name: 'python', version: '3.11' }" in bicep
    assert "sku: { tier: 'FlexConsumption', name: 'FC1' }" in bicep
    assert "{ name: 'http', instanceCount: alwaysReadyHttpInstances }" in bicep
    assert re.search(r"@minValue\(1\)\nparam alwaysReadyHttpInstances int = 1", bicep)


def test_the_parameters_example_names_only_parameters_the_bicep_declares(bicep: str) -> None:
    declared = {name for name, _ in PARAM.findall(bicep)}
    example = set(json.loads(PARAMETERS_EXAMPLE.read_text())["parameters"])

    assert example <= declared, sorted(example - declared)
