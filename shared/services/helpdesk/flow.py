"""The helpdesk's use cases as the API calls them: find a caller, see what a decision needs, verify the caller
through what they registered, then act (or ask a second agent to approve, for a privileged caller).

Beside this module: caller.py (search, the view, the facts a verification keeps, the actions on offer),
verification.py (the verification's row, codes and app codes), actions.py (each action), audit.py, answers.py,
ports.py. The rules are shared/domain/helpdesk.py and shared/domain/helpdesk_links.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain import helpdesk
from shared.domain.audit import Activity, Actor, Outcome
from shared.domain.helpdesk import ApprovalRequest, HelpdeskAction
from shared.domain.policy import Method
from shared.errors import Conflict, NotFound
from shared.helpdesk_errors import ApprovalNotAllowed, PrivilegedRefused
from shared.services.helpdesk.actions import HelpdeskActions
from shared.services.helpdesk.answers import (
    ActionDone,
    ApprovalDecided,
    ApprovalList,
    ApprovalPending,
    ApprovalView,
    CallerPage,
    CallerView,
    CodeSent,
    VerificationView,
)
from shared.services.helpdesk.audit import HelpdeskAudit
from shared.services.helpdesk.caller import CallerFacts
from shared.services.helpdesk.passkey import PasskeyConfirmation
from shared.services.helpdesk.ports import PolicySource
from shared.services.helpdesk.verification import HelpdeskVerification, Verifications
from shared.services.reset.answers import PasskeyRequest


@dataclass(frozen=True)
class HelpdeskService:
    facts: CallerFacts
    verification: HelpdeskVerification
    actions: HelpdeskActions
    verifications: Verifications
    policies: PolicySource
    audit: HelpdeskAudit
    passkey: PasskeyConfirmation

    # -- finding and seeing a caller ------------------------------------------------------------------------------

    async def search(self, text: str, cursor: str | None) -> CallerPage:
        return await self.facts.search(text, cursor)

    async def caller(self, user_id: str) -> CallerView:
        return await self.facts.view(user_id)

    # -- verifying ------------------------------------------------------------------------------------------------

    async def start(self, agent: Actor, user_id: str, client_ip: str | None) -> VerificationView:
        return await self.verification.start(agent, user_id, client_ip)

    async def status(self, agent: Actor, verification_id: str) -> VerificationView:
        return await self.verification.status(agent, verification_id)

    async def send_code(self, agent: Actor, verification_id: str, method: Method, client_ip: str | None) -> CodeSent:
        return await self.verification.send_code(agent, verification_id, method, client_ip)

    async def verify(self, agent: Actor, verification_id: str, method: Method, code: str,
                     client_ip: str | None) -> VerificationView:
        return await self.verification.verify(agent, verification_id, method, code, client_ip)

    async def ask_passkey(self, agent: Actor, verification_id: str, client_ip: str | None) -> VerificationView:
        """PASSKEY_ON_OWN_DEVICE: the user confirms on their own device, from a link mailed to them."""
        return await self.verification.view(await self.passkey.ask(agent, verification_id, client_ip))

    async def passkey_options(self, verification_id: str) -> PasskeyRequest:
        return await self.passkey.options(verification_id)

    async def passkey_confirm(self, verification_id: str, response: Mapping[str, Any], client_ip: str | None) -> None:
        await self.passkey.confirm(verification_id, response, client_ip)

    # -- acting -----------------------------------------------------------------------------------------------------

    async def act(self, agent: Actor, verification_id: str, action: HelpdeskAction,
                  client_ip: str | None) -> ActionDone | ApprovalPending:
        """Take `action` for the verified caller; for a privileged caller, refuse or ask a second agent (policy)."""
        verification = await self.verifications.open(verification_id, agent)
        await self.actions.offer(verification, action)
        handling = (await self.policies.get()).helpdesk.privileged_callers
        if helpdesk.refused_as_privileged(verification, handling):
            await self.audit.write(verification, Activity.HELPDESK_APPROVAL, agent, Outcome.FAILURE,
                                   "privileged-refused", client_ip=client_ip, action=action.value)
            raise PrivilegedRefused(f"policy refuses helpdesk actions on privileged user {verification.user_id}")
        if helpdesk.needs_four_eyes(verification, handling):
            request = ApprovalRequest(
                request_id=str(uuid.uuid4()), verification_id=verification.verification_id, action=action,
                user_id=verification.user_id, user_principal_name=verification.caller.user_principal_name,
                requested_by=agent.id, requested_by_name=agent.display, requested_at=self.verifications.now(),
                expires_at=verification.expires_at)
            await self.verifications.rows.add_approval(request)
            await self.audit.write(verification, Activity.HELPDESK_APPROVAL, agent, Outcome.SUCCESS,
                                   "approval-requested", client_ip=client_ip, action=action.value,
                                   request=request.request_id)
            return ApprovalPending(action=action, requestId=request.request_id, pendingApproval=True)
        return await self.actions.run(verification, action, agent, client_ip)

    # -- four eyes ----------------------------------------------------------------------------------------------

    async def approvals(self, agent: Actor) -> ApprovalList:
        """What waits for a second agent: every open request but the agent's own (and none about the agent)."""
        now = self.verifications.now()
        requests = await self.verifications.rows.pending_approvals(now)
        return ApprovalList(value=[_approval_view(r) for r in requests if helpdesk.may_decide(r, agent.id)])

    async def decide(self, agent: Actor, request_id: str, approve: bool, client_ip: str | None) -> ApprovalDecided:
        """The second agent's decision, taken once; an approval runs the action at once, with both agents named."""
        now = self.verifications.now()
        request = await self.verifications.rows.approval(request_id)
        if request is None or not helpdesk.is_open(request, now):
            raise NotFound("no open approval request")
        if not helpdesk.may_decide(request, agent.id):
            raise ApprovalNotAllowed(f"agent {agent.id} may not decide request {request_id}")

        def decided(r: ApprovalRequest) -> tuple[bool, ApprovalRequest]:
            return helpdesk.is_open(r, now), helpdesk.decided(r, approve, agent.id, agent.display, now)

        outcome = await self.verifications.rows.change_approval(request_id, decided)
        if outcome is None or not outcome[0]:
            raise Conflict("the request was decided already")
        verification = await self.verifications.rows.get(request.verification_id)
        if verification is None:
            raise NotFound("the verification is over")
        requester = Actor(id=request.requested_by, display=request.requested_by_name, kind="user")
        await self.audit.write(verification, Activity.HELPDESK_APPROVAL, agent,
                               Outcome.SUCCESS if approve else Outcome.FAILURE,
                               "approved" if approve else "denied", client_ip=client_ip,
                               action=request.action.value, request=request_id, requestedBy=requester.display)
        if not approve:
            return ApprovalDecided(requestId=request_id, approved=False)
        result = await self.actions.run(verification, request.action, requester, client_ip, approved_by=agent)
        return ApprovalDecided(requestId=request_id, approved=True, result=result)


def _approval_view(r: ApprovalRequest) -> ApprovalView:
    return ApprovalView(requestId=r.request_id, action=r.action, userId=r.user_id,
                        userPrincipalName=r.user_principal_name, requestedBy=r.requested_by_name,
                        requestedAt=r.requested_at.isoformat(), expiresAt=r.expires_at.isoformat())
