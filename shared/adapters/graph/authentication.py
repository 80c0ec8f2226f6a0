"""A user's authentication methods in Entra: a Temporary Access Pass made for them, the tenant's TAP policy, and the
phone and email methods they registered there (for MFA or Entra's own SSPR).

- POST /users/{id}/authentication/temporaryAccessPassMethods (UserAuthMethod-TAP.ReadWrite.All):
  https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods. The answer carries the
  pass once (later reads hide it): it is handed to the caller and never logged, kept or put in an error.
- GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass
  (Policy.Read.All): https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
- GET /users/{id}/authentication/phoneMethods and /emailMethods (UserAuthenticationMethod.Read.All), every page:
  https://learn.microsoft.com/graph/api/authentication-list-phonemethods,
  https://learn.microsoft.com/graph/api/authentication-list-emailmethods
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from kiota_abstractions.request_information import RequestInformation

from shared.adapters.graph.client import GraphPart
from shared.domain.access_pass import TenantPassPolicy


@dataclass(frozen=True)
class IssuedPass:
    """A pass as Entra made it. `secret` is the pass itself: shown once to its user, nowhere else (I3)."""

    secret: str
    starts_at: datetime
    lifetime_minutes: int
    usable_once: bool

    def __repr__(self) -> str:  # never the pass, whoever prints it
        return f"IssuedPass(lifetime_minutes={self.lifetime_minutes}, usable_once={self.usable_once})"


@dataclass(frozen=True)
class EntraContact:
    """A phone or email method the user registered in Entra: `kind` mobile, alternateMobile, office or email."""

    kind: str
    contact: str


class GraphAuthentication(GraphPart):
    async def access_pass_policy(self) -> TenantPassPolicy:
        info = self._sdk.policies.authentication_methods_policy.authentication_method_configurations \
            .by_authentication_method_configuration_id("temporaryAccessPass").to_get_request_information()
        body = await self._graph.get_json(info)
        targets = [t for t in body.get("includeTargets") or [] if isinstance(t, dict)]
        return TenantPassPolicy(
            enabled=body.get("state") == "enabled",
            minimum_minutes=int(body.get("minimumLifetimeInMinutes") or 60),
            maximum_minutes=int(body.get("maximumLifetimeInMinutes") or 480),
            usable_once_only=bool(body.get("isUsableOnce")),
            all_users="all_users" in [t.get("id") for t in targets],
            group_ids=tuple(str(t["id"]) for t in targets if t.get("id") and t.get("id") != "all_users"),
            excluded_group_ids=tuple(str(t["id"]) for t in body.get("excludeTargets") or []
                                     if isinstance(t, dict) and t.get("id")),
        )

    async def create_access_pass(self, user_id: str, lifetime_minutes: int, usable_once: bool) -> IssuedPass:
        from msgraph.generated.models.temporary_access_pass_authentication_method import (
            TemporaryAccessPassAuthenticationMethod,
        )

        builder = self._sdk.users.by_user_id(user_id).authentication.temporary_access_pass_methods
        info = builder.to_post_request_information(TemporaryAccessPassAuthenticationMethod())
        info.content = json.dumps({"lifetimeInMinutes": lifetime_minutes, "isUsableOnce": usable_once}).encode()
        body = await self._graph.get_json(info)
        return IssuedPass(secret=str(body.get("temporaryAccessPass") or ""),
                          starts_at=datetime.fromisoformat(str(body["startDateTime"]).replace("Z", "+00:00")),
                          lifetime_minutes=int(body.get("lifetimeInMinutes") or lifetime_minutes),
                          usable_once=bool(body.get("isUsableOnce")))

    async def entra_contacts(self, user_id: str) -> list[EntraContact]:
        """The user's phone methods (mobile, alternateMobile, office) and email methods, every page of each."""
        user = quote(user_id, safe="")
        phones = await self._all(f"{self._graph.base_url}/users/{user}/authentication/phoneMethods",
                                 lambda m: EntraContact(str(m.get("phoneType") or ""), str(m.get("phoneNumber") or "")))
        emails = await self._all(f"{self._graph.base_url}/users/{user}/authentication/emailMethods",
                                 lambda m: EntraContact("email", str(m.get("emailAddress") or "")))
        return [c for c in phones + emails if c.kind and c.contact]

    async def _all(self, first: str, read: Callable[[dict[str, Any]], EntraContact]) -> list[EntraContact]:
        builder = self._sdk.users.by_user_id("x").authentication.phone_methods

        def page(link: str) -> RequestInformation:
            return builder.with_url(link).to_get_request_information()

        return [read(m) async for methods in self._graph.pages(page(first), page) for m in methods]
