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
from typing import Protocol

from shared.adapters.graph import ResetUser
from shared.domain import reset_flow
from shared.domain.codes import mask_contact
from shared.domain.eligibility import LicenceCatalog
from shared.domain.enablement import is_enabled
from shared.domain.onprem import Coverage
from shared.domain.passkeys import counts_as_two, proven_count
from shared.domain.password_targets import target_for
from shared.domain.policy import DNS_LABEL, Method, Policy
from shared.domain.reset_flow import Refusal, Resolution, UserNames
from shared.domain.security_info import RegisteredMethod
from shared.services.reset.ports import AgentCoverage, EnablementReader, ResetDirectory, SecurityInfoReader


class EntraMethodsReader(Protocol):
    async def refresh(self, user_id: str) -> list[RegisteredMethod]: ...

    async def contact(self, user_id: str, method: Method) -> RegisteredMethod | None: ...


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
                 enablement: EnablementReader, agents: AgentCoverage, entra: EntraMethodsReader | None = None) -> None:
        self._directory = directory
        self._info = security_info
        self._enablement = enablement
        self._agents = agents
        self._entra = entra  # methods registered in Entra, read on demand when the policy counts them
        self._tenant: TenantFacts | None = None

    async def resolve(self, username: str, policy: Policy) -> Resolution:
        user = await self._directory.reset_user(username) if plausible_username(username) else None
        if user is None:
            return Resolution(user_id=None)
        roles, summary, row, tenant, coverage, entra = await asyncio.gather(
            self._directory.directory_roles(user.id), self._info.summary(user.id),
            self._enablement.get_enablement(user.id), self.tenant_facts(), self._coverage(user, policy),
            self._entra_methods(user.id),
        )
        is_admin = bool(roles)
        required, allowed = reset_flow.requirements_for(policy, is_admin)
        methods = summary.methods | {m.kind for m in entra}
        usable = methods & allowed
        twice = counts_as_two(policy, is_admin) and Method.PASSKEY in allowed
        refusal = reset_flow.refusal_for(
            enabled=is_enabled(row), account_enabled=user.account_enabled, synced=coverage,
            has_premium=tenant.licences.has_premium(user.licenses), paid_tenant=tenant.paid,
            usable_methods=proven_count(usable, twice), methods_required=required,
        )
        return Resolution(user_id=user.id, is_admin=is_admin, registered=frozenset(methods), refusal=refusal,
                          methods_required=required, methods_allowed=allowed, target=target_for(user, policy),
                          names=UserNames(user.given_name, user.surname, user.display_name),
                          on_premises=user.on_premises, passkey_counts_twice=twice)

    async def resolve_verified(self, user_id: str, policy: Policy) -> tuple[Resolution, str]:
        """HELPDESK_VERIFIED: the user a helpdesk link names, proven by the helpdesk's verification. The policy's
        scope and the number of registered methods are self-service rules and do not apply; what makes a new
        password impossible (a disabled account, a synced user no agent serves, a trial tenant) still does."""
        user = await self._directory.reset_user(user_id)
        if user is None:
            return Resolution(user_id=None), ""
        roles, summary, tenant, coverage = await asyncio.gather(
            self._directory.directory_roles(user.id), self._info.summary(user.id), self.tenant_facts(),
            self._coverage(user, policy))
        required, allowed = reset_flow.requirements_for(policy, bool(roles))
        refusal = reset_flow.refusal_for(
            enabled=True, account_enabled=user.account_enabled, synced=coverage,
            has_premium=tenant.licences.has_premium(user.licenses), paid_tenant=tenant.paid,
            usable_methods=required, methods_required=required)
        return Resolution(user_id=user.id, is_admin=bool(roles), registered=frozenset(summary.methods), refusal=refusal,
                          methods_required=required, methods_allowed=allowed, target=target_for(user, policy),
                          names=UserNames(user.given_name, user.surname, user.display_name),
                          on_premises=user.on_premises), user.user_principal_name

    async def standing(self, user_id: str, policy: Policy) -> Refusal | None:
        """REGISTRATION_STANDING: what keeps a signed-in user from resetting here whatever they register (the
        register page says it instead of "you can reset your password yourself"): the account, the tenant, and
        for a synced user the on-premises side. Not what registering fixes (too few methods), not a passing
        outage (no agent live right now), and not the scope (a user just added to the enabled group is in it at
        the next scope sync: "not turned on for you" would be wrong by then)."""
        user = await self._directory.reset_user(user_id)
        if user is None:
            return None
        tenant, coverage = await asyncio.gather(self.tenant_facts(), self._coverage(user, policy))
        refusal = reset_flow.refusal_for(
            enabled=True, account_enabled=user.account_enabled,
            synced=None if coverage is Coverage.NO_LIVE_AGENT else coverage,
            has_premium=tenant.licences.has_premium(user.licenses), paid_tenant=tenant.paid,
            usable_methods=0, methods_required=0)
        return refusal

    async def _coverage(self, user: ResetUser, policy: Policy) -> Coverage | None:
        """For a synced user, whether the on-premises agents can serve them; None for a cloud user."""
        if not user.synced:
            return None
        return await self._agents.coverage(policy.on_premises.writeback, user.on_premises)

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
        """The user's own method of this kind, else the one registered in Entra (when the policy counts them)."""
        own = next((m for m in await self._info.methods(user_id) if m.kind is method), None)
        if own is None and self._entra is not None:
            return await self._entra.contact(user_id, method)
        return own

    async def _entra_methods(self, user_id: str) -> list[RegisteredMethod]:
        return await self._entra.refresh(user_id) if self._entra is not None else []

    async def masked_contacts(self, user_id: str) -> dict[Method, str]:
        """Each registered method's contact, masked (n***@example.com, +46*******67): what a person who proved one
        method is shown of the others, as Entra shows them."""
        return {m.kind: mask_contact(m.contact) or "" for m in await self._info.methods(user_id) if m.contact}

    async def masked_emails(self, user_id: str) -> list[str]:
        """The user's registered email addresses, masked: where the reset notice goes."""
        return [mask_contact(m.contact) or "" for m in await self._info.methods(user_id)
                if m.kind is Method.EMAIL and m.contact]
