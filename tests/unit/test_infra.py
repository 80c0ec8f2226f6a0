"""infra/main.bicep and docs/deploy.md checked as an admin's first deployment needs them: the template parses
(pycep-parser), names only Azure's built-in role ids and known API versions, passes checkov, sets every setting
shared/config.py requires with no key or secret in clear, and the runbook covers what the template cannot.

The Bicep CLI cannot be installed here (it downloads a binary), so pycep-parser is the parser; the older checks
still read the file as text: app settings are the one-line `{ name: '...', value: ... }` entries of
`appSettings: [ ... ]`, and parameters the `param` lines. checkov pins older packages than the project's, so it
lives in its own virtual environment, .venv-tools/checkov, made from requirements-checkov.txt on first use.
"""

from __future__ import annotations

import base64
import fcntl
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lark.exceptions import UnexpectedInput
from pycep import BicepParser

from shared.config import Environment, GraphCredentialKind, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
BICEP = REPO / "infra" / "main.bicep"
PARAMETERS_EXAMPLE = REPO / "infra" / "main.parameters.example.json"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
SAMPLE_SETTINGS = REPO / "local.settings.json.sample"
CHECKOV_REQUIREMENTS = REPO / "requirements-checkov.txt"
CHECKOV_VENV = REPO / ".venv-tools" / "checkov"

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


# ---- the template read by real tools -----------------------------------------------------------------------------

ROLES_DOC = "https://learn.microsoft.com/azure/role-based-access-control/built-in-roles"
# Azure's built-in role definition ids (the same in every tenant) that the template may use, with the page that
# lists each one.
BUILT_IN_ROLES = {
    "b24988ac-6180-42a0-ab88-20f7382dd24c": ("Contributor", f"{ROLES_DOC}/general#contributor"),
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": ("Storage Blob Data Owner", f"{ROLES_DOC}/storage#storage-blob-data-owner"),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": ("Storage Queue Data Contributor",
                                             f"{ROLES_DOC}/storage#storage-queue-data-contributor"),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": ("Storage Table Data Contributor",
                                             f"{ROLES_DOC}/storage#storage-table-data-contributor"),
    "4633458b-17de-408a-b874-0445c86b69e6": ("Key Vault Secrets User", f"{ROLES_DOC}/security#key-vault-secrets-user"),
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": ("Key Vault Secrets Officer",
                                             f"{ROLES_DOC}/security#key-vault-secrets-officer"),
    "3913510d-42f4-4e42-8a64-420c390055eb": ("Monitoring Metrics Publisher",
                                             f"{ROLES_DOC}/monitor#monitoring-metrics-publisher"),
}

# API versions each resource type may use, with the template reference page of each
# (https://learn.microsoft.com/azure/templates/<namespace>/<version>/<type>). Microsoft.Web/sites needs
# functionAppConfig (Flex Consumption), which exists from 2023-12-01 on.
API_VERSIONS = {
    "Microsoft.OperationalInsights/workspaces": {"2022-10-01", "2023-09-01"},
    "Microsoft.Insights/components": {"2020-02-02"},
    "Microsoft.Storage/storageAccounts": {"2023-01-01", "2023-05-01", "2024-01-01"},
    "Microsoft.Storage/storageAccounts/blobServices": {"2023-01-01", "2023-05-01", "2024-01-01"},
    "Microsoft.Storage/storageAccounts/blobServices/containers": {"2023-01-01", "2023-05-01", "2024-01-01"},
    "Microsoft.KeyVault/vaults": {"2022-07-01", "2023-07-01"},
    "Microsoft.Communication/communicationServices": {"2023-04-01"},
    "Microsoft.Web/serverfarms": {"2023-12-01", "2024-04-01", "2024-11-01"},
    "Microsoft.Web/sites": {"2023-12-01", "2024-04-01", "2024-11-01"},
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": {"2023-12-01", "2024-04-01", "2024-11-01"},
    "Microsoft.Authorization/roleAssignments": {"2022-04-01"},
}


def api_reference_page(resource_type: str, version: str) -> str:
    namespace, _, path = resource_type.partition("/")
    return f"https://learn.microsoft.com/azure/templates/{namespace.lower()}/{version}/{path.lower()}"


def parse_bicep(path: Path) -> dict[str, Any]:
    """The template as pycep-parser reads it; a syntax error raises."""
    return dict(BicepParser().parse(file_path=path))


def resource_config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body, whether or not it is deployed conditionally (`= if (...) { ... }`)."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def role_ids(template: dict[str, Any]) -> dict[str, str]:
    """Each `var role<Name> = '<guid>'` of the template: variable name -> role definition id."""
    return {name: var["value"] for name, var in template["variables"].items()
            if name.startswith("role") and isinstance(var["value"], str)}


def unknown_roles(roles: dict[str, str]) -> list[str]:
    """Role variables whose id is no built-in role, or the built-in role of another name."""
    problems = []
    for variable, role_id in roles.items():
        name, _ = BUILT_IN_ROLES.get(role_id, ("", ""))
        if not name:
            problems.append(f"{variable} = {role_id}: not an Azure built-in role id")
        elif variable != "role" + name.replace(" ", ""):
            problems.append(f"{variable} = {role_id}: that id is {name}")
    return problems


def unknown_api_versions(template: dict[str, Any]) -> list[str]:
    return [f"{symbol}: {r['type']}@{r['api_version']} (known: {sorted(API_VERSIONS.get(r['type'], ()))})"
            for symbol, r in template["resources"].items()
            if r["api_version"] not in API_VERSIONS.get(r["type"], set())]


def bounds(parameter: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d["argument"] for d in parameter["decorators"] if d["type"] in ("min_value", "max_value")}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_bicep(BICEP)


def test_pycep_parses_the_template_and_fails_on_a_syntax_error(template: dict[str, Any], tmp_path: Path) -> None:
    assert {"site", "plan", "storage", "vault"} <= set(template["resources"])
    broken = tmp_path / "broken.bicep"
    broken.write_text(BICEP.read_text().replace("resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {",
                                                "resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {{", 1))
    with pytest.raises(UnexpectedInput):  # pycep's grammar runs on lark
        parse_bicep(broken)


def test_every_role_definition_id_is_the_built_in_role_it_is_named_after(template: dict[str, Any]) -> None:
    roles = role_ids(template)
    used = set(re.findall(r"roleDefinitions', (\w+)\)", BICEP.read_text()))

    assert used and used <= set(roles), f"role ids not taken from a role<Name> variable: {sorted(used - set(roles))}"
    assert unknown_roles(roles) == []


def test_the_role_check_catches_a_mistyped_or_swapped_id() -> None:
    problems = unknown_roles({"roleContributor": "b24988ac-6181-42a0-ab88-20f7382dd24c",
                              "roleKeyVaultSecretsUser": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"})
    assert problems == ["roleContributor = b24988ac-6181-42a0-ab88-20f7382dd24c: not an Azure built-in role id",
                        "roleKeyVaultSecretsUser = b86a8fe4-44ce-4948-aee5-eccb2c155cd7: that id is Key Vault Secrets "
                        "Officer"]


def test_every_resource_uses_a_known_api_version(template: dict[str, Any]) -> None:
    assert unknown_api_versions(template) == []
    assert api_reference_page("Microsoft.Web/sites", "2024-04-01") == \
        "https://learn.microsoft.com/azure/templates/microsoft.web/2024-04-01/sites"


def test_the_deployer_must_be_named_and_always_gets_the_role_that_writes_the_keys(template: dict[str, Any]) -> None:
    deployer = template["parameters"]["deployerPrincipalId"]
    assignment = template["resources"]["deployerSecretsOfficer"]

    assert deployer["default"] is None, "deployerPrincipalId must be required: without it nobody may write the keys"
    assert "condition" not in assignment["config"]
    assert resource_config(assignment)["properties"]["principalType"] == "deployerPrincipalType"


def test_the_site_waits_for_its_deployment_container(template: dict[str, Any]) -> None:
    assert "deploymentContainer" in resource_config(template["resources"]["site"]).get("dependsOn", [])


def test_maximum_instance_count_stays_within_what_flex_consumption_accepts(template: dict[str, Any]) -> None:
    # https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#instance-memory: 40 to 1,000.
    parameter = template["parameters"]["maximumInstanceCount"]
    example = json.loads(PARAMETERS_EXAMPLE.read_text())["parameters"]["maximumInstanceCount"]["value"]

    assert bounds(parameter) == {"min_value": 40, "max_value": 1000}
    assert 40 <= parameter["default"] <= 1000 and 40 <= example <= 1000


def test_the_key_vault_name_can_be_chosen_for_a_redeploy_and_the_runbook_says_why(template: dict[str, Any]) -> None:
    assert template["parameters"]["keyVaultName"]["default"] == ""
    assert resource_config(template["resources"]["vault"])["name"] == "vaultName"
    doc = DEPLOY_DOC.read_text()
    assert "az keyvault recover" in doc and "keyVaultName" in doc and "90 days" in doc


def checkov_executable() -> Path:
    """checkov in .venv-tools/checkov, (re)installed from requirements-checkov.txt when that file changed."""
    executable = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / ".installed-from"
    wanted = CHECKOV_REQUIREMENTS.read_text()
    CHECKOV_VENV.parent.mkdir(exist_ok=True)
    with open(CHECKOV_VENV.parent / ".checkov.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once must not build the same venv
        if not (executable.exists() and stamp.exists() and stamp.read_text() == wanted):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], check=True)
            subprocess.run([str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "-r", str(CHECKOV_REQUIREMENTS)], check=True)
            stamp.write_text(wanted)
    return executable


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's Bicep report of a directory (no Prisma Cloud download: the guideline links are not needed)."""
    result = subprocess.run([str(checkov_executable()), "--directory", str(directory), "--framework", "bicep",
                             "--skip-download", "--output", "json"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first run also installs checkov (about two minutes)
def test_checkov_finds_no_failed_check_and_every_skip_says_why() -> None:
    report = run_checkov(REPO / "infra")
    failed = [f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in report["results"]["failed_checks"]]
    skipped = report["results"]["skipped_checks"]

    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= len(parse_bicep(BICEP)["resources"])
    assert failed == [], "fix these, or add `// checkov:skip=<id>: <why>` inside the resource:\n" + "\n".join(failed)
    for check in skipped:
        why = check["check_result"].get("suppress_comment", "")
        assert len(why.strip(" :")) >= 20, f"{check['check_id']}: say why it is skipped"


# ---- the runbook -------------------------------------------------------------------------------------------------

def steps(doc: str) -> dict[int, str]:
    """Step number -> heading, from the `## N. Heading` lines of docs/deploy.md."""
    return {int(n): title for n, title in re.findall(r"^## (\d+)\. (.+)$", doc, re.MULTILINE)}


# Where the runbook sends the reader by number: a pattern whose group is the step number, and a word of the heading
# that step must have.
STEP_REFERENCES = [
    (r"For step (\d+): Exchange Administrator", "Mail.Send"),
    (r"app roles `SSPR\.Admin`, `SSPR\.Reader` and `SSPR\.Helpdesk` are created in step (\d+)", "admin roles"),
    (r"redirect\s+URIs are set in step (\d+)", "Publish"),
    (r"`graph` stays failing until step (\d+)", "Graph permissions"),
    (r"scope it to that mailbox \(step (\d+)\)", "Mail.Send"),
    (r"Application Administrator for steps? (\d+)", "app registrations"),
    (r"Cloud Application Administrator\)\s+again for step (\d+)", "Who administers"),
]


def test_the_runbook_steps_are_numbered_as_they_run_and_references_point_at_the_right_step() -> None:
    doc = DEPLOY_DOC.read_text()
    numbered = steps(doc)
    assert list(numbered) == list(range(len(numbered))), list(numbered)
    for pattern, heading_word in STEP_REFERENCES:
        found = re.findall(pattern, doc)
        assert found, f"the runbook no longer says {pattern!r}"
        for number in found:
            assert heading_word in numbered.get(int(number), ""), f"{pattern}: step {number} is {numbered.get(int(number))}"


def test_the_prerequisites_name_the_tools_and_every_resource_provider_the_template_needs(
        template: dict[str, Any]) -> None:
    doc = DEPLOY_DOC.read_text()
    prerequisites = re.search(r"^## 0\. .*?(?=^## 1\. )", doc, re.MULTILINE | re.DOTALL)
    assert prerequisites is not None
    text = prerequisites.group(0)
    for tool in ("Node.js", "npm", "jq", "Azure CLI", "Python 3.11", "zip"):
        assert tool in text, tool
    namespaces = {r["type"].split("/")[0] for r in template["resources"].values()} - {"Microsoft.Authorization"}
    registered = set(re.findall(r"az provider register --namespace ([\w.]+)", text))
    assert namespaces <= registered, sorted(namespaces - registered)


def test_the_runbook_waits_for_the_deployers_role_before_writing_the_keys() -> None:
    doc = DEPLOY_DOC.read_text()
    step = re.search(r"^## 3\. .*?(?=^## 4\. )", doc, re.MULTILINE | re.DOTALL)
    assert step is not None
    wait, first_write = step.group(0).find("until az keyvault secret list"), step.group(0).find("az keyvault secret set")
    assert 0 <= wait < first_write, "wait for Key Vault Secrets Officer to propagate before the first secret set"
    assert "deployerPrincipalId=$(az ad signed-in-user show --query id -o tsv)" in doc


def section(doc: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", doc, re.MULTILINE | re.DOTALL)
    assert match is not None, f"docs/deploy.md has no '## {heading}'"
    return match.group(1)


def test_switching_to_a_user_assigned_identity_lists_everything_that_changes() -> None:
    text = section(DEPLOY_DOC.read_text(), "Switching to a user-assigned identity")
    for change in ("userAssignedIdentities", "AzureWebJobsStorage__credential", "managedidentity",
                   "AzureWebJobsStorage__clientId", "UserAssignedIdentity", "userAssignedIdentityResourceId",
                   "keyVaultReferenceIdentity", "Authorization=AAD;ClientId=", "SSPR_MANAGED_IDENTITY_CLIENT_ID",
                   "--principal-id"):
        assert change in text, change
    descriptions = json.loads(SAMPLE_SETTINGS.read_text())["Descriptions"]
    assert "managedidentity" in descriptions["AzureWebJobsStorage__credential"]
    assert "AzureWebJobsStorage__credential" in descriptions["AzureWebJobsStorage__clientId"]


def test_a_custom_domain_goes_through_front_door_end_to_end() -> None:
    text = section(DEPLOY_DOC.read_text(), "A custom domain through Azure Front Door")
    for step in ("az afd profile create", "az afd endpoint create", "az afd origin-group create", "az afd origin create",
                 "az afd custom-domain create", "az afd route create", "CNAME", "_dnsauth", "publicOrigin",
                 "redirectUris", "--function-host"):
        assert step in text, step
