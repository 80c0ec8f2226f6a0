"""The helpdesk's audit trail: every verification step and action, with the agent named as the actor (and the
approving agent for four eyes); never a code, a link or a full contact."""

from __future__ import annotations

from typing import Any

from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.codes import mask_contact
from shared.domain.helpdesk import Verification
from shared.services.helpdesk.ports import AuditWriter


class HelpdeskAudit:
    def __init__(self, audit: AuditWriter, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    async def verification(self, verification: Verification, agent: Actor, outcome: Outcome, step: str,
                           method: str | None = None, client_ip: str | None = None, **details: Any) -> None:
        await self.write(verification, Activity.HELPDESK_VERIFICATION, agent, outcome, step, method, client_ip,
                         **details)

    async def write(self, verification: Verification, activity: Activity, agent: Actor, outcome: Outcome, step: str,
                    method: str | None = None, client_ip: str | None = None, **details: Any) -> None:
        caller = verification.caller
        await self._audit.write(AuditEvent(
            time=self._clock(), activity=activity, service=AuditService.SSPR, actor=agent, outcome=outcome,
            target_user_id=caller.user_id, method=method, flow_id=verification.verification_id, client_ip=client_ip,
            reason=step, details={"step": step, "userPrincipalName": caller.user_principal_name,
                                  "agent": verification.agent_name, "verification": verification.verification_id,
                                  **{k: v for k, v in details.items() if v is not None}},
        ))


def masked(contact: str | None) -> str:
    return mask_contact(contact) or ""
