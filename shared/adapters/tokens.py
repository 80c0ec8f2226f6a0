"""Validation of Entra v2 access tokens against the tenant's published signing keys (OIDC discovery + JWKS).

Checks, in order: RS256 with a `kid` the tenant publishes (an unknown `kid` triggers one JWKS refresh, rate
limited so forged kids cannot turn us into a JWKS fetch loop), signature, issuer, audience, tenant, expiry and
not-before with 60 s leeway measured by the injected clock, the type of every claim we read (`TokenClaims`: a
string `exp` or a list for `oid` is refused, not tripped over), and an `oid` that is a GUID. Any failure is
`Unauthenticated` with the reason in the log message only. Keys are refreshed every 6 hours; when a refresh fails
the cached keys keep serving (a discovery outage must not fail every sign-in), and no keys at all is
`IdentityUnavailable` (503).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.domain.access import Principal
from shared.domain.ids import GUID_PATTERN
from shared.errors import IdentityUnavailable, Unauthenticated

LEEWAY_SECONDS = 60
JWKS_MAX_AGE_SECONDS = 6 * 3600
UNKNOWN_KID_REFRESH_INTERVAL_SECONDS = 30
VERIFIED_CACHE_SIZE = 4096
FIRST_FETCH_RETRY_SECONDS = 2

log = logging.getLogger("sspr.tokens")


class TokenClaims(BaseModel):
    """The claims we read, with the types Entra issues them in; a signed token with any other type is refused.

    Strict: no string is read as a number, no number as a string, no boolean as a time; times are finite. Claims
    we do not read may be anything."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow", frozen=True)

    exp: float
    nbf: float
    iat: float | None = None
    iss: str
    aud: str | list[str]
    tid: str
    oid: str = Field(pattern=GUID_PATTERN)
    azp: str | None = None
    appid: str | None = None
    scp: str | None = None
    roles: list[str] | None = None
    ver: str | None = None
    idtyp: str | None = None
    preferred_username: str | None = None
    upn: str | None = None
    name: str | None = None


class TokenValidator:
    def __init__(
        self,
        *,
        openid_configuration_url: str,
        issuer: str,
        audiences: Iterable[str],
        v1_issuer: str | None = None,
        tenant_id: str,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config_url = openid_configuration_url
        self._issuer = issuer
        # v1 access tokens (an API app whose accessTokenAcceptedVersion is 1 or null) carry the STS issuer.
        self._issuers = [issuer, v1_issuer] if v1_issuer else [issuer]
        self._audiences = list(audiences)
        self._tenant_id = tenant_id.lower()
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=2.0))
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[bytes, dict[str, Any]] = OrderedDict()  # sha256(token) -> claims, LRU

    async def validate(self, token: str) -> dict[str, Any]:
        """The token's claims, or `Unauthenticated`."""
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            # The same bytes were signature-checked already (Entra reuses a token for up to an hour); only the
            # clock-dependent checks are repeated.
            self._check_times(cached)
            self._verified.move_to_end(digest)
            return cached
        claims = await self._verify(token)
        self._verified[digest] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        if float(claims["exp"]) + LEEWAY_SECONDS < now:
            raise Unauthenticated("token expired")
        if float(claims["nbf"]) - LEEWAY_SECONDS > now:
            raise Unauthenticated("token not yet valid")

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("token is not a JWT") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} or kid not acceptable")
        key = await self._key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=self._issuers,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["exp", "nbf", "iss", "aud", "tid"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"token rejected: {type(exc).__name__}") from None
        if not claims.get("oid"):
            # `sub` is pairwise per app, not the directory object id: without `oid` nobody is identified.
            raise Unauthenticated("token without oid")
        try:
            TokenClaims.model_validate(claims)
        except ValidationError as exc:
            wrong = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]}))
            raise Unauthenticated(f"token claims of the wrong type: {wrong}") from None
        self._check_times(claims)
        if claims["tid"].lower() != self._tenant_id:
            raise Unauthenticated("token from another tenant")
        return claims

    async def principal(self, token: str) -> Principal:
        claims = await self.validate(token)
        return principal_from_claims(claims)

    async def prefetch(self) -> None:
        """Fetch the signing keys now (warm-up), so the first sign-in does not wait for them."""
        async with self._lock:
            if not self._keys:
                await self._refresh()

    async def _key(self, kid: str) -> PyJWK:
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        async with self._lock:
            if (kid not in self._keys or self._stale()) and self._may_attempt():
                try:
                    # Shielded: a caller that gives up (the sign-in hook's deadline) must not cancel a slow
                    # fetch that would otherwise succeed and serve everyone after it.
                    await asyncio.shield(self._refresh())
                except IdentityUnavailable:
                    if not self._keys:
                        raise
                    # Keep serving the keys we have: Entra rotates keys weeks ahead, an outage of the
                    # discovery endpoint must not fail every sign-in (F7). The next attempt waits its interval.
                    log.warning("signing keys could not be refreshed; still using the %d cached keys", len(self._keys))
        if kid not in self._keys:
            if not self._keys:
                raise IdentityUnavailable("no signing keys yet")
            raise Unauthenticated("token signed with a key the tenant does not publish")
        return self._keys[kid]

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > JWKS_MAX_AGE_SECONDS

    def _may_attempt(self) -> bool:
        """At most one fetch per interval (forged kids or an outage cannot turn into a fetch per request)."""
        if self._attempted_at is None:
            return True
        interval = UNKNOWN_KID_REFRESH_INTERVAL_SECONDS if self._keys else FIRST_FETCH_RETRY_SECONDS
        return self._clock() - self._attempted_at >= interval

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            config = (await self._http.get(self._config_url)).raise_for_status().json()
            if config.get("issuer") != self._issuer:
                raise IdentityUnavailable("the OpenID configuration names another issuer: check SSPR_AUTHORITY_HOST")
            jwks = (await self._http.get(config["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            # Without keys no token can be checked: fail closed, as a dependency outage (503), not as 401.
            raise IdentityUnavailable(f"signing keys unavailable: {type(exc).__name__}") from None
        keys: dict[str, PyJWK] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                try:
                    keys[jwk["kid"]] = PyJWK(jwk, algorithm="RS256")
                except jwt.PyJWTError:
                    continue
        if not keys:
            raise IdentityUnavailable("the tenant publishes no usable RS256 signing key")
        self._keys = keys
        self._fetched_at = self._clock()

    async def close(self) -> None:
        await self._http.aclose()


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles") or []
    scopes = str(claims.get("scp") or "").split()
    return Principal(
        object_id=str(claims["oid"]),
        tenant_id=str(claims.get("tid") or ""),
        app_id=str(claims.get("azp") or claims.get("appid") or ""),
        roles=frozenset(r for r in roles if isinstance(r, str)),
        scopes=frozenset(scopes),
        upn=claims.get("preferred_username") or claims.get("upn"),
        name=claims.get("name"),
    )


def require_calling_app(claims: dict[str, Any], app_id: str) -> None:
    """D3: the token was requested by `app_id`. v2 tokens name the caller in `azp`, v1 tokens in `appid`; every
    one of them that is present must name `app_id`, and at least one must be present."""
    callers = [str(claims[name]).lower() for name in ("azp", "appid") if claims.get(name) is not None]
    if not callers or any(caller != app_id.lower() for caller in callers):
        raise Unauthenticated(f"token requested by {callers or 'no app'}, not by {app_id}")
