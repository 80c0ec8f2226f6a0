"""Entra access tokens are checked the way D1 says: signature by a published key, issuer, audience, tenant,
expiry and not-before; an unknown key id makes one JWKS refresh, never a loop; claims of the wrong type are a 401,
never a crash (D9)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devtools.stack import DEMO_TENANT_ID, SERVICE_APP_ID, FunctionHost, GraphEmulator
from shared.adapters.tokens import UNKNOWN_KID_REFRESH_INTERVAL_SECONDS, TokenValidator
from shared.errors import IdentityUnavailable, Unauthenticated
from tests.integration.tokens import (
    AUTH_EVENTS_APP_ID,
    AUTH_EVENTS_SECRET,
    PAGES_APP_ID,
    app_token,
    bearer,
    crafted_token,
    user_token,
)

ADMIN_CLAIMS = {
    "aud": SERVICE_APP_ID, "azp": PAGES_APP_ID, "oid": "c0ffee00-5e1f-4ea5-b0a7-000000001001",
    "roles": ["SSPR.Admin"], "scp": "access_as_user", "preferred_username": "admin@contoso.example",
}


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def validator(graph_emulator: GraphEmulator) -> AsyncIterator[tuple[TokenValidator, Clock]]:
    clock = Clock()
    issuer = f"{graph_emulator.base_url}/{DEMO_TENANT_ID}/v2.0"
    v = TokenValidator(
        openid_configuration_url=f"{issuer}/.well-known/openid-configuration",
        issuer=issuer,
        audiences=[SERVICE_APP_ID, f"api://{SERVICE_APP_ID}"],
        tenant_id=DEMO_TENANT_ID,
        clock=clock,
    )
    yield v, clock
    await v.close()


async def test_a_signed_in_admin_becomes_a_principal_with_roles(validator: tuple[TokenValidator, Clock],
                                                                  graph_emulator: GraphEmulator) -> None:
    v, _ = validator
    principal = await v.principal(user_token(graph_emulator, "admin@contoso.example"))
    assert principal.upn == "admin@contoso.example"
    assert "SSPR.Admin" in principal.roles and not principal.is_app
    assert principal.object_id == "c0ffee00-5e1f-4ea5-b0a7-000000001001"


async def test_an_app_token_is_an_app_principal(validator: tuple[TokenValidator, Clock],
                                                graph_emulator: GraphEmulator) -> None:
    v, _ = validator
    principal = await v.principal(app_token(graph_emulator, AUTH_EVENTS_APP_ID, AUTH_EVENTS_SECRET))
    assert principal.is_app and principal.app_id == AUTH_EVENTS_APP_ID


@pytest.mark.parametrize(
    ("change", "expires_in", "sign_with"),
    [
        pytest.param({}, -120, "current", id="expired"),
        pytest.param({"aud": "c0ffee00-5e1f-4ea5-b0a7-0000000000a3"}, 3600, "current", id="wrong-audience"),
        pytest.param({"aud": "https://graph.microsoft.com"}, 3600, "current", id="graph-audience"),
        pytest.param({"iss": "https://login.microsoftonline.com/evil/v2.0"}, 3600, "current", id="wrong-issuer"),
        pytest.param({"tid": "00000000-0000-0000-0000-000000000000"}, 3600, "current", id="other-tenant"),
        pytest.param({}, 3600, "unknown-key", id="unknown-key"),
        pytest.param({}, 3600, "none", id="unsigned-alg-none"),
        pytest.param({"exp": None}, 3600, "current", id="no-expiry"),
    ],
)
async def test_a_bad_token_is_unauthenticated(validator: tuple[TokenValidator, Clock], graph_emulator: GraphEmulator,
                                              change: dict[str, object], expires_in: int, sign_with: str) -> None:
    v, _ = validator
    token = crafted_token(graph_emulator, {**ADMIN_CLAIMS, **change}, expires_in=expires_in, sign_with=sign_with)
    with pytest.raises(Unauthenticated):
        await v.validate(token)


async def test_a_tampered_signature_is_unauthenticated(validator: tuple[TokenValidator, Clock],
                                                       graph_emulator: GraphEmulator) -> None:
    v, _ = validator
    token = user_token(graph_emulator, "reader@contoso.example")
    header, _payload, signature = token.split(".")
    forged_payload = user_token(graph_emulator, "admin@contoso.example").split(".")[1]
    with pytest.raises(Unauthenticated):
        await v.validate(f"{header}.{forged_payload}.{signature}")
    with pytest.raises(Unauthenticated):
        await v.validate("not-a-jwt")


async def test_not_before_in_the_future_is_refused_and_clock_leeway_is_60_seconds(
        validator: tuple[TokenValidator, Clock], graph_emulator: GraphEmulator) -> None:
    v, clock = validator
    token = crafted_token(graph_emulator, ADMIN_CLAIMS, expires_in=600)
    clock.now -= 120  # our clock two minutes behind the token's nbf
    with pytest.raises(Unauthenticated):
        await v.validate(token)
    clock.now += 90  # 30 s behind: inside the leeway
    assert (await v.validate(token))["oid"] == ADMIN_CLAIMS["oid"]
    clock.now += 600 + 61 + 30  # past exp + leeway
    with pytest.raises(Unauthenticated):
        await v.validate(token)


async def test_a_rotated_key_is_fetched_once_on_an_unknown_kid(validator: tuple[TokenValidator, Clock],
                                                               graph_emulator: GraphEmulator) -> None:
    v, clock = validator
    await v.validate(crafted_token(graph_emulator, ADMIN_CLAIMS))  # keys cached
    httpx.post(f"{graph_emulator.base_url}/_emulator/keys/rotate", timeout=10).raise_for_status()
    rotated = crafted_token(graph_emulator, ADMIN_CLAIMS)
    clock.now += UNKNOWN_KID_REFRESH_INTERVAL_SECONDS + 1
    assert (await v.validate(rotated))["oid"] == ADMIN_CLAIMS["oid"]


async def test_forged_kids_cannot_make_the_validator_fetch_keys_in_a_loop(
        validator: tuple[TokenValidator, Clock], graph_emulator: GraphEmulator) -> None:
    v, _ = validator
    await v.validate(crafted_token(graph_emulator, ADMIN_CLAIMS))
    before = _identity_requests(graph_emulator)
    for i in range(20):
        token = crafted_token(graph_emulator, ADMIN_CLAIMS, sign_with="unknown-key", header={"kid": f"forged-{i}"})
        with pytest.raises(Unauthenticated):
            await v.validate(token)
    assert _identity_requests(graph_emulator) - before <= 2  # at most one refresh (discovery + keys)


def _identity_requests(emulator: GraphEmulator) -> int:
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats", timeout=10).json()
    return sum(count for route, count in stats["identity"]["byRoute"].items()
               if "keys" in route or "openid-configuration" in route)


async def test_unreachable_signing_keys_fail_closed_as_unavailable() -> None:
    from devtools.processes import free_port

    nowhere = f"http://127.0.0.1:{free_port()}/{DEMO_TENANT_ID}/v2.0"
    v = TokenValidator(openid_configuration_url=f"{nowhere}/.well-known/openid-configuration", issuer=nowhere,
                       audiences=[SERVICE_APP_ID], tenant_id=DEMO_TENANT_ID)
    try:
        with pytest.raises(IdentityUnavailable):
            await v.validate(_any_rs256_token())
    finally:
        await v.close()


def _any_rs256_token() -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": "k1"})


async def test_an_issuer_that_differs_from_discovery_is_a_misconfiguration(graph_emulator: GraphEmulator) -> None:
    # The configured issuer must match the discovery document: a mismatch is a misconfiguration, not a 401.
    issuer = f"{graph_emulator.base_url}/{DEMO_TENANT_ID}/v2.0"
    v = TokenValidator(openid_configuration_url=f"{issuer}/.well-known/openid-configuration",
                       issuer="https://login.microsoftonline.com/x/v2.0", audiences=[SERVICE_APP_ID],
                       tenant_id=DEMO_TENANT_ID)
    try:
        with pytest.raises(IdentityUnavailable):
            await v.validate(crafted_token(graph_emulator, ADMIN_CLAIMS))
    finally:
        await v.close()
    assert httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()["issuer"] == issuer


async def test_a_v1_token_from_the_sts_issuer_is_accepted_only_when_configured(graph_emulator: GraphEmulator) -> None:
    issuer = f"{graph_emulator.base_url}/{DEMO_TENANT_ID}/v2.0"
    v1_issuer = f"https://sts.windows.net/{DEMO_TENANT_ID}/"
    v1_claims = {**ADMIN_CLAIMS, "iss": v1_issuer, "ver": "1.0", "appid": PAGES_APP_ID, "azp": None}
    token = crafted_token(graph_emulator, v1_claims)
    strict = TokenValidator(openid_configuration_url=f"{issuer}/.well-known/openid-configuration", issuer=issuer,
                            audiences=[SERVICE_APP_ID], tenant_id=DEMO_TENANT_ID)
    both = TokenValidator(openid_configuration_url=f"{issuer}/.well-known/openid-configuration", issuer=issuer,
                          audiences=[SERVICE_APP_ID], tenant_id=DEMO_TENANT_ID, v1_issuer=v1_issuer)
    try:
        with pytest.raises(Unauthenticated):
            await strict.validate(token)
        assert (await both.validate(token))["appid"] == PAGES_APP_ID
    finally:
        await strict.close()
        await both.close()


async def test_hs256_signed_with_the_public_key_is_refused(validator: tuple[TokenValidator, Clock],
                                                           graph_emulator: GraphEmulator) -> None:
    """Algorithm confusion: an attacker signs HS256 with the tenant's public key as the HMAC secret."""
    import jwt

    v, _ = validator
    genuine = crafted_token(graph_emulator, ADMIN_CLAIMS)
    kid = jwt.get_unverified_header(genuine)["kid"]
    jwks = httpx.get(f"{graph_emulator.base_url}/{DEMO_TENANT_ID}/discovery/v2.0/keys", timeout=10).json()
    public_jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    public_pem = jwt.PyJWK(public_jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256_by_hand({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, public_pem)
    with pytest.raises(Unauthenticated):
        await v.validate(forged)


def _hs256_by_hand(header: dict[str, object], claims: dict[str, object], secret: bytes) -> str:
    """PyJWT refuses to HMAC with a public key, so the attacker's token is put together by hand."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def test_a_token_without_oid_identifies_nobody(validator: tuple[TokenValidator, Clock],
                                                     graph_emulator: GraphEmulator) -> None:
    v, _ = validator
    with pytest.raises(Unauthenticated):
        await v.validate(crafted_token(graph_emulator, {**ADMIN_CLAIMS, "oid": None}))


async def test_cached_keys_keep_serving_when_the_tenant_cannot_be_reached() -> None:
    from devtools.stack import start_graph_emulator

    emulator = start_graph_emulator()
    clock = Clock()
    issuer = f"{emulator.base_url}/{DEMO_TENANT_ID}/v2.0"
    v = TokenValidator(openid_configuration_url=f"{issuer}/.well-known/openid-configuration", issuer=issuer,
                       audiences=[SERVICE_APP_ID], tenant_id=DEMO_TENANT_ID, clock=clock)
    try:
        token = crafted_token(emulator, ADMIN_CLAIMS, expires_in=48 * 3600)
        forged_kid = crafted_token(emulator, ADMIN_CLAIMS, sign_with="unknown-key")
        await v.prefetch()
        emulator.process.stop()
        clock.now += 7 * 3600  # keys are stale: a refresh is due, and it fails
        assert (await v.validate(token))["oid"] == ADMIN_CLAIMS["oid"]
        with pytest.raises(Unauthenticated):  # an unknown key is still refused, not waved through
            await v.validate(forged_kid)
    finally:
        emulator.process.stop()
        await v.close()


async def test_a_token_seen_before_is_not_rechecked_but_still_expires(validator: tuple[TokenValidator, Clock],
                                                                      graph_emulator: GraphEmulator) -> None:
    v, clock = validator
    token = crafted_token(graph_emulator, ADMIN_CLAIMS, expires_in=600)
    assert (await v.validate(token))["oid"] == ADMIN_CLAIMS["oid"]
    assert (await v.validate(token))["oid"] == ADMIN_CLAIMS["oid"]  # from the cache of verified tokens
    clock.now += 600 + 61
    with pytest.raises(Unauthenticated):
        await v.validate(token)


ODD_CLAIMS = {
    "exp-a-string": {"exp": "9999999999"},
    "exp-a-word": {"exp": "soon"},
    "exp-a-boolean": {"exp": True},
    "exp-past-a-float": {"exp": 10**400},
    "nbf-an-object": {"nbf": {}},
    "nbf-a-list": {"nbf": [0]},
    "iat-a-string": {"iat": "now"},
    "oid-a-list": {"oid": ["c0ffee00-5e1f-4ea5-b0a7-000000001001"]},
    "oid-not-a-guid": {"oid": "../users/admin@contoso.example"},
    "oid-a-number": {"oid": 1001},
    "tid-a-list": {"tid": [DEMO_TENANT_ID]},
    "roles-a-string": {"roles": "SSPR.Admin"},
    "roles-with-an-object": {"roles": ["SSPR.Admin", {"x": 1}]},
    "scp-a-list": {"scp": ["access_as_user"]},
    "azp-a-number": {"azp": 7},
    "upn-an-object": {"preferred_username": {"a": "b"}},
}


@pytest.mark.parametrize("change", list(ODD_CLAIMS.values()), ids=list(ODD_CLAIMS))
async def test_D9_a_signed_token_whose_claims_have_the_wrong_types_is_unauthenticated(
        validator: tuple[TokenValidator, Clock], graph_emulator: GraphEmulator, change: dict[str, object]) -> None:
    v, _ = validator
    with pytest.raises(Unauthenticated):
        await v.validate(crafted_token(graph_emulator, {**ADMIN_CLAIMS, **change}))


def test_D9_every_route_answers_401_to_a_signed_token_with_odd_claim_types(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    with httpx.Client(base_url=f"{service_host.base_url}/api", timeout=30) as client:
        assert client.get("/manage/policy", headers=bearer(crafted_token(graph_emulator, ADMIN_CLAIMS))).status_code \
            == 200
        for name, change in ODD_CLAIMS.items():
            token = crafted_token(graph_emulator, {**ADMIN_CLAIMS, **change})
            for path in ("/manage/policy", "/me/security-info"):
                answer = client.get(path, headers=bearer(token))
                assert answer.status_code == 401, (name, path, answer.status_code, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
