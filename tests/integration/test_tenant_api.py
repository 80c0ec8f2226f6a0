"""GET /api/manage/tenant/eligibility through the local host and the emulator's demo tenant.

The counts are checked against an independent oracle: Graph's per-user `licenseDetails`, the slow way the
service avoids. The emulator's tenant is changed only through its control API and put back after each test.
"In scope" is the Enablement table once a run has completed: the module enables All first (the session host is
shared, so an earlier module may have left another scope) and puts All back after enabling SSPR Pilot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.stack import SERVICE_APP_ID, SERVICE_APP_SECRET, FunctionHost, GraphEmulator, app_settings
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.services.tenant import EnablementRows
from tests.integration.tokens import app_token, bearer, user_token

ADMIN = "admin@contoso.example"
READER = "reader@contoso.example"
CASEY = "casey@contoso.example"
SAM_SYNCED_NO_P1 = "synced.user@contoso.example"
PETRA_SYNCED_P1 = "synced.p1@contoso.example"
PILOT = "c0ffee00-5e1f-4ea5-b0a7-000000002001"
FINANCE = "c0ffee00-5e1f-4ea5-b0a7-000000002002"
PETRA_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001006"
PREMIUM_PLANS = {"41781fb2-bc02-4b7c-bd55-b576c07bb09d", "eec0eb4f-6444-4f95-aba0-50c24d67f998"}


def eligibility(host: FunctionHost, emulator: GraphEmulator, upn: str | None = ADMIN,
                language: str | None = None, **query: str) -> httpx.Response:
    headers = bearer(user_token(emulator, upn)) if upn else {}
    if language:
        headers["Accept-Language"] = language
    return httpx.get(f"{host.base_url}/api/manage/tenant/eligibility", headers=headers, timeout=30, params=query)


def by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in body["findings"]}


def oracle(emulator: GraphEmulator) -> dict[str, int]:
    """Counts the slow, obvious way: list enabled members, then ask licenseDetails for every synced one."""
    token = app_token(emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, resource="https://graph.microsoft.com")
    with httpx.Client(base_url=emulator.graph_url, headers=bearer(token), timeout=10) as graph:
        users: list[dict[str, Any]] = []
        url: str | None = "/users?$select=id,accountEnabled,userType,onPremisesSyncEnabled&$top=10"
        while url:
            page = graph.get(url).json()
            users.extend(page["value"])
            url = page.get("@odata.nextLink")
        in_scope = [u for u in users if u["accountEnabled"] and u["userType"] == "Member"]
        synced = [u for u in in_scope if u["onPremisesSyncEnabled"]]
        without = 0
        for user in synced:
            details = graph.get(f"/users/{user['id']}/licenseDetails").json()["value"]
            plans = {p["servicePlanId"] for d in details for p in d["servicePlans"]
                     if p["provisioningStatus"] == "Success"}
            without += not plans & PREMIUM_PLANS
    return {"usersInScope": len(in_scope), "syncedUsers": len(synced), "syncedWithoutPremium": without}


def enable(host: FunctionHost, emulator: GraphEmulator, body: dict[str, Any]) -> str:
    """Request enablement and wait for the run to complete; its id."""
    response = httpx.post(f"{host.base_url}/api/manage/enablement", json=body,
                          headers=bearer(user_token(emulator, ADMIN)), timeout=30)
    assert response.status_code == 202, response.text
    run_id = str(response.json()["id"])
    deadline = time.monotonic() + 60
    while (run := httpx.get(f"{host.base_url}/api/manage/enablement/{run_id}",
                            headers=bearer(user_token(emulator, READER)), timeout=15).json())["state"] != "completed":
        assert run["state"] != "failed" and time.monotonic() < deadline, run
        time.sleep(0.2)
    return run_id


@pytest.fixture(scope="module", autouse=True)
def enabled_for_all(service_host: FunctionHost, graph_emulator: GraphEmulator) -> str:
    return enable(service_host, graph_emulator, {"scope": "all"})


@pytest.fixture
def control(graph_emulator: GraphEmulator) -> Iterator[httpx.Client]:
    """The emulator's control API; subscriptions and the two synced demo users are put back afterwards."""
    with httpx.Client(base_url=f"{graph_emulator.base_url}/_emulator", timeout=10) as client:
        yield client
        client.patch("/subscriptions", json={"isTrial": False, "status": "Enabled"}).raise_for_status()
        client.patch(f"/users/{SAM_SYNCED_NO_P1}", json={"licenses": ["O365_BUSINESS_ESSENTIALS"]}).raise_for_status()
        client.patch(f"/users/{PETRA_SYNCED_P1}", json={"licenses": ["AAD_PREMIUM"]}).raise_for_status()


def test_the_demo_tenant_is_paid_has_premium_and_counts_synced_users_without_it(
        service_host: FunctionHost, graph_emulator: GraphEmulator, enabled_for_all: str) -> None:
    response = eligibility(service_host, graph_emulator)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["lang"] == "en"
    assert body["scope"] == {"source": "enablement", "runId": enabled_for_all, "users": oracle(graph_emulator)["usersInScope"]}
    assert body["severity"] == "warning"
    findings = by_code(body)
    assert list(findings) == ["PAID_PLAN", "PREMIUM_PRESENT", "SYNCED_USERS_WITHOUT_PREMIUM"]
    assert findings["PAID_PLAN"]["severity"] == "ok"
    assert findings["PAID_PLAN"]["counts"] == {"paidSubscriptions": 4, "trialSubscriptions": 0}
    assert findings["PREMIUM_PRESENT"]["severity"] == "ok"
    synced = findings["SYNCED_USERS_WITHOUT_PREMIUM"]
    assert synced["severity"] == "warning"
    expected = oracle(graph_emulator)
    assert synced["counts"] == expected
    # Named synced users (Sam without P1, Petra with it) plus the generated ones, disabled and guests left out.
    # Other modules may add users to the shared emulator: the independent oracle, not a fixed count, is the truth.
    assert 2 <= expected["syncedUsers"] < expected["usersInScope"]
    assert expected["syncedWithoutPremium"] >= 1 and expected["syncedWithoutPremium"] < expected["syncedUsers"]
    count = expected["syncedWithoutPremium"]
    assert synced["message"].startswith(f"{count} of the {expected['syncedUsers']} users in scope")
    # The finding names who it is about, by name and user name: Sam Synced has no P1, Petra Synced has it.
    named = {u["userPrincipalName"]: u["displayName"] for u in body["affected"]}
    assert named["synced.user@contoso.example"] == "Sam Synced" and "synced.p1@contoso.example" not in named
    assert len(body["affected"]) + body["affectedMore"] == count


def test_with_sspr_pilot_selected_only_the_groups_synced_users_are_counted(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    everyone = by_code(eligibility(service_host, graph_emulator).json())["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    run_id = enable(service_host, graph_emulator, {"scope": "selected", "groupId": PILOT})
    try:
        body = eligibility(service_host, graph_emulator).json()
    finally:
        enable(service_host, graph_emulator, {"scope": "all"})
    assert body["scope"] == {"source": "enablement", "runId": run_id, "users": 6}
    findings = by_code(body)
    # SSPR Pilot's enabled members: casey, sven, fiona, frank, audrey and Petra, its only synced user (with P1).
    assert "SYNCED_USERS_WITHOUT_PREMIUM" not in findings
    assert findings["SYNCED_USERS_LICENSED"]["counts"] == {"usersInScope": 6, "syncedUsers": 1,
                                                           "syncedWithoutPremium": 0}
    assert everyone["syncedUsers"] > 1 and everyone["syncedWithoutPremium"] >= 1
    assert body["severity"] == "ok"


def test_the_scope_an_admin_looks_at_is_counted_before_it_is_applied(
        service_host: FunctionHost, graph_emulator: GraphEmulator, enabled_for_all: str) -> None:
    """The form's scope, not the Enablement table's: a group's own users (nested included), everyone, or nobody."""
    finance = by_code_and_body(eligibility(service_host, graph_emulator, scope="selected", groupId=FINANCE))
    body, findings = finance
    assert body["scope"] == {"source": "requested", "scope": "selected", "groupId": FINANCE,
                             "groupName": "SSPR Pilot - Finance", "users": 4}  # Fiona, Frank, Petra, Audrey
    assert findings["SYNCED_USERS_LICENSED"]["counts"] == {"usersInScope": 4, "syncedUsers": 1,
                                                           "syncedWithoutPremium": 0}
    assert body["affected"] == [] and body["affectedMore"] == 0
    everyone, all_findings = by_code_and_body(eligibility(service_host, graph_emulator, scope="all"))
    assert everyone["scope"]["users"] > 4 and "SYNCED_USERS_WITHOUT_PREMIUM" in all_findings
    assert "synced.user@contoso.example" in {u["userPrincipalName"] for u in everyone["affected"]}
    nobody, none_findings = by_code_and_body(eligibility(service_host, graph_emulator, scope="none"))
    assert nobody["scope"]["users"] == 0 and "NO_SYNCED_USERS" in none_findings
    refused = eligibility(service_host, graph_emulator, scope="selected", groupId="SSPR Pilot")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "groupId"


def graph_user_count(emulator: GraphEmulator, group_id: str) -> int:
    """The group's users as Graph counts them (other modules may add members to the shared emulator's groups)."""
    token = app_token(emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, resource="https://graph.microsoft.com")
    answer = httpx.get(f"{emulator.graph_url}/groups/{group_id}/transitiveMembers/microsoft.graph.user/$count",
                       headers={**bearer(token), "ConsistencyLevel": "eventual"}, timeout=10)
    answer.raise_for_status()
    return int(answer.text)


def by_code_and_body(response: httpx.Response) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    assert response.status_code == 200, response.text
    return response.json(), by_code(response.json())


def test_groups_are_found_by_a_word_of_their_name_with_their_user_counts_a_page_at_a_time(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    headers = bearer(user_token(graph_emulator, READER))
    found = httpx.get(f"{service_host.base_url}/api/manage/groups", params={"search": "pilot"}, headers=headers,
                      timeout=30).json()
    assert [(g["displayName"], g["userCount"]) for g in found["value"]] == [
        ("SSPR Pilot", graph_user_count(graph_emulator, PILOT)), ("SSPR Pilot - Finance", 4)]
    assert found["total"] == 2 and found["continuation"] is None
    every = httpx.get(f"{service_host.base_url}/api/manage/groups", headers=headers, timeout=30).json()
    assert len(every["value"]) == min(10, every["total"])
    other = httpx.get(f"{service_host.base_url}/api/manage/groups", params={"search": "finance",
                      "continuation": "eyJxIjoicGlsb3QiLCJ0IjoieCJ9"}, headers=headers, timeout=30)
    assert other.status_code == 400 and other.json()["errors"][0]["code"] == "continuation.otherSearch"
    assert httpx.get(f"{service_host.base_url}/api/manage/groups", headers=bearer(user_token(graph_emulator, CASEY)),
                     timeout=30).status_code == 403


async def test_before_any_enablement_run_completed_the_scope_is_every_enabled_member(
        azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    settings = load_settings(app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX="elig" + uuid.uuid4().hex[:8]))
    storage = StorageClients.from_settings(settings)
    try:
        members = await EnablementRows(EnablementStore(storage)).members()
    finally:
        await storage.close()
    assert (members.source, members.ids, members.run_id) == ("allEnabledMembers", None, None)


def test_a_synced_user_counts_as_lacking_premium_until_given_p1(
        service_host: FunctionHost, graph_emulator: GraphEmulator, control: httpx.Client) -> None:
    before = by_code(eligibility(service_host, graph_emulator).json())["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    control.patch(f"/users/{SAM_SYNCED_NO_P1}", json={"licenses": ["AAD_PREMIUM"]}).raise_for_status()
    given = by_code(eligibility(service_host, graph_emulator).json())["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    assert given["syncedWithoutPremium"] == before["syncedWithoutPremium"] - 1
    control.patch(f"/users/{PETRA_SYNCED_P1}", json={"licenses": ["O365_BUSINESS_ESSENTIALS"]}).raise_for_status()
    taken = by_code(eligibility(service_host, graph_emulator).json())["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    assert taken["syncedWithoutPremium"] == before["syncedWithoutPremium"]
    assert taken["syncedUsers"] == given["syncedUsers"] == before["syncedUsers"]


def test_a_trial_tenant_is_blocking_for_everyone(
        service_host: FunctionHost, graph_emulator: GraphEmulator, control: httpx.Client) -> None:
    control.patch("/subscriptions", json={"isTrial": True}).raise_for_status()
    body = eligibility(service_host, graph_emulator).json()
    findings = by_code(body)
    assert body["severity"] == "blocking"
    assert findings["TRIAL_ONLY"]["severity"] == "blocking"
    assert findings["TRIAL_ONLY"]["counts"] == {"paidSubscriptions": 0, "trialSubscriptions": 4}
    assert "trial" in findings["TRIAL_ONLY"]["message"]
    assert findings["PREMIUM_TRIAL_ONLY"]["severity"] == "warning"
    assert "PAID_PLAN" not in findings


def test_suspended_premium_subscriptions_leave_synced_users_without_premium(
        service_host: FunctionHost, graph_emulator: GraphEmulator, control: httpx.Client) -> None:
    for sku in ("SPB", "AAD_PREMIUM", "AAD_PREMIUM_P2"):
        control.patch("/subscriptions", json={"status": "Suspended", "skuPartNumber": sku}).raise_for_status()
    findings = by_code(eligibility(service_host, graph_emulator).json())
    assert findings["PREMIUM_ABSENT"]["severity"] == "warning"
    synced = findings["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    assert synced["syncedWithoutPremium"] == synced["syncedUsers"]


def test_swedish_is_answered_to_a_swedish_admin_with_the_same_findings(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    english = eligibility(service_host, graph_emulator, language="en-US,en;q=0.9").json()
    response = eligibility(service_host, graph_emulator, language="sv-SE,sv;q=0.9,en;q=0.5")
    swedish = response.json()
    assert swedish["lang"] == "sv"
    assert response.headers["content-language"] == "sv"
    assert [(f["code"], f["counts"]) for f in swedish["findings"]] == [
        (f["code"], f["counts"]) for f in english["findings"]]
    sv, en = by_code(swedish), by_code(english)
    assert sv["PAID_PLAN"]["message"].startswith("Klientorganisationen har en betald prenumeration")
    assert en["PAID_PLAN"]["message"].startswith("The tenant has a paid subscription")
    counts = sv["SYNCED_USERS_WITHOUT_PREMIUM"]["counts"]
    assert sv["SYNCED_USERS_WITHOUT_PREMIUM"]["message"].startswith(
        f"{counts['syncedWithoutPremium']} av de {counts['syncedUsers']} användarna i omfånget")
    assert all(sv[c]["message"] != en[c]["message"] for c in sv)


def test_an_unsupported_language_gets_english(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    assert eligibility(service_host, graph_emulator, language="fi-FI").json()["lang"] == "en"


def test_a_reader_may_read_eligibility_but_a_user_without_a_role_may_not(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    assert eligibility(service_host, graph_emulator, READER).status_code == 200
    forbidden = eligibility(service_host, graph_emulator, CASEY)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")


def test_no_token_is_401(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = eligibility(service_host, graph_emulator, upn=None)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:sspr:problem:unauthenticated"
