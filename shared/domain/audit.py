"""Audit events, named like Entra's own audit log so admins recognise them (contracts.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditService(StrEnum):
    SSPR = "Self-service Password Management"
    AUTH_METHODS = "Authentication Methods"
    SSPR_ADMIN = "SSPR Administration"


class Activity(StrEnum):
    """Entra's activity names, plus this service's own admin activities in the same style."""

    RESET_SELF_SERVICE = "Reset password (self-service)"
    UNLOCK_SELF_SERVICE = "Unlock user account (self-service)"
    CHANGE_SELF_SERVICE = "Change password (self-service)"
    FLOW_PROGRESS = "Self-service password reset flow activity progress"
    BLOCKED = "Blocked from self-service password reset"
    REGISTERED_INFO = "User registered security info"
    REGISTERED_ALL_INFO = "User registered all required security info"
    DELETED_INFO = "User deleted security info"
    ADMIN_REGISTERED_INFO = "Admin registered security info"  # Entra's name when a Temporary Access Pass is made
    RESET_BY_ADMIN = "Reset password (by admin)"
    POLICY_UPDATED = "Update self-service password reset policy"
    ENABLEMENT_REQUESTED = "Request self-service password reset enablement"
    ENABLEMENT_COMPLETED = "Complete self-service password reset enablement"
    SCOPE_SYNCED = "Synchronize self-service password reset scope"
    COMPLIANCE_STARTED = "Start compliance run"
    COMPLIANCE_COMPLETED = "Complete compliance run"
    REMINDERS_SENT = "Send registration reminder"
    PASSWORD_EXPIRATION_UPDATED = "Update password expiration policy"
    PASSWORD_NEVER_EXPIRES_UPDATED = "Update user password never expires"
    EXPIRY_RUN_STARTED = "Start password expiry run"
    EXPIRY_RUN_COMPLETED = "Complete password expiry run"
    EXPIRY_REMINDERS_SENT = "Send password expiry reminder"
    # The helpdesk (shared/services/helpdesk): Entra has no names for these, so they follow its style.
    HELPDESK_VERIFICATION = "Verify caller identity (helpdesk)"
    HELPDESK_PAUSED = "Pause helpdesk verification"
    HELPDESK_BLOCK_CLEARED = "Unblock user from self-service password reset (helpdesk)"
    HELPDESK_UNLOCK = "Unlock user account (helpdesk)"
    HELPDESK_RESET_LINK = "Send password reset link (helpdesk)"
    HELPDESK_ACCESS_PASS_LINK = "Send Temporary Access Pass link (helpdesk)"
    HELPDESK_APPROVAL = "Approve helpdesk action"
    RESET_HELPDESK_LINK = "Reset password (helpdesk-verified)"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (object id + UPN), an app, or the service itself."""

    id: str
    display: str = ""
    kind: str = "user"  # "user" | "app" | "system"


SYSTEM = Actor(id="system", display="SSPR service", kind="system")


@dataclass(frozen=True)
class AuditEvent:
    """One audited fact. `details` holds only non-secret data (old/new policy values, counts, reasons)."""

    time: datetime
    activity: Activity
    service: AuditService
    actor: Actor
    outcome: Outcome = Outcome.SUCCESS
    target_user_id: str | None = None
    method: str | None = None
    flow_id: str | None = None
    client_ip: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
