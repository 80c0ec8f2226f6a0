"""Who the username names: the user's resolution (once per flow) and the tenant's facts it needs, cached.

Enumeration (C1-C3): nothing here runs before the first proof, and its outcome is kept on the flow, never shown
before a method is proven. A user that does not exist gets a resolution without a user id, which the flow meets
with decoy challenges.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from shared.domain import reset_flow
from shared.domain.codes import mask_contact
from shared.domain.eligibility import LicenceCatalog
from shared.domain.enablement import is_enabled
from shared.domain.password_targets import target_for
from shared.domain.policy import DNS_LABEL, Method, Policy
from shared.domain.reset_flow import Resolution, UserNames
from shared.domain.security_info import RegisteredMethod
from shared.services.reset.ports import EnablementReader, ResetDirectory, SecurityInfoReader

TENANT_FACTS_TTL = 600.0  # seconds: subscriptions and SKUs change rarely; a reset reads them once per 10 minutes


@dataclass(frozen=True)
class TenantFacts:
    name: str
    paid: bool
    licences: LicenceCatalog
    read_at: float


_UPN_LOCAL = re.compile(r"^[A-Za-z0-9._!^~-]{1,64}$")
_UPN_DOMAIN = re.compile(rf"^{DNS_LABEL}(?:\.{DNS_LABEL})+$")


def plausible_username(username: str) -> bool:
    """Only what Entra could store as a UPN is looked up: ASCII letters, digits and . - _ ! ^ ~ before the @ (no
    "." right before it; ' and # of Entra's set are never looked up: no quotes, no guest #EXT# names), ASCII DNS
    labels after it, 113 characters at most. Anything else - a compatibility lookalike such as the Kelvin sign,
    an invisible or direction-changing character, a path or query character - names nobody, unfolded and
    without a Graph call."""
    local, at, domain = username.partition("@")
    return bool(at) and len(username) <= 113 and username.isascii() and not local.endswith(".") \
        and _UPN_LOCAL.match(local) is not None and _UPN_DOMAIN.match(domain) is not None


class UserResolver:
    """Reads who a user is and what they registered; one per process, so the tenant's facts are cached."""

    def __init__(self, directory: ResetDirectory, security_info: SecurityInfoReader,
                 enablement: EnablementReader) -> None:
        self._directory = directory
        self._info = security_info
        self._enablement = enablement
        self._tenant: TenantFacts | None = None

    async def resolve(self, username: str, policy: Policy) -> Resolution:
        user = await self._directory.reset_user(username) if plausible_username(username) else None
        if user is None:
            return Resolution(user_id=None)
        roles, summary, row, tenant = await asyncio.gather(
            self._directory.directory_roles(user.id), self._info.summary(user.id),
            self._enablement.get_enablement(user.id), self.tenant_facts(),
        )
        is_admin = bool(roles)
        required, allowed = reset_flow.requirements_for(policy, is_admin)
        usable = summary.methods & allowed
        target = target_for(user, policy)
        refusal = reset_flow.refusal_for(
            enabled=is_enabled(row), account_enabled=user.account_enabled, synced=user.synced and target is None,
            has_premium=tenant.licences.has_premium(user.licenses), paid_tenant=tenant.paid,
            usable_methods=len(usable), methods_required=required,
        )
        return Resolution(user_id=user.id, is_admin=is_admin, registered=frozenset(summary.methods), refusal=refusal,
                          methods_required=required, methods_allowed=allowed, target=target,
                          names=UserNames(user.given_name, user.surname, user.display_name))

    async def tenant_facts(self) -> TenantFacts:
        facts = self._tenant
        if facts is None or time.monotonic() - facts.read_at > TENANT_FACTS_TTL:
            organization, subscriptions, skus = await asyncio.gather(
                self._directory.organization(), self._directory.subscriptions(), self._directory.subscribed_skus())
            paid = any(s.active and not s.is_trial for s in subscriptions)
            facts = TenantFacts(organization.display_name, paid, LicenceCatalog(skus), time.monotonic())
            self._tenant = facts
        return facts

    async def registered(self, user_id: str, method: Method) -> RegisteredMethod | None:
        return next((m for m in await self._info.methods(user_id) if m.kind is method), None)

    async def masked_emails(self, user_id: str) -> list[str]:
        """The user's registered email addresses, masked: where the reset notice goes."""
        return [mask_contact(m.contact) or "" for m in await self._info.methods(user_id)
                if m.kind is Method.EMAIL and m.contact]
