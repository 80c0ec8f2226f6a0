"""Recovering into passwordless: a verified reset may end with a Temporary Access Pass (security.md I3).

The policy's `temporaryAccessPass` says when: instead of a new password (the flow ends with the pass), and/or
right after the new password (within AFTER_PASSWORD_WINDOW). The pass is Entra's own (Graph makes it for the user),
for the user to sign in once and register a passkey or the Authenticator app in Entra; its lifetime and one-time
use come from our policy within the tenant's TAP policy (shared/domain/access_pass.py), and a tenant with TAP off
or not targeting the user gets none (409 access-pass-unavailable, in plain words).

The pass is in the one answer that hands it over and nowhere else: not on the flow's row (only when it was
claimed), not in the queue message (ids and a time), not in the notice mail, the audit or a log line. Audited as
Entra does when a pass is made ("Admin registered security info", Authentication Methods, method
temporaryAccessPass) and as a step of the flow; the user is told on their registered addresses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared import i18n
from shared.adapters.graph.authentication import IssuedPass
from shared.domain.access_pass import TenantPassPolicy, pass_terms
from shared.domain.audit import Activity, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.reset_flow import FlowState
from shared.recovery_errors import AccessPassUnavailable
from shared.services.reset.answers import AccessPassIssued
from shared.services.reset.audit import ResetAudit, actor
from shared.services.reset.offer import ResetOffer
from shared.services.reset.ports import AuditWriter
from shared.services.reset.state import ResetFlows

log = logging.getLogger("sspr.reset")

ACCESS_PASS_METHOD = "temporaryAccessPass"


class PassDirectory(Protocol):
    async def access_pass_policy(self) -> TenantPassPolicy: ...

    async def create_access_pass(self, user_id: str, lifetime_minutes: int, usable_once: bool) -> IssuedPass: ...

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]: ...


class PassQueue(Protocol):
    async def access_pass_issued(self, user_id: str, issued_at: datetime, administrator: bool) -> None: ...


class PassThrottle(Protocol):
    async def clear(self, user_id: str) -> None: ...


@dataclass(frozen=True)
class ResetAccessPass:
    flows: ResetFlows
    offer: ResetOffer
    directory: PassDirectory
    queue: PassQueue
    throttle: PassThrottle
    audit: ResetAudit
    audit_log: AuditWriter
    clock: Clock

    async def issue(self, flow_id: str, secret: str, language: str) -> AccessPassIssued:
        flow = await self.flows.open_verified(flow_id, secret)
        offer = (await self.offer.policy()).temporary_access_pass
        instead = flow.state is FlowState.ACTIVE
        # A helpdesk's link for a pass (the agent chose it for the verified caller) is an offer of its own.
        if not (offer.instead_of_password or (flow.helpdesk_pass and flow.helpdesk is not None) if instead
                else offer.after_password):
            raise self._unavailable(language, "not-offered", "the policy offers no pass at this step")
        resolution = flow.resolution
        if resolution is None or resolution.user_id is None:
            raise self._unavailable(language, "no-user", "a verified flow without a user")
        user_id = resolution.user_id
        tenant = await self.directory.access_pass_policy()
        terms = pass_terms(offer, tenant)
        if terms is None or not await self._targeted(user_id, tenant):
            await self.audit.progress(flow, None, Outcome.FAILURE, "access-pass-not-allowed-by-tenant")
            raise self._unavailable(language, "tenant", "the tenant's TAP policy is off or does not target the user")
        claimed = await self.flows.claim_access_pass(flow)
        try:
            issued = await self.directory.create_access_pass(user_id, terms.lifetime_minutes, terms.usable_once)
        except BaseException:
            await self.flows.release_access_pass(claimed)
            await self.audit.progress(flow, None, Outcome.FAILURE, "access-pass-failed")
            raise
        now = self.clock()
        if instead:
            await self.flows.completed(claimed, now)
            await self.throttle.clear(user_id)
        await self.queue.access_pass_issued(user_id, now, resolution.is_admin)
        await self.audit.progress(flow, None, Outcome.SUCCESS, "access-pass-issued")
        await self.audit_log.write(AuditEvent(
            time=now, activity=Activity.ADMIN_REGISTERED_INFO, service=AuditService.AUTH_METHODS, actor=actor(flow),
            target_user_id=user_id, method=ACCESS_PASS_METHOD, flow_id=flow.flow_id, client_ip=flow.client_ip,
            reason="access-pass-issued", details={"lifetimeMinutes": issued.lifetime_minutes,
                                                  "isUsableOnce": issued.usable_once, "insteadOfPassword": instead}))
        log.info("flow %s: a Temporary Access Pass was made (%d min, one-time %s)", flow.flow_id,
                 issued.lifetime_minutes, issued.usable_once)
        return AccessPassIssued(temporaryAccessPass=issued.secret, startsAt=issued.starts_at,
                                expiresAt=issued.starts_at + timedelta(minutes=issued.lifetime_minutes),
                                lifetimeMinutes=issued.lifetime_minutes, usableOnce=issued.usable_once,
                                passwordReset=not instead)

    async def _targeted(self, user_id: str, tenant: TenantPassPolicy) -> bool:
        groups = [*tenant.group_ids, *tenant.excluded_group_ids][:20]  # checkMemberGroups takes 20 ids at most
        member_of = {g.lower() for g in await self.directory.check_member_groups(user_id, groups)} if groups else set()
        return tenant.targets(member_of)

    def _unavailable(self, language: str, reason: str, why: str) -> AccessPassUnavailable:
        return AccessPassUnavailable(f"no Temporary Access Pass: {why}", reason=reason,
                                     detail=i18n.catalog("reset", language)["accessPass.unavailable"])
