"""The Graph + identity emulator over real HTTP: plain httpx, the real msgraph-sdk and PyJWT, nothing mocked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

REPO = Path(__file__).resolve().parents[2]
TENANT = "c0ffee00-5e1f-4ea5-b0a7-000000000001"
SVC = "c0ffee00-5e1f-4ea5-b0a7-0000000000a1"
PAGES = "c0ffee00-5e1f-4ea5-b0a7-0000000000a2"
OTHER = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
EVENTS = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
SECRETS = {SVC: "dev-sspr-service-secret", OTHER: "dev-other-app-secret", EVENTS: "dev-authevents-secret"}
PASSWORD = "Demo-Pass-2026!"
GRAPH = "https://graph.microsoft.com"
PILOT, PILOT_FINANCE, AUDITORS = (f"c0ffee00-5e1f-4ea5-b0a7-00000000200{n}" for n in (1, 2, 3))
CASEY = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
GENERATED = 300


class Emulator:
    """A running emulator subprocess and the URL it announced."""

    def __init__(self, *args: str) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.graph_emulator", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        self.ready_after = time.perf_counter() - self.started
        assert line.startswith("graph-emulator ready http://127.0.0.1:"), (line, self.process.stderr.read())
        self.base = line.split()[-1]

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    running = Emulator("--users", str(GENERATED))
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_tenant(http: httpx.Client) -> Iterator[None]:
    yield
    http.post("/_emulator/reset").raise_for_status()


def app_token(http: httpx.Client, client_id: str = SVC, scope: str = f"{GRAPH}/.default") -> str:
    response = http.post(f"/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": SECRETS[client_id],
        "scope": scope})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def user_token(http: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return http.post(f"/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "password", "client_id": PAGES, "username": username, "password": password,
        "scope": f"api://{SVC}/access_as_user openid profile"})


# The advanced-query settings an OData cast on directory objects needs (aad-advanced-queries).
EVENTUAL = {"ConsistencyLevel": "eventual"}


def graph(http: httpx.Client, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or app_token(http)}", **kwargs.pop("headers", {})}
    return http.request(method, path if path.startswith("http") else f"/v1.0{path}", headers=headers, **kwargs)


def page_all(http: httpx.Client, url: str, token: str,
             headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    items: list[dict[str, Any]] = []
    pages = 0
    body: dict[str, Any] = {}
    next_url: str | None = url
    while next_url:
        response = graph(http, "GET", next_url, token, headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
    return items, pages, body


# ---- paging and $select -----------------------------------------------------------------------------------


def test_users_page_with_top_and_absolute_next_links(http: httpx.Client, emulator: Emulator) -> None:
    token = app_token(http)
    users, pages, _ = page_all(http, "/users?$top=100&$select=id,userPrincipalName", token)
    assert len(users) >= GENERATED + 18
    assert len({u["id"] for u in users}) == len(users)
    assert pages == -(-len(users) // 100)
    first = graph(http, "GET", "/users?$top=100", token).json()
    assert first["@odata.nextLink"].startswith(f"{emulator.base}/v1.0/users?")
    assert len(graph(http, "GET", "/users", token).json()["value"]) == 100  # default page size
    assert graph(http, "GET", "/users?$top=1000", token).json()["error"]["code"] == "Request_BadRequest"


def test_select_returns_only_the_selected_properties(http: httpx.Client) -> None:
    token = app_token(http)
    body = graph(http, "GET", "/users?$select=id,accountEnabled,onPremisesSyncEnabled&$top=5", token).json()
    assert all(set(u) == {"id", "accountEnabled", "onPremisesSyncEnabled"} for u in body["value"])
    default = graph(http, "GET", "/users/casey@contoso.example", token).json()
    assert default["id"] == CASEY and "accountEnabled" not in default and default["displayName"] == "Casey Jensen"
    bad = graph(http, "GET", "/users?$select=nope", token)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest"


def test_filter_on_user_type_and_account_enabled(http: httpx.Client) -> None:
    token = app_token(http)
    guests, _, _ = page_all(http, "/users?$filter=userType eq 'Guest'&$select=id,userType&$top=999", token)
    assert guests and all(u["userType"] == "Guest" for u in guests)
    disabled, _, _ = page_all(http, "/users?$filter=accountEnabled eq false&$select=userPrincipalName", token)
    assert "disabled@contoso.example" in {u["userPrincipalName"] for u in disabled}


def test_unknown_user_is_graph_shaped_404(http: httpx.Client) -> None:
    response = graph(http, "GET", "/users/nobody@contoso.example")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound" and error["innerError"]["request-id"]
    assert response.headers["request-id"] and response.headers["client-request-id"]


# ---- msgraph-sdk -------------------------------------------------------------------------------------------


def sdk_client(base: str, client_id: str = SVC) -> Any:
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient

    class EmulatorTokens(AccessTokenProvider):
        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{base}/{TENANT}/oauth2/v2.0/token", data={
                    "grant_type": "client_credentials", "client_id": client_id,
                    "client_secret": SECRETS[client_id], "scope": f"{GRAPH}/.default"})
                response.raise_for_status()
                return str(response.json()["access_token"])

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator(["127.0.0.1"])

    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(EmulatorTokens()))
    adapter.base_url = f"{base}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def test_msgraph_sdk_pages_users_with_select(emulator: Emulator) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    async def run() -> tuple[list[Any], int]:
        client = sdk_client(emulator.base)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "accountEnabled"], top=100)
        page = await client.users.get(RequestConfiguration(query_parameters=query))
        users, pages = list(page.value), 1
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users.extend(page.value)
            pages += 1
        return users, pages

    users, pages = asyncio.run(run())
    assert len(users) >= GENERATED + 18 and pages >= 4
    casey = next(u for u in users if u.user_principal_name == "casey@contoso.example")
    assert casey.id == CASEY and casey.account_enabled is True and casey.display_name is None


def test_msgraph_sdk_retries_429_with_retry_after_then_succeeds(http: httpx.Client, emulator: Emulator) -> None:
    http.put("/_emulator/faults", json={"rules": [
        {"status": 429, "retryAfter": 1, "times": 1, "pathContains": f"/users/{CASEY}", "methods": ["GET"]}]}
    ).raise_for_status()

    async def run() -> Any:
        return await sdk_client(emulator.base).users.by_user_id(CASEY).get()

    started = time.perf_counter()
    user = asyncio.run(run())
    assert user.user_principal_name == "casey@contoso.example"
    assert time.perf_counter() - started >= 0.9  # waited for Retry-After
    stats = http.get("/_emulator/stats").json()
    assert stats["faultsFired"] == 1 and stats["graph"]["byRoute"]["GET /users/{id}"] == 2


def test_fault_answers_graph_shaped_429_with_retry_after(http: httpx.Client) -> None:
    http.put("/_emulator/faults", json={"seed": 7, "rules": [
        {"status": 503, "retryAfter": 2, "rate": 1.0, "times": 2, "pathContains": "/organization"}]})
    token = app_token(http)
    statuses = [graph(http, "GET", "/organization", token) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "2"
    assert statuses[0].json()["error"]["code"] == "ServiceUnavailable"


# ---- identity ----------------------------------------------------------------------------------------------


def test_token_validates_with_pyjwt_against_the_jwks(http: httpx.Client, emulator: Emulator) -> None:
    config = http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
    assert config["issuer"] == f"{emulator.base}/{TENANT}/v2.0"
    token = app_token(http, EVENTS, scope=f"api://{SVC}/.default")
    key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=SVC, issuer=config["issuer"])
    assert claims["azp"] == EVENTS and claims["tid"] == TENANT and claims["ver"] == "2.0"
    assert claims["idtyp"] == "app" and claims["oid"] == "c0ffee00-5e1f-4ea5-b0a7-0000000004e1"
    assert claims["exp"] - claims["iat"] == 3600


def test_password_grant_gives_user_tokens_with_assigned_app_roles(http: httpx.Client) -> None:
    casey = jwt.decode(user_token(http, "casey@contoso.example").json()["access_token"],
                       options={"verify_signature": False})
    assert casey["aud"] == SVC and casey["scp"] == "access_as_user" and casey["oid"] == CASEY
    assert casey["preferred_username"] == "casey@contoso.example" and casey["azp"] == PAGES and "roles" not in casey
    admin = jwt.decode(user_token(http, "admin@contoso.example").json()["access_token"],
                       options={"verify_signature": False})
    assert admin["roles"] == ["SSPR.Admin"]
    helpdesk = jwt.decode(user_token(http, "helpdesk@contoso.example").json()["access_token"],
                          options={"verify_signature": False})
    # SSPR.Helpdesk directly (the helpdesk page), SSPR.Reader through the group SSPR Helpdesk Readers
    assert sorted(helpdesk["roles"]) == ["SSPR.Helpdesk", "SSPR.Reader"]
    refused = user_token(http, "disabled@contoso.example")
    assert refused.status_code == 400 and refused.json()["error_codes"] == [50057]
    wrong = user_token(http, "casey@contoso.example", "Wrong-Pass-1")
    assert wrong.json()["error"] == "invalid_grant" and wrong.json()["error_codes"] == [50126]


def test_wrong_client_secret_is_invalid_client(http: httpx.Client) -> None:
    response = http.post(f"/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": SVC, "client_secret": "nope", "scope": f"{GRAPH}/.default"})
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")


def test_rotated_key_is_published_and_used_for_new_tokens(http: httpx.Client) -> None:
    old = app_token(http)
    rotated = http.post("/_emulator/keys/rotate").json()
    kids = {k["kid"] for k in http.get(f"/{TENANT}/discovery/v2.0/keys").json()["keys"]}
    assert kids == set(rotated["kids"]) and len(kids) >= 2
    new = app_token(http)
    assert jwt.get_unverified_header(new)["kid"] == rotated["kid"] != jwt.get_unverified_header(old)["kid"]
    assert graph(http, "GET", "/organization", old).status_code == 200


@pytest.mark.parametrize(("request_body", "message"), [
    ({"expiresIn": -60}, "expired"),
    ({"signWith": "unknown-key"}, "signature"),
    ({"claims": {"iss": "https://login.microsoftonline.com/evil/v2.0"}}, "issuer"),
    ({"claims": {"aud": SVC}}, "audience"),
])
def test_graph_refuses_bad_tokens_with_401(http: httpx.Client, request_body: dict[str, Any], message: str) -> None:
    claims = {"aud": GRAPH, "roles": ["User.Read.All"], "azp": SVC}
    claims.update(request_body.pop("claims", {}))
    token = http.post("/_emulator/tokens", json={"claims": claims, **request_body}).json()["access_token"]
    response = graph(http, "GET", "/users", token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert message in response.json()["error"]["message"]


def test_app_without_the_permission_gets_403(http: httpx.Client) -> None:
    token = app_token(http, OTHER)
    response = graph(http, "GET", "/users", token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


# ---- delta -------------------------------------------------------------------------------------------------


def test_delta_link_returns_only_users_changed_since(http: httpx.Client) -> None:
    token = app_token(http)
    users, _, last = page_all(http, "/users/delta?$select=id,displayName,accountEnabled", token)
    assert len(users) >= GENERATED + 18 and "@odata.deltaLink" in last
    delta_link = last["@odata.deltaLink"]
    assert graph(http, "PATCH", f"/users/{CASEY}", token, json={"displayName": "Casey J."}).status_code == 204
    created = http.post("/_emulator/users", json={"userPrincipalName": "new.hire@contoso.example",
                                                  "displayName": "New Hire"}).json()
    doomed = http.post("/_emulator/users", json={"userPrincipalName": "leaver@contoso.example"}).json()
    http.delete(f"/_emulator/users/{doomed['id']}").raise_for_status()
    http.put(f"/_emulator/groups/{PILOT}/members/p2@contoso.example").raise_for_status()
    changes, _, after = page_all(http, delta_link, token)
    by_id = {c["id"]: c for c in changes}
    assert by_id[CASEY]["displayName"] == "Casey J." and set(by_id[CASEY]) == {"id", "displayName", "accountEnabled"}
    assert by_id[created["id"]]["displayName"] == "New Hire"
    assert by_id[doomed["id"]]["@removed"] == {"reason": "deleted"}
    assert "c0ffee00-5e1f-4ea5-b0a7-00000000100b" in by_id  # p2 joined a group
    assert len(changes) == 4
    assert page_all(http, after["@odata.deltaLink"], token)[0] == []


# ---- groups and roles --------------------------------------------------------------------------------------


def test_transitive_members_flatten_nested_groups_across_pages(http: httpx.Client) -> None:
    token = app_token(http)
    members, pages, _ = page_all(
        http, f"/groups/{PILOT}/transitiveMembers/microsoft.graph.user?$select=id,userPrincipalName&$top=3&$count=true",
        token, EVENTUAL)
    upns = [m["userPrincipalName"] for m in members]
    assert {"casey@contoso.example", "fiona@contoso.example", "audrey@contoso.example"} <= set(upns)
    assert upns.count("frank@contoso.example") == 1 and pages == -(-len(upns) // 3)
    sdk_style = graph(http, "GET", f"/groups/{PILOT_FINANCE}/transitiveMembers/graph.user?$count=true", token,
                      headers=EVENTUAL).json()
    assert len(sdk_style["value"]) == 4  # fiona, frank, synced.p1, audrey
    assert graph(http, "GET", f"/groups/{PILOT}", token).json()["displayName"] == "SSPR Pilot"


def test_check_member_groups_is_transitive(http: httpx.Client) -> None:
    token = app_token(http)
    ids = [PILOT, PILOT_FINANCE, AUDITORS]
    audrey = graph(http, "POST", "/users/audrey@contoso.example/checkMemberGroups", token, json={"groupIds": ids})
    assert sorted(audrey.json()["value"]) == sorted(ids)
    casey = graph(http, "POST", f"/users/{CASEY}/checkMemberGroups", token, json={"groupIds": ids})
    assert casey.json()["value"] == [PILOT]
    too_many = graph(http, "POST", f"/users/{CASEY}/checkMemberGroups", token, json={"groupIds": ids * 7})
    assert too_many.status_code == 400


def test_directory_roles_and_licences(http: httpx.Client) -> None:
    token = app_token(http)
    roles = graph(http, "GET", "/users/admin@contoso.example/transitiveMemberOf/microsoft.graph.directoryRole"
                  "?$count=true", token, headers=EVENTUAL)
    assert [r["displayName"] for r in roles.json()["value"]] == ["Global Administrator"]
    assert graph(http, "GET", f"/users/{CASEY}/transitiveMemberOf/graph.directoryRole?$count=true", token,
                 headers=EVENTUAL).json()["value"] == []
    details = graph(http, "GET", "/users/synced.p1@contoso.example/licenseDetails", token).json()["value"]
    plans = {p["servicePlanName"]: p for d in details for p in d["servicePlans"]}
    assert plans["AAD_PREMIUM"]["servicePlanId"] == "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
    assert plans["AAD_PREMIUM"]["provisioningStatus"] == "Success"
    synced = graph(http, "GET", "/users/synced.user@contoso.example/licenseDetails", token).json()["value"]
    assert all(p["servicePlanName"] != "AAD_PREMIUM" for d in synced for p in d["servicePlans"])


def test_trial_switch_shows_in_directory_subscriptions(http: httpx.Client) -> None:
    token = app_token(http)
    assert not any(s["isTrial"] for s in graph(http, "GET", "/directory/subscriptions", token).json()["value"])
    http.patch("/_emulator/subscriptions", json={"isTrial": True}).raise_for_status()
    subs = graph(http, "GET", "/directory/subscriptions", token).json()["value"]
    assert subs and all(s["isTrial"] and s["status"] == "Enabled" for s in subs)
    assert {s["skuPartNumber"] for s in graph(http, "GET", "/subscribedSkus", token).json()["value"]} >= {"SPB"}


def test_registration_report_needs_premium_and_is_throttled(http: httpx.Client) -> None:
    token = app_token(http)
    path = "/reports/authenticationMethods/userRegistrationDetails"
    first = graph(http, "GET", path, token)
    assert first.status_code == 200 and {"isSsprRegistered", "isSsprCapable", "isAdmin"} <= set(first.json()["value"][0])
    for sku in ("SPB", "AAD_PREMIUM", "AAD_PREMIUM_P2"):
        http.patch("/_emulator/subscriptions", json={"skuPartNumber": sku, "status": "Suspended"}).raise_for_status()
    refused = graph(http, "GET", path, token)
    assert refused.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    statuses = [graph(http, "GET", path, token).status_code for _ in range(4)]
    assert statuses[-1] == 429


# ---- writes ------------------------------------------------------------------------------------------------


def test_password_reset_checks_complexity_then_new_password_signs_in(http: httpx.Client) -> None:
    token = app_token(http)
    weak = graph(http, "PATCH", "/users/fiona@contoso.example", token,
                 json={"passwordProfile": {"password": "password", "forceChangePasswordNextSignIn": False}})
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "Request_BadRequest"
    assert "does not comply with password complexity requirements" in weak.json()["error"]["message"]
    strong = graph(http, "PATCH", "/users/fiona@contoso.example", token,
                   json={"passwordProfile": {"password": "Brand-New-Pass-42", "forceChangePasswordNextSignIn": False}})
    assert strong.status_code == 204
    assert user_token(http, "fiona@contoso.example", "Brand-New-Pass-42").status_code == 200
    assert user_token(http, "fiona@contoso.example", PASSWORD).status_code == 400
    revoked = graph(http, "POST", "/users/fiona@contoso.example/revokeSignInSessions", token)
    assert revoked.status_code == 200 and revoked.json()["value"] is True
    assert http.get("/_emulator/users/fiona@contoso.example").json()["signInSessionsValidFromDateTime"]


def test_synced_user_password_reset_is_refused(http: httpx.Client) -> None:
    response = graph(http, "PATCH", "/users/synced.user@contoso.example",
                     json={"passwordProfile": {"password": "Brand-New-Pass-42"}})
    assert response.status_code == 400 and "on-premises mastered" in response.json()["error"]["message"]


def test_never_expire_policy_and_domain_expiration(http: httpx.Client) -> None:
    token = app_token(http)
    assert graph(http, "PATCH", f"/users/{CASEY}", token,
                 json={"passwordPolicies": "DisablePasswordExpiration"}).status_code == 204
    assert graph(http, "GET", f"/users/{CASEY}?$select=passwordPolicies", token).json()["passwordPolicies"] == \
        "DisablePasswordExpiration"
    assert graph(http, "PATCH", "/domains/contoso.example", token,
                 json={"passwordValidityPeriodInDays": 2147483647, "passwordNotificationWindowInDays": 7}
                 ).status_code == 204
    domain = next(d for d in graph(http, "GET", "/domains", token).json()["value"] if d["id"] == "contoso.example")
    assert domain["passwordValidityPeriodInDays"] == 2147483647 and domain["passwordNotificationWindowInDays"] == 7


def test_password_facts_come_only_on_select_in_utc_and_a_new_password_dates_its_change(http: httpx.Client) -> None:
    """user resource (Learn): lastPasswordChangeDateTime, passwordPolicies and onPremisesSyncEnabled are "returned
    only on $select"; the change time "is always in UTC"; a password set through Graph changes it."""
    token = app_token(http)
    facts = "lastPasswordChangeDateTime,passwordPolicies,onPremisesSyncEnabled"
    default = graph(http, "GET", "/users?$top=999", token).json()["value"]
    assert not any(set(facts.split(",")) & set(u) for u in default)
    users, _, _ = page_all(http, f"/users?$select=id,userPrincipalName,{facts}&$top=999", token)
    assert all(u["lastPasswordChangeDateTime"].endswith("Z") for u in users)
    generated = [u for u in users if u["userPrincipalName"].endswith("@contoso.example") and u["id"][:8] != "c0ffee00"]
    assert len({u["lastPasswordChangeDateTime"][:10] for u in generated}) > 60  # spread over 120 days
    synced = [u for u in generated if u["onPremisesSyncEnabled"]]
    assert synced and all(u["passwordPolicies"] == "DisablePasswordExpiration" for u in synced)
    set_at = http.patch(f"/_emulator/users/{CASEY}", json={"lastPasswordChangeDateTime": "2026-03-01T10:30:00+02:00"})
    assert set_at.status_code == 200 and set_at.json()["lastPasswordChangeDateTime"] == "2026-03-01T08:30:00Z"
    assert graph(http, "PATCH", f"/users/{CASEY}", token, json={"passwordProfile": {
        "password": "Fresh-Harbour-2026!", "forceChangePasswordNextSignIn": False}}).status_code == 204
    changed = graph(http, "GET", f"/users/{CASEY}?$select={facts}", token).json()["lastPasswordChangeDateTime"]
    assert changed > "2026-03-01T08:30:00Z"
    bad = http.patch(f"/_emulator/users/{CASEY}", json={"lastPasswordChangeDateTime": "last tuesday"})
    assert bad.status_code == 400


def test_send_mail_lands_in_the_outbox(http: httpx.Client) -> None:
    message = {"message": {"subject": "Your password was reset", "body": {"contentType": "HTML", "content": "<p>Hi</p>"},
                           "toRecipients": [{"emailAddress": {"address": "casey@contoso.example"}}]},
               "saveToSentItems": False}
    assert graph(http, "POST", "/users/noreply@contoso.example/sendMail", json=message).status_code == 202
    mail = http.get("/_emulator/outbox").json()["value"][0]
    assert mail["from"] == "noreply@contoso.example" and mail["to"] == ["casey@contoso.example"]
    assert mail["subject"] == "Your password was reset" and mail["contentType"] == "HTML"


def test_batch_dispatches_each_request(http: httpx.Client) -> None:
    batch = {"requests": [
        {"id": "1", "method": "GET", "url": "/users/casey@contoso.example?$select=id"},
        {"id": "2", "method": "GET", "url": "/users/missing@contoso.example"},
        {"id": "3", "method": "POST", "url": f"/users/{CASEY}/revokeSignInSessions", "dependsOn": ["1"]},
    ]}
    responses = {r["id"]: r for r in graph(http, "POST", "/$batch", json=batch).json()["responses"]}
    assert responses["1"]["status"] == 200 and responses["1"]["body"]["id"] == CASEY
    assert responses["2"]["status"] == 404 and responses["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert responses["3"]["status"] == 200
    too_many = graph(http, "POST", "/$batch",
                     json={"requests": [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]})
    assert too_many.status_code == 400


# ---- scale -------------------------------------------------------------------------------------------------


def test_hundred_thousand_users_generate_and_page_quickly() -> None:
    from devtools.graph_emulator.tenant import Tenant, load_fixture

    started = time.perf_counter()
    tenant = Tenant(load_fixture(), 100_000)
    generation = time.perf_counter() - started
    assert len(tenant.users) >= 100_000
    big = Emulator("--users", "100000")
    try:
        with httpx.Client(base_url=big.base, timeout=60) as client:
            token = app_token(client)
            started = time.perf_counter()
            users, pages, _ = page_all(client, "/users?$top=999&$select=id,userPrincipalName,accountEnabled", token)
            paging = time.perf_counter() - started
    finally:
        big.stop()
    print(f"\n100k users: generated in {generation:.2f} s, emulator ready in {big.ready_after:.2f} s, "
          f"{pages} pages in {paging:.2f} s")
    assert len(users) == len(tenant.users) and pages == -(-len(users) // 999)
    assert generation < 10 and big.ready_after < 20 and paging < 30


def test_resetting_an_admin_needs_a_privileged_directory_role(http: httpx.Client) -> None:
    http.patch(f"/_emulator/apps/{SVC}", json={"directoryRoles": ["User Administrator"]}).raise_for_status()
    token = app_token(http)
    profile = {"passwordProfile": {"password": "Brand-New-Pass-42", "forceChangePasswordNextSignIn": False}}
    admin = graph(http, "PATCH", "/users/admin@contoso.example", token, json=profile)
    assert admin.status_code == 403 and admin.json()["error"]["code"] == "Authorization_RequestDenied"
    assert graph(http, "PATCH", f"/users/{CASEY}", token, json=profile).status_code == 204


def test_authorization_code_flow_with_pkce_signs_in_through_the_form(http: httpx.Client) -> None:
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlsplit

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://localhost:5173/auth/callback"
    params = {"client_id": PAGES, "response_type": "code", "redirect_uri": redirect, "state": "xyz",
              "scope": f"api://{SVC}/access_as_user openid", "code_challenge": challenge,
              "code_challenge_method": "S256", "nonce": "n-123", "login_hint": "sven@contoso.example"}
    form = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=params)
    assert form.status_code == 200 and 'name="password"' in form.text
    wrong = http.post(f"/{TENANT}/oauth2/v2.0/authorize", data={**params, "username": "sven@contoso.example",
                                                                  "password": "nope"})
    assert "AADSTS50126" in wrong.text
    signed_in = http.post(f"/{TENANT}/oauth2/v2.0/authorize",
                          data={**params, "username": "sven@contoso.example", "password": PASSWORD})
    assert signed_in.status_code == 302
    location = urlsplit(signed_in.headers["Location"])
    reply = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.path == "/auth/callback" and reply["state"] == "xyz"
    redeem = {"grant_type": "authorization_code", "client_id": PAGES, "code": reply["code"],
              "redirect_uri": redirect, "code_verifier": "not-the-verifier"}
    token_url = f"/{TENANT}/oauth2/v2.0/token"
    assert http.post(token_url, data=redeem).json()["error"] == "invalid_grant"
    assert http.post(token_url, data=redeem).json()["error_codes"] == [70008]  # a code works once
    signed_in = http.post(f"/{TENANT}/oauth2/v2.0/authorize",
                          data={**params, "username": "sven@contoso.example", "password": PASSWORD})
    code = parse_qs(urlsplit(signed_in.headers["Location"]).query)["code"][0]
    tokens = http.post(token_url, data={**redeem, "code": code, "code_verifier": verifier}).json()
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    identity = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert access["aud"] == SVC and access["scp"] == "access_as_user" and access["preferred_username"] == \
        "sven@contoso.example"
    assert identity["aud"] == PAGES and identity["nonce"] == "n-123"
    preflight = http.options(token_url, headers={"Origin": "http://localhost:5173",
                                                 "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"


# ---- strictness the documentation asks for -------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    f"/groups/{PILOT}/transitiveMembers/microsoft.graph.user?$top=2",
    "/users/admin@contoso.example/transitiveMemberOf/microsoft.graph.directoryRole",
])
def test_a_cast_without_the_advanced_query_settings_is_refused_on_every_page(http: httpx.Client, path: str) -> None:
    token = app_token(http)
    for headers, query in (({}, ""), (EVENTUAL, ""), ({}, "$count=true")):
        refused = graph(http, "GET", path + ("&" if "?" in path else "?") + query if query else path, token,
                        headers=headers)
        assert refused.status_code == 400, (headers, query)
        assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    counted = path + ("&" if "?" in path else "?") + "$count=true"
    first = graph(http, "GET", counted, token, headers=EVENTUAL)
    assert first.status_code == 200 and "@odata.count" in first.json()
    if "@odata.nextLink" in first.json():
        next_link = first.json()["@odata.nextLink"]
        assert graph(http, "GET", next_link, token).json()["error"]["code"] == "Request_UnsupportedQuery"
        assert graph(http, "GET", next_link, token, headers=EVENTUAL).status_code == 200


@pytest.mark.parametrize("path", ["/users/delta?$select=id", f"/groups/delta?$filter=id eq '{PILOT}'"])
def test_an_expired_delta_token_answers_400_sync_state_not_found_and_a_forced_resync_410(
        http: httpx.Client, path: str) -> None:
    token = app_token(http)
    _, _, last = page_all(http, path, token)
    delta_link = last["@odata.deltaLink"]
    http.post("/_emulator/reset").raise_for_status()  # a new tenant state: the old token has expired
    expired = graph(http, "GET", delta_link, token)
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "syncStateNotFound"

    _, _, last = page_all(http, path, token)
    http.post("/_emulator/delta/resync").raise_for_status()
    gone = graph(http, "GET", last["@odata.deltaLink"], token)
    assert gone.status_code == 410
    assert gone.headers["Location"].endswith(path.split("?")[0])


def test_the_registration_report_refuses_query_options_it_does_not_document(http: httpx.Client) -> None:
    token = app_token(http)
    path = "/reports/authenticationMethods/userRegistrationDetails"
    refused = graph(http, "GET", f"{path}?$select=id,isSsprRegistered", token)
    assert refused.status_code == 400 and "$select" in refused.json()["error"]["message"]
    assert graph(http, "GET", f"{path}?$filter=isSsprRegistered eq true&$top=5", token).status_code == 200


def test_user_read_update_all_is_enough_to_write_password_policies_but_not_a_password(http: httpx.Client) -> None:
    claims = {"aud": GRAPH, "roles": ["User.ReadUpdate.All"], "azp": SVC}
    token = http.post("/_emulator/tokens", json={"claims": claims}).json()["access_token"]
    policies = graph(http, "PATCH", f"/users/{CASEY}", token, json={"passwordPolicies": "DisablePasswordExpiration"})
    assert policies.status_code == 204, policies.text
    password = graph(http, "PATCH", f"/users/{CASEY}", token,
                     json={"passwordProfile": {"password": "Brand-New-Pass-42"}})
    assert password.status_code == 403


# ---- groups by name, $count segments, users by id in one filter (directory_graph.py) --------------------------


def test_group_search_is_an_advanced_query_tokenized_on_words_and_paged_with_its_count(http: httpx.Client) -> None:
    """aad-advanced-queries: $search on directory objects needs ConsistencyLevel: eventual; $count=true without
    the header is silently ignored. search-query-parameter: clauses in double quotes, words matched by prefix."""
    token = app_token(http)
    refused = graph(http, "GET", '/groups?$search="displayName:pilot"', token)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    unquoted = graph(http, "GET", "/groups?$search=displayName:pilot", token, headers=EVENTUAL)
    assert unquoted.status_code == 400
    found = graph(http, "GET", '/groups?$search="displayName:pil"&$count=true&$select=id,displayName', token,
                  headers=EVENTUAL).json()
    assert [g["displayName"] for g in found["value"]] == ["SSPR Pilot", "SSPR Pilot - Finance"]
    assert found["@odata.count"] == 2 and set(found["value"][0]) == {"id", "displayName"}
    both = graph(http, "GET", '/groups?$search="displayName:finance" AND "displayName:pilot"', token,
                 headers=EVENTUAL).json()["value"]
    assert [g["id"] for g in both] == [PILOT_FINANCE]
    uncounted = graph(http, "GET", "/groups?$count=true", token).json()
    assert "@odata.count" not in uncounted
    items, pages, _ = page_all(http, "/groups?$top=2&$count=true", token, headers=EVENTUAL)
    assert pages == 3 and len({g["id"] for g in items}) == len(items) == 5


def test_count_segments_need_the_advanced_query_header_and_count_users_as_graph_does(http: httpx.Client) -> None:
    token = app_token(http)
    bare = graph(http, "GET", f"/groups/{AUDITORS}/transitiveMembers/microsoft.graph.user/$count", token)
    assert bare.status_code == 400 and bare.json()["error"]["message"] == "$count is not currently supported."
    users = graph(http, "GET", f"/groups/{PILOT_FINANCE}/transitiveMembers/microsoft.graph.user/$count", token,
                  headers=EVENTUAL)
    assert users.status_code == 200 and users.headers["content-type"].startswith("text/plain")
    assert users.text == "4"  # Fiona, Frank, Petra and, nested, Audrey (Frank once)
    direct = graph(http, "GET", f"/groups/{PILOT_FINANCE}/members/$count", token, headers=EVENTUAL)
    assert direct.text == "4"  # three users and the nested group


def test_users_by_id_in_one_filter_of_at_most_15(http: httpx.Client) -> None:
    token = app_token(http)
    ids = [CASEY, "c0ffee00-5e1f-4ea5-b0a7-000000001004"]
    quoted = ",".join(f"'{i}'" for i in ids)
    found = graph(http, "GET", f"/users?$filter=id in ({quoted})&$select=id,displayName", token).json()["value"]
    assert {u["displayName"] for u in found} == {"Casey Jensen", "Sven Svensson"}
    many = ",".join(f"'{i:08x}-0000-0000-0000-000000000000'" for i in range(16))
    refused = graph(http, "GET", f"/users?$filter=id in ({many})", token)
    assert refused.status_code == 400 and "Max allowed: 15" in refused.json()["error"]["message"]


# ---- company branding (api/organizationalbranding-get) ----------------------------------------------------------


def test_branding_by_language_its_images_as_streams_and_404_without_it(http: httpx.Client) -> None:
    token = app_token(http)
    default = graph(http, "GET", f"/organization/{TENANT}/branding", token, headers={"Accept-Language": "0"}).json()
    assert default["id"] == "0" and default["backgroundColor"] == "#0B3D6B"
    assert default["bannerLogoRelativeUrl"] and "Contoso IT never asks" in default["signInPageText"]
    swedish = graph(http, "GET", f"/organization/{TENANT}/branding", token, headers={"Accept-Language": "sv-SE"})
    assert swedish.json()["id"] == "sv-SE" and "Contosos IT" in swedish.json()["signInPageText"]
    assert graph(http, "GET", f"/organization/{TENANT}/branding", token,
                 headers={"Accept-Language": "fr-FR"}).status_code == 404
    localizations = graph(http, "GET", f"/organization/{TENANT}/branding/localizations", token).json()["value"]
    assert [item["id"] for item in localizations] == ["0", "sv-SE"]
    logo = graph(http, "GET", f"/organization/{TENANT}/branding/localizations/0/bannerLogo", token)
    assert logo.status_code == 200 and logo.content.startswith(b"\x89PNG")
    unset = graph(http, "GET", f"/organization/{TENANT}/branding/localizations/sv-SE/backgroundImage", token)
    assert unset.status_code == 200 and unset.json() == {}
    http.put("/_emulator/branding", json={}).raise_for_status()
    assert graph(http, "GET", f"/organization/{TENANT}/branding", token,
                 headers={"Accept-Language": "0"}).status_code == 404
    assert graph(http, "GET", f"/organization/{TENANT}/branding", app_token(http, OTHER),
                 headers={"Accept-Language": "0"}).status_code == 403


def test_a_users_preferred_language_is_the_optional_claim_xms_pl(http: httpx.Client) -> None:
    swedish = jwt.decode(user_token(http, "sven@contoso.example").json()["access_token"],
                         options={"verify_signature": False})
    assert swedish["xms_pl"] == "sv-se"
    nobody = jwt.decode(user_token(http, "gia.guest_fabrikam.example#EXT#@contosodemo.onmicrosoft.com").json()
                        ["access_token"], options={"verify_signature": False})
    assert "xms_pl" not in nobody


def test_an_inline_image_travels_with_the_mail_into_the_outbox(http: httpx.Client) -> None:
    token = app_token(http)
    message = {"subject": "s", "body": {"contentType": "HTML", "content": '<img src="cid:logo">'},
               "toRecipients": [{"emailAddress": {"address": "casey.home@example.org"}}],
               "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
                                "contentType": "image/png", "contentBytes": "iVBORw0KGgo=", "contentId": "logo",
                                "isInline": True}]}
    sent = graph(http, "POST", "/users/noreply@contoso.example/sendMail", token, json={"message": message})
    assert sent.status_code == 202, sent.text
    [mail] = [m for m in http.get("/_emulator/outbox").json()["value"] if "casey.home@example.org" in m["to"]]
    assert mail["attachments"][0] | {"contentBytes": None} == {
        "name": "logo.png", "contentType": "image/png", "contentId": "logo", "isInline": True, "contentBytes": None,
        "size": 8}
    broken = {**message, "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "x"}]}
    assert graph(http, "POST", "/users/noreply@contoso.example/sendMail", token,
                 json={"message": broken}).status_code == 400
