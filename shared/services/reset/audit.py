"""The reset flow's audit trail, in Entra's names; never a code, answer, password or full contact.

"Self-service password reset flow activity progress" per step, "Reset password (self-service)" for the outcome
("Blocked from self-service password reset" is the throttle's).
"""

from __future__ import annotations

from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.policy import Method
from shared.domain.reset_flow import ResetFlow
from shared.services.reset.ports import AuditWriter

ANONYMOUS = Actor(id="anonymous", display="self-service password reset", kind="user")


def actor(flow: ResetFlow) -> Actor:
    """The person resetting is not signed in: the actor is who they claim to be, marked unauthenticated."""
    user_id = flow.resolution.user_id if flow.resolution and flow.resolution.user_id else None
    return Actor(id=user_id or ANONYMOUS.id, display=flow.username, kind="user") if user_id else ANONYMOUS


class ResetAudit:
    def __init__(self, audit: AuditWriter, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    async def progress(self, flow: ResetFlow, method: Method | None, outcome: Outcome, step: str) -> None:
        await self._audit.write(self._event(flow, Activity.FLOW_PROGRESS, method, outcome, step))

    async def outcome(self, flow: ResetFlow, outcome: Outcome, step: str,
                      activity: Activity = Activity.RESET_SELF_SERVICE, details: dict[str, str] | None = None) -> None:
        """The flow's outcome: "Reset password (self-service)", or "Unlock user account (self-service)";
        `details` name the directory and what applied the change (the on-premises agent's id)."""
        await self._audit.write(self._event(flow, activity, None, outcome, step, details))

    def _event(self, flow: ResetFlow, activity: Activity, method: Method | None, outcome: Outcome,
               step: str, details: dict[str, str] | None = None) -> AuditEvent:
        user_id = flow.resolution.user_id if flow.resolution else None
        return AuditEvent(time=self._clock(), activity=activity, service=AuditService.SSPR, actor=actor(flow),
                          outcome=outcome, target_user_id=user_id, method=method.value if method else None,
                          flow_id=flow.flow_id, client_ip=flow.client_ip, reason=step,
                          details={"step": step, "username": flow.username,
                                   **({"helpdeskVerification": flow.helpdesk} if flow.helpdesk else {}),
                                   **(details or {})})
