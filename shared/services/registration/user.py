"""Who registers: the signed-in user (always the token's object id, never the request), and the audit event of
their own security info ("Authentication Methods" events; details never hold a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.access import Principal
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.policy import Method


@dataclass(frozen=True)
class User:
    """The signed-in user, from their token."""

    id: str
    actor: Actor


def user_of(principal: Principal) -> User:
    return User(principal.object_id, principal.actor())


def registration_event(user: User, activity: Activity, method: Method | None, outcome: Outcome, step: str,
                       session: str | None, client_ip: str | None, now: datetime,
                       reason: str | None = None) -> AuditEvent:
    """An "Authentication Methods" event about the user's own security info; details never hold a secret."""
    return AuditEvent(time=now, activity=activity, service=AuditService.AUTH_METHODS, actor=user.actor,
                      outcome=outcome, target_user_id=user.id, method=method.value if method else None,
                      flow_id=session, client_ip=client_ip, reason=reason, details={"step": step})
