"""scripts/grant_permissions.py and scripts/register_hook.py against the Graph emulator, run as an admin would.

Each script runs as `python -m scripts.<name>` in its own process, signed in as a deployer app (the demo
tenant's unrelated app, given the deployer's Graph permissions for the test); what it did is read back through
Graph, and through the service's own Graph token, never from the script's word alone. The tests use their own
emulator, reset before each test, because they change the service app's permissions.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx
import jwt
import pytest

from devtools.azurite import Azurite
from devtools.processes import REPO_ROOT
from devtools.stack import DEMO_TENANT_ID, SERVICE_APP_ID, SERVICE_APP_SECRET, GraphEmulator
from scripts.permissions import (
    HOOK_PAYLOAD_PERMISSION,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    SERVICE_PERMISSION_NAMES,
    USER_ADMINISTRATOR,
)
from tests.fixtures import own_emulator
from tests.integration.tokens import OTHER_APP_ID, OTHER_APP_SECRET, PAGES_APP_ID, app_token

GRAPH = "https://graph.microsoft.com"
SERVICE_SP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000004a1"
DEPLOYER_PERMISSIONS = ["Application.Read.All", "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                        "RoleManagement.ReadWrite.Directory", "CustomAuthenticationExtension.ReadWrite.All",
                        "EventListener.ReadWrite.All"]
FUNCTION_HOST = "sspr-prod.azurewebsites.net"
RESOURCE_ID = f"api://{FUNCTION_HOST}/{SERVICE_APP_ID}"


emulator = own_emulator("module", "emulator")


@pytest.fixture
def tenant(emulator: GraphEmulator) -> GraphEmulator:
    """The demo tenant afresh, a deployer app, and a service app that holds no permission or role yet."""
    httpx.post(f"{emulator.base_url}/_emulator/reset", timeout=10).raise_for_status()
    control(emulator, OTHER_APP_ID, {"graphPermissions": DEPLOYER_PERMISSIONS})
    control(emulator, SERVICE_APP_ID, {"graphPermissions": [], "directoryRoles": []})
    return emulator


def control(emulator: GraphEmulator, app_id: str, body: dict[str, Any]) -> None:
    httpx.patch(f"{emulator.base_url}/_emulator/apps/{app_id}", json=body, timeout=10).raise_for_status()


def run_script(emulator: GraphEmulator, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SSPR_DEPLOY_CLIENT_ID": OTHER_APP_ID, "SSPR_DEPLOY_CLIENT_SECRET": OTHER_APP_SECRET}
    return subprocess.run(
        [sys.executable, "-m", f"scripts.{name}", "--tenant-id", DEMO_TENANT_ID, "--auth", "client-secret",
         "--graph-base-url", emulator.graph_url, "--authority", emulator.base_url, *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def graph(emulator: GraphEmulator, method: str, path: str, body: Any = None) -> Any:
    """A Graph call as the deployer, to read back what the scripts did."""
    token = app_token(emulator, OTHER_APP_ID, OTHER_APP_SECRET, resource=GRAPH)
    response = httpx.request(method, f"{emulator.graph_url}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json() if response.content else None


def service_token_roles(emulator: GraphEmulator) -> set[str]:
    """The application permissions in the service's own Graph token: what the deployed service can do."""
    token = app_token(emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, resource=GRAPH)
    return set(jwt.decode(token, options={"verify_signature": False}).get("roles", []))


def directory_roles_of_service(emulator: GraphEmulator) -> set[str]:
    found = graph(emulator, "GET", f"/roleManagement/directory/roleAssignments?$filter=principalId eq '{SERVICE_SP_ID}'")
    return {a["roleDefinitionId"] for a in found["value"]}


# ---- grant_permissions ------------------------------------------------------------------------------------


def grant(emulator: GraphEmulator, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_script(emulator, "grant_permissions", "--principal-id", SERVICE_SP_ID, *extra)


def test_grant_dry_run_lists_every_missing_permission_and_grants_nothing(tenant: GraphEmulator) -> None:
    result = grant(tenant, "--dry-run")

    assert result.returncode == 0, result.stderr
    for name in SERVICE_PERMISSION_NAMES:
        assert f"would grant   {name}:" in result.stdout
    assert "would assign  User Administrator" in result.stdout
    assert "Dry run: 11 change(s) needed, none made." in result.stdout
    assert service_token_roles(tenant) == set()
    assert directory_roles_of_service(tenant) == set()


def test_grant_gives_the_service_exactly_the_contract_permissions_and_user_administrator(tenant: GraphEmulator) -> None:
    result = grant(tenant)

    assert result.returncode == 0, result.stderr
    assert "Done: 11 change(s) made." in result.stdout
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES
    assert directory_roles_of_service(tenant) == {USER_ADMINISTRATOR.template_id}
    assert "New-ApplicationAccessPolicy -AppId " + SERVICE_APP_ID in result.stdout


def test_grant_asks_for_user_read_update_all_the_least_privileged_way_to_write_password_policies(
        tenant: GraphEmulator) -> None:
    assert grant(tenant).returncode == 0

    roles = service_token_roles(tenant)
    assert "User.ReadUpdate.All" in roles and "User.ReadWrite.All" not in roles
    service = app_token(tenant, SERVICE_APP_ID, SERVICE_APP_SECRET, resource=GRAPH)
    written = httpx.patch(f"{tenant.graph_url}/users/casey@contoso.example", timeout=10,
                          json={"passwordPolicies": "DisablePasswordExpiration"},
                          headers={"Authorization": f"Bearer {service}"})
    assert written.status_code == 204, written.text


def test_grant_run_again_changes_nothing_and_says_so(tenant: GraphEmulator) -> None:
    assert grant(tenant).returncode == 0

    again = grant(tenant)

    assert again.returncode == 0, again.stderr
    assert "Nothing to change: everything was already in place." in again.stdout
    for name in SERVICE_PERMISSION_NAMES:
        assert f"unchanged     {name} (already granted)" in again.stdout
    assert "\n  granted" not in again.stdout and "\n  assigned" not in again.stdout
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES


def test_admin_resets_adds_privileged_authentication_administrator_only_when_asked(tenant: GraphEmulator) -> None:
    assert grant(tenant).returncode == 0
    assert PRIVILEGED_AUTHENTICATION_ADMINISTRATOR.template_id not in directory_roles_of_service(tenant)

    result = grant(tenant, "--admin-resets")

    assert "Done: 1 change(s) made." in result.stdout
    assert directory_roles_of_service(tenant) == {USER_ADMINISTRATOR.template_id,
                                                   PRIVILEGED_AUTHENTICATION_ADMINISTRATOR.template_id}
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES


def test_the_permissions_of_a_policy_switch_are_granted_only_with_its_flag(tenant: GraphEmulator) -> None:
    assert grant(tenant).returncode == 0
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES  # no switch, no extra permission

    entra = grant(tenant, "--entra-methods")
    assert "Done: 1 change(s) made." in entra.stdout, entra.stdout
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES | {"UserAuthenticationMethod.Read.All"}

    passes = grant(tenant, "--entra-methods", "--temporary-access-pass")
    assert "Done: 2 change(s) made." in passes.stdout, passes.stdout
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES | {
        "UserAuthenticationMethod.Read.All", "UserAuthMethod-TAP.ReadWrite.All", "Policy.Read.All"}

    without = grant(tenant)  # the switches turned off again: named for removal, never removed
    assert "note          UserAuthMethod-TAP.ReadWrite.All is granted but the service does not need it" \
        in without.stdout
    assert "UserAuthMethod-TAP.ReadWrite.All" in service_token_roles(tenant)


def test_a_broader_permission_already_held_is_named_but_never_granted_nor_removed(tenant: GraphEmulator) -> None:
    control(tenant, SERVICE_APP_ID, {"graphPermissions": ["Directory.ReadWrite.All"]})

    result = grant(tenant)

    assert result.returncode == 0, result.stderr
    assert "note          Directory.ReadWrite.All is granted but the service does not need it" in result.stdout
    assert service_token_roles(tenant) == SERVICE_PERMISSION_NAMES | {"Directory.ReadWrite.All"}


def test_a_deployer_without_the_right_permission_stops_with_graphs_refusal(tenant: GraphEmulator) -> None:
    control(tenant, OTHER_APP_ID, {"graphPermissions": ["Application.Read.All", "RoleManagement.ReadWrite.Directory"]})

    result = grant(tenant)

    assert result.returncode == 2
    assert "granting Organization.Read.All: Graph answered 403 Authorization_RequestDenied" in result.stderr
    assert service_token_roles(tenant) == set()


# ---- register_hook ----------------------------------------------------------------------------------------


def register(emulator: GraphEmulator, *extra: str) -> subprocess.CompletedProcess[str]:
    args = extra if "--app-id" in extra else (*extra, "--app-id", PAGES_APP_ID)
    return run_script(emulator, "register_hook", "--api-app-id", SERVICE_APP_ID, "--function-host", FUNCTION_HOST,
                      *args)


@pytest.fixture
def bare_api_app(tenant: GraphEmulator) -> GraphEmulator:
    """The API app without its app roles (removed the way Graph allows: disabled first)."""
    path = f"/applications(appId='{SERVICE_APP_ID}')"
    roles = graph(tenant, "GET", path)["appRoles"]
    graph(tenant, "PATCH", path, {"appRoles": [{**r, "isEnabled": False} for r in roles]})
    graph(tenant, "PATCH", path, {"appRoles": []})
    return tenant


def extensions(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(graph(emulator, "GET", "/identity/customAuthenticationExtensions")["value"])


def listeners(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(graph(emulator, "GET", "/identity/authenticationEventListeners")["value"])


def test_register_dry_run_creates_nothing(bare_api_app: GraphEmulator) -> None:
    result = register(bare_api_app, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "would create  app role SSPR.Admin" in result.stdout
    assert "would create  app role SSPR.Helpdesk" in result.stdout
    assert "would create  custom authentication extension 'SSPR registration check'" in result.stdout
    assert "Dry run: 7 change(s) needed, none made." in result.stdout
    assert extensions(bare_api_app) == [] and listeners(bare_api_app) == []
    assert graph(bare_api_app, "GET", f"/applications(appId='{SERVICE_APP_ID}')")["appRoles"] == []


def test_register_creates_app_roles_extension_and_listener_as_entra_expects(bare_api_app: GraphEmulator) -> None:
    result = register(bare_api_app)

    assert result.returncode == 0, result.stderr
    assert "Done: 7 change(s) made." in result.stdout
    app = graph(bare_api_app, "GET", f"/applications(appId='{SERVICE_APP_ID}')")
    assert {r["value"] for r in app["appRoles"] if r["isEnabled"]} == {"SSPR.Admin", "SSPR.Reader", "SSPR.Helpdesk"}
    helpdesk = next(r for r in app["appRoles"] if r["value"] == "SSPR.Helpdesk")
    assert helpdesk["allowedMemberTypes"] == ["User"], "a helpdesk agent is a person, never an app"
    assert RESOURCE_ID in app["identifierUris"]
    [extension] = extensions(bare_api_app)
    assert extension["@odata.type"] == "#microsoft.graph.onTokenIssuanceStartCustomExtension"
    assert extension["endpointConfiguration"]["targetUrl"] == f"https://{FUNCTION_HOST}/api/hooks/token-issuance-start"
    assert extension["authenticationConfiguration"] == {"@odata.type": "#microsoft.graph.azureAdTokenAuthentication",
                                                        "resourceId": RESOURCE_ID}
    assert extension["clientConfiguration"]["timeoutInMilliseconds"] == 1500
    assert extension["clientConfiguration"]["maximumRetries"] == 1
    assert [c["claimIdInApiResponse"] for c in extension["claimsForTokenConfiguration"]] == [
        "ssprRegistrationRequired", "ssprRegistrationUrl"]
    [listener] = listeners(bare_api_app)
    assert listener["@odata.type"] == "#microsoft.graph.onTokenIssuanceStartListener"
    assert listener["handler"]["customExtension"]["id"] == extension["id"]
    assert listener["conditions"]["applications"]["includeApplications"] == [{"appId": PAGES_APP_ID}]
    # The one Graph permission the hook adds to the API's principal is the one Entra requires of it.
    assert service_token_roles(bare_api_app) == {HOOK_PAYLOAD_PERMISSION}


def test_register_run_again_changes_nothing_and_says_so(bare_api_app: GraphEmulator) -> None:
    assert register(bare_api_app).returncode == 0
    before = (extensions(bare_api_app), listeners(bare_api_app))

    again = register(bare_api_app)

    assert again.returncode == 0, again.stderr
    assert "Nothing to change: everything was already in place." in again.stdout
    assert (extensions(bare_api_app), listeners(bare_api_app)) == before


def test_register_with_a_new_timeout_and_apps_updates_the_same_extension_and_listener(bare_api_app: GraphEmulator) -> None:
    assert register(bare_api_app).returncode == 0

    result = register(bare_api_app, "--timeout-ms", "2000", "--app-id", PAGES_APP_ID, "--app-id", SERVICE_APP_ID)

    assert result.returncode == 0, result.stderr
    assert "timeout ms 1500 -> 2000" in result.stdout
    assert "Done: 2 change(s) made." in result.stdout
    [extension] = extensions(bare_api_app)
    assert extension["clientConfiguration"]["timeoutInMilliseconds"] == 2000
    [listener] = listeners(bare_api_app)
    assert sorted(a["appId"] for a in listener["conditions"]["applications"]["includeApplications"]) == sorted(
        [PAGES_APP_ID, SERVICE_APP_ID])


def test_register_refuses_a_timeout_outside_1000_to_2000_ms_before_calling_graph(bare_api_app: GraphEmulator) -> None:
    result = register(bare_api_app, "--timeout-ms", "2500")

    assert result.returncode == 2
    assert "must be 1000-2000 ms" in result.stderr
    assert extensions(bare_api_app) == []


# ---- replay_poison (docs/operations.md) ---------------------------------------------------------------------


def test_replay_poison_moves_each_message_back_unchanged_once_and_dry_run_moves_nothing(azurite: Azurite) -> None:
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    queue = f"replay{uuid.uuid4().hex[:8]}-notifications"
    poison = service.create_queue(f"{queue}-poison")
    service.create_queue(queue)
    bodies = [base64.b64encode(json.dumps({"kind": "verification-code", "n": n}).encode()).decode() for n in range(3)]
    for body in bodies:
        poison.send_message(body)
    command = [sys.executable, "-m", "scripts.replay_poison", "--connection-string", azurite.connection_string,
               "--queue", queue]

    dry = subprocess.run([*command, "--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would move") == 3 and "none moved" in dry.stdout
    assert service.get_queue_client(queue).get_queue_properties().approximate_message_count == 0

    real = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert real.returncode == 0, real.stderr
    assert f"Done: 3 message(s) moved from {queue}-poison to {queue}." in real.stdout
    assert all(body not in real.stdout for body in bodies)  # contents are never printed
    moved = [m.content for m in service.get_queue_client(queue).receive_messages(max_messages=32)]
    assert sorted(moved) == sorted(bodies)
    assert list(poison.peek_messages(max_messages=32)) == []

    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert f"Nothing to move: {queue}-poison is empty." in again.stdout


def test_register_finds_its_extension_and_listener_beyond_the_first_page(bare_api_app: GraphEmulator) -> None:
    for n in range(25):  # the emulator pages these lists 25 at a time: ours land on the second page
        decoy = graph(bare_api_app, "POST", "/identity/customAuthenticationExtensions", {
            "@odata.type": "#microsoft.graph.onTokenIssuanceStartCustomExtension", "displayName": f"decoy {n}",
            "endpointConfiguration": {"@odata.type": "#microsoft.graph.httpRequestEndpoint",
                                      "targetUrl": "https://decoy.example/hook"},
            "authenticationConfiguration": {"@odata.type": "#microsoft.graph.azureAdTokenAuthentication",
                                            "resourceId": "api://decoy.example"}})
        graph(bare_api_app, "POST", "/identity/authenticationEventListeners", {
            "@odata.type": "#microsoft.graph.onTokenIssuanceStartListener", "displayName": f"decoy {n} listener",
            "conditions": {"applications": {"includeApplications": [{"appId": PAGES_APP_ID}]}},
            "handler": {"@odata.type": "#microsoft.graph.onTokenIssuanceStartCustomExtensionHandler",
                        "customExtension": {"id": decoy["id"]}}})
    assert register(bare_api_app).returncode == 0

    again = register(bare_api_app)

    assert again.returncode == 0, again.stderr
    assert "Nothing to change: everything was already in place." in again.stdout, again.stdout
    every = graph(bare_api_app, "GET", "/identity/customAuthenticationExtensions?$top=999")["value"]
    assert [e["displayName"] for e in every].count("SSPR registration check") == 1
    listed = graph(bare_api_app, "GET", "/identity/authenticationEventListeners?$top=999")["value"]
    assert [e["displayName"] for e in listed].count("SSPR registration check listener") == 1
