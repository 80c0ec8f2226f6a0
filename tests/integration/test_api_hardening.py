"""Who may call what, and what bad input gets, across the admin, registration and reset APIs (security.md C5,
D1, D2, D5, D6, D8, D9, E1, G6), through the session's host."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.stack import (
    FUNCTION_KEY,
    PAGES_APP_ID,
    SERVICE_APP_ID,
    FunctionHost,
    GraphEmulator,
    app_settings,
    host_running,
)
from shared.adapters.proof_of_work import solve
from tests.integration.tokens import (
    AUTH_EVENTS_APP_ID,
    AUTH_EVENTS_SECRET,
    app_token,
    bearer,
    crafted_token,
    user_token,
)

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


ADMIN = "admin@contoso.example"
SMS_PER_IP_BUDGET = 20  # shared/domain/throttling.py SEND_BUDGETS


def test_D8_admin_routes_refuse_an_administrators_token_requested_by_another_client_app(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    admin = httpx.get(f"{graph_emulator.base_url}/_emulator/users/{ADMIN}", timeout=10).json()
    claims = {"aud": SERVICE_APP_ID, "oid": admin["id"], "sub": admin["id"], "scp": "access_as_user",
              "roles": ["SSPR.Admin"], "preferred_username": ADMIN}
    pages = crafted_token(graph_emulator, {**claims, "azp": PAGES_APP_ID})
    other_app_v2 = crafted_token(graph_emulator, {**claims, "azp": OTHER_APP_ID})
    other_app_v1 = crafted_token(graph_emulator, {**claims, "appid": OTHER_APP_ID, "ver": "1.0"})
    no_app = crafted_token(graph_emulator, claims)
    with api(service_host) as client:
        policy = client.get("/manage/policy", headers=bearer(pages))
        assert policy.status_code == 200, policy.text
        for token in (other_app_v2, other_app_v1, no_app):
            for method, path in (("GET", "/manage/policy"), ("GET", "/manage/audit"), ("GET", "/manage/enablement"),
                                 ("GET", "/manage/tenant/eligibility"), ("GET", "/manage/compliance/runs")):
                refused = client.request(method, path, headers=bearer(token))
                assert refused.status_code == 403, (path, refused.text)
                assert refused.json()["type"] == "urn:sspr:problem:forbidden"
            write = client.put("/manage/policy", json=policy.json()["policy"] if "policy" in policy.json()
                               else policy.json(), headers={**bearer(token), "If-Match": policy.headers["ETag"]})
            assert write.status_code == 403, write.text
        assert client.get("/manage/policy", headers=bearer(pages)).headers["ETag"] == policy.headers["ETag"]


HOSTILE_BODIES = {
    "5000-nested-arrays": "[" * 5000 + "]" * 5000,
    "unterminated-nesting": "[" * 5000,
    "5000-digit-number": '{"username": ' + "1" * 5000 + "}",
    "33-nested-objects": '{"a":' * 33 + "1" + "}" * 33,
    "nan": '{"username": NaN}',
}
BODY_ROUTES = [
    ("POST", "/reset/flows", "anonymous"), ("POST", "/reset/flows/x/proofs", "anonymous"),
    ("POST", "/reset/flows/x/proofs/email/code", "anonymous"), ("POST", "/reset/flows/x/questions", "anonymous"),
    ("POST", "/reset/flows/x/password/check", "anonymous"), ("POST", "/reset/flows/x/password", "anonymous"),
    ("PUT", "/manage/policy", "admin"), ("POST", "/manage/enablement", "admin"),
    ("POST", "/manage/compliance/runs", "admin"), ("PUT", "/manage/password-expiration", "admin"),
    ("PUT", "/manage/users/c0ffee00-5e1f-4ea5-b0a7-000000001001/password-never-expires", "admin"),
    ("POST", "/me/security-info/email", "user"), ("POST", "/me/security-info/mobilePhone", "user"),
    ("POST", "/me/security-info/officePhone", "user"), ("POST", "/me/security-info/challenges/x/verify", "user"),
    ("POST", "/me/security-info/authenticatorApp/verify", "user"), ("PUT", "/me/security-info/securityQuestions", "user"),
    ("POST", "/hooks/token-issuance-start", "events"), ("POST", "/hooks/signin-events", "key"),
]


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_D9_hostile_json_is_a_400_problem_on_every_route_that_reads_a_body(
        service_host: FunctionHost, graph_emulator: GraphEmulator, body: str) -> None:
    credentials = {
        "anonymous": {}, "key": {"x-functions-key": FUNCTION_KEY},
        "admin": {**bearer(user_token(graph_emulator, ADMIN)), "If-Match": '"any"'},
        "user": bearer(user_token(graph_emulator, CASEY)),
        "events": bearer(app_token(graph_emulator, AUTH_EVENTS_APP_ID, AUTH_EVENTS_SECRET)),
    }
    with api(service_host) as client:
        for method, path, caller in BODY_ROUTES:
            answer = client.request(method, path, content=body, headers={
                "Content-Type": "application/json", "X-Flow-Secret": "x", **credentials[caller]})
            assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
            expected = "application/json" if caller == "events" else "application/problem+json"
            assert answer.headers["content-type"].startswith(expected), (path, answer.headers)
            assert answer.json()["errors"][0]["field"] == "body", (path, answer.text[:300])


def test_G6_the_client_is_the_entry_the_trusted_proxy_wrote_never_the_first_client_supplied_hop(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    # The test host trusts one proxy (the test itself): the client address is the entry left of the host's own.
    ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    with api(service_host) as client:
        forged_then_real = started_flow(client, {"X-Forwarded-For": f"203.0.113.66, {ip}"})
        mapped = started_flow(client, {"X-Forwarded-For": f"::ffff:{ip}"})
        bracketed = started_flow(client, {"X-Forwarded-For": f"[::ffff:{ip}]:51000"})
        reader = bearer(user_token(graph_emulator, "reader@contoso.example"))
        assert audited_client_ip(client, reader, forged_then_real) == ip
        assert audited_client_ip(client, reader, mapped) == ip  # ::ffff:a.b.c.d counts as a.b.c.d
        assert audited_client_ip(client, reader, bracketed) == ip


def test_G6_an_ipv4_mapped_address_shares_the_per_ip_budget_of_its_ipv4_address(service_host: FunctionHost) -> None:
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    spellings = [ip, f"::ffff:{ip}", f"[::ffff:{ip}]:443", f"::FFFF:{ip}"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with api(service_host) as client:
        flow = started(client, {"X-Forwarded-For": ip}).json()
        answers = [client.post(f"/reset/flows/{flow['flowId']}/proofs",
                               json={"method": "mobilePhone", "contact": "+46701234567"},
                               headers={"X-Flow-Secret": flow["flowSecret"], "X-Forwarded-For": spellings[i % 4]})
                   for i in range(SMS_PER_IP_BUDGET + 1)]
    if datetime.now(UTC).replace(minute=0, second=0, microsecond=0) != hour:
        pytest.skip("the budget's hour window turned during the test: its count restarted")
    statuses = [a.status_code for a in answers]
    # One budget for every spelling of the address: it runs out exactly as it does for one spelling.
    assert statuses == [202] * SMS_PER_IP_BUDGET + [429], statuses


def test_G6_ipv6_clients_in_one_64_share_one_per_ip_budget_and_another_64_has_its_own(
        service_host: FunctionHost) -> None:
    site = f"2001:db8:{uuid.uuid4().int % 65535:x}:{uuid.uuid4().int % 65535:x}"  # one customer's /64
    addresses = [f"{site}::1", f"{site}:aaaa:bbbb:cccc:dddd", f"[{site}::7]:443", f"{site}:0:0:0:ffff"]
    neighbour = f"2001:db8:{uuid.uuid4().int % 65535:x}:ffff::1"
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with api(service_host) as client:
        flow = started(client, {"X-Forwarded-For": addresses[0]}).json()

        def prove(address: str) -> int:
            return client.post(f"/reset/flows/{flow['flowId']}/proofs",
                               json={"method": "mobilePhone", "contact": "+46701234567"},
                               headers={"X-Flow-Secret": flow["flowSecret"], "X-Forwarded-For": address}).status_code

        statuses = [prove(addresses[i % 4]) for i in range(SMS_PER_IP_BUDGET + 1)]
        other_network = prove(neighbour)
    if datetime.now(UTC).replace(minute=0, second=0, microsecond=0) != hour:
        pytest.skip("the budget's hour window turned during the test: its count restarted")
    # Every address of the /64 spends one budget, which runs out as one address's would; the next /64 is not touched.
    assert statuses == [202] * SMS_PER_IP_BUDGET + [429], statuses
    assert other_network == 202


@pytest.fixture(scope="module")
def peer_host(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    """The service as deployed without Front Door: no proxy trusted, the client is the peer the host appends."""
    with host_running(app_settings(azurite, graph_emulator, SSPR_TRUSTED_PROXY_HOPS="0")) as host:
        yield host


def test_G6_with_no_trusted_proxy_a_client_supplied_forwarded_for_is_ignored_and_the_peer_counts(
        peer_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    with api(peer_host) as client:
        forged = started_flow(client, {"X-Forwarded-For": "198.51.100.99"})
        forged_chain = started_flow(client, {"X-Forwarded-For": "198.51.100.98, 203.0.113.1:443"})
        without_header = started_flow(client, {})
        reader = bearer(user_token(graph_emulator, "reader@contoso.example"))
        for flow_id in (forged, forged_chain, without_header):
            assert audited_client_ip(client, reader, flow_id) == "127.0.0.1"


def started(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    challenge = client.get("/reset/pow").json()
    return client.post("/reset/flows", json={"username": f"nobody-{uuid.uuid4().hex[:8]}@contoso.example",
                                             "altcha": solve(challenge)}, headers=headers)


def started_flow(client: httpx.Client, headers: dict[str, str]) -> str:
    answer = started(client, headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["flowId"])


def audited_client_ip(client: httpx.Client, reader: dict[str, str], flow_id: str) -> str | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = client.get("/manage/audit", headers=reader, params={
            "activity": "Self-service password reset flow activity progress"}).json()["value"]
        mine = [e for e in events if e.get("flowId") == flow_id]
        if mine:
            return mine[0].get("clientIp")
        time.sleep(0.2)
    raise AssertionError(f"no audit event of flow {flow_id}")
