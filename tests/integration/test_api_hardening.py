"""Who may call what, and what bad input gets, across the admin, registration and reset APIs (security.md C5,
D1, D2, D5, D6, E1), through the session's host."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from devtools.stack import FUNCTION_KEY, PAGES_APP_ID, SERVICE_APP_ID, FunctionHost, GraphEmulator
from shared.adapters.proof_of_work import solve
from tests.integration.tokens import app_token, bearer, crafted_token, user_token

CASEY = "casey@contoso.example"
OTHER_APP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"
OTHER_APP_SECRET = "dev-other-app-secret"  # the emulator's public dev secret


def api(host: FunctionHost) -> httpx.Client:
    return httpx.Client(base_url=f"{host.base_url}/api", timeout=30)


def test_D1_a_function_key_alone_never_opens_an_admin_route(service_host: FunctionHost) -> None:
    with api(service_host) as client:
        for path in ("/manage/policy", "/manage/audit", "/manage/enablement", "/manage/compliance/runs"):
            answer = client.get(path, headers={"x-functions-key": FUNCTION_KEY})
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["type"] == "urn:sspr:problem:unauthenticated"
            assert client.get(f"{path}?code={FUNCTION_KEY}").status_code == 401


def test_D2_app_only_tokens_and_user_tokens_of_other_apps_never_touch_security_info(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    casey = httpx.get(f"{graph_emulator.base_url}/_emulator/users/{CASEY}", timeout=10).json()
    app_only = app_token(graph_emulator, OTHER_APP_ID, OTHER_APP_SECRET)
    other_apps_user_token = crafted_token(graph_emulator, {
        "aud": SERVICE_APP_ID, "azp": OTHER_APP_ID, "oid": casey["id"], "scp": "access_as_user", "sub": casey["id"],
        "preferred_username": CASEY,
    })
    pages_user_token = crafted_token(graph_emulator, {
        "aud": SERVICE_APP_ID, "azp": PAGES_APP_ID, "oid": casey["id"], "scp": "access_as_user", "sub": casey["id"],
        "preferred_username": CASEY,
    })
    with api(service_host) as client:
        assert client.get("/me/security-info", headers=bearer(pages_user_token)).status_code == 200
        for token in (app_only, other_apps_user_token):
            refused = client.get("/me/security-info", headers=bearer(token))
            assert refused.status_code in (401, 403), refused.text
            assert client.post("/me/security-info/email", json={"address": "x@example.com"},
                               headers=bearer(token)).status_code in (401, 403)


@pytest.mark.parametrize("body", [
    '{"username": "a\\u0000b@contoso.example", "altcha": "x"}',
    '{"username": "casey@contoso.example\\r\\nX-Injected: 1", "altcha": "x"}',
    '{"username": "casey@contoso.example", "altcha": "\\u001b[31m"}',
], ids=["nul", "crlf", "escape"])
def test_D5_control_characters_in_a_body_are_refused_with_the_field_named(service_host: FunctionHost,
                                                                         body: str) -> None:
    with api(service_host) as client:
        answer = client.post("/reset/flows", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["message"] == "must not contain control characters"
    assert answer.json()["errors"][0]["field"] in ("username", "altcha")


@pytest.mark.parametrize("username", [
    "casey@contoso.example' or '1' eq '1", "../../users/casey@contoso.example", "casey@contoso.example?$select=id",
    "PartitionKey eq 'x'", "casey@contoso.example#frag", "%2e%2e/admin@contoso.example",
], ids=["odata-quote", "path", "query", "filter", "fragment", "encoded"])
def test_D6_hostile_usernames_start_like_any_other_and_reach_no_key_or_filter(
        service_host: FunctionHost, graph_emulator: GraphEmulator, username: str) -> None:
    with api(service_host) as client:
        plain = start(client, "nobody-" + uuid.uuid4().hex[:8] + "@contoso.example")
        hostile = start(client, username)
        assert hostile.status_code == plain.status_code == 201, hostile.text
        assert hostile.json().keys() == plain.json().keys()
        proof = client.post(f"/reset/flows/{hostile.json()['flowId']}/proofs",
                            json={"method": "email", "contact": "someone@example.com"},
                            headers={"X-Flow-Secret": hostile.json()["flowSecret"]})
        assert proof.status_code == 202, proof.text  # resolved as no such user: nothing leaked, nothing broke


def test_D6_hostile_ids_in_routes_are_refused_before_any_lookup(service_host: FunctionHost,
                                                                graph_emulator: GraphEmulator) -> None:
    admin = bearer(user_token(graph_emulator, "admin@contoso.example"))
    with api(service_host) as client:
        for path in ("/manage/enablement/x'%20or%20'1'%20eq%20'1", "/manage/compliance/runs/..%2f..%2fpolicy"):
            answer = client.get(path, headers=admin)
            assert answer.status_code in (400, 404), (path, answer.text)
        flow = client.post("/reset/flows/abc'%20or%20'1'eq'1/proofs/email/code", json={"code": "12345678"},
                           headers={"X-Flow-Secret": "x"})
        assert flow.status_code == 404 and flow.json()["type"] == "urn:sspr:problem:flow-not-found"


def test_C5_every_api_answer_says_no_store(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    admin = bearer(user_token(graph_emulator, "admin@contoso.example"))
    casey = bearer(user_token(graph_emulator, CASEY))
    with api(service_host) as client:
        answers = [
            client.get("/health"), client.get("/openapi.json"), client.get("/manage/policy", headers=admin),
            client.get("/manage/audit", headers=admin), client.get("/manage/audit?format=csv", headers=admin),
            client.get("/manage/tenant/eligibility", headers=admin), client.get("/me/security-info", headers=casey),
            client.get("/manage/policy"), client.get("/reset/pow"), client.post("/reset/flows", json={}),
            client.put("/manage/policy", json={}, headers=admin),
        ]
    for answer in answers:
        assert answer.headers.get("Cache-Control") == "no-store", (answer.request.url, answer.headers)


def test_E1_a_reset_flow_is_audited_step_by_step_with_entras_names_and_the_client_ip(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    with api(service_host) as client:
        started = start(client, "nobody-" + uuid.uuid4().hex[:8] + "@contoso.example", ip)
        flow_id, secret = started.json()["flowId"], started.json()["flowSecret"]
        client.post(f"/reset/flows/{flow_id}/proofs", json={"method": "email", "contact": "n@example.com"},
                    headers={"X-Flow-Secret": secret, "X-Forwarded-For": ip})
        client.post(f"/reset/flows/{flow_id}/proofs/email/code", json={"code": "00000000"},
                    headers={"X-Flow-Secret": secret, "X-Forwarded-For": ip})
        reader = bearer(user_token(graph_emulator, "reader@contoso.example"))
        deadline, steps = time.monotonic() + 10, []
        while time.monotonic() < deadline and len(steps) < 3:
            events = client.get("/manage/audit", headers=reader, params={
                "activity": "Self-service password reset flow activity progress"}).json()["value"]
            steps = [e for e in events if e.get("flowId") == flow_id]
            time.sleep(0.2)
    assert [e["reason"] for e in sorted(steps, key=lambda e: e["time"])] == \
        ["started", "contact-not-matched", "code-wrong"]
    assert {e["clientIp"] for e in steps} == {ip}
    assert {e["outcome"] for e in steps} == {"success", "failure"}
    assert all(e["service"] == "Self-service Password Management" for e in steps)


def start(client: httpx.Client, username: str, ip: str | None = None) -> httpx.Response:
    challenge = client.get("/reset/pow").json()
    headers = {"X-Forwarded-For": ip or f"198.51.100.{uuid.uuid4().int % 250 + 1}"}
    return client.post("/reset/flows", json={"username": username, "altcha": solve(challenge)}, headers=headers)
