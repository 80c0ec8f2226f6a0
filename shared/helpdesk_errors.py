"""The helpdesk's branch of the error tree (shared/errors.py holds the rest; docs/architecture.md draws both).

    SsprError
    +-- HelpdeskPaused        429  urn:sspr:problem:helpdesk-paused        (HELPDESK_LIMITS: this caller or agent)
    +-- CallerNotVerified     409  urn:sspr:problem:caller-not-verified    (an action before the caller is verified)
    +-- PrivilegedRefused     403  urn:sspr:problem:privileged-refused     (the policy refuses privileged callers)
    +-- ActionUnavailable     409  urn:sspr:problem:action-unavailable     (not for this user here, or done already)
    +-- ApprovalNotAllowed    403  urn:sspr:problem:approval-not-allowed   (four eyes: not the agent who asked)
    +-- ResetLinkNotValid     404  urn:sspr:problem:reset-link-not-valid   (wrong, expired, used or replaced link)
"""

from __future__ import annotations

from datetime import datetime

from shared.errors import Problem, SsprError


class HelpdeskPaused(SsprError):
    problem = Problem("urn:sspr:problem:helpdesk-paused",
                      "Too many codes or wrong codes: verification is paused for now.", 429)

    def __init__(self, whose: str, until: datetime) -> None:  # whose: "caller" | "agent"
        super().__init__(f"helpdesk paused for the {whose} until {until.isoformat()}", pausedFor=whose,
                         until=until.isoformat())


class CallerNotVerified(SsprError):
    problem = Problem("urn:sspr:problem:caller-not-verified",
                      "Verify the caller first: read back a code sent to one of their registered methods.", 409)


class PrivilegedRefused(SsprError):
    problem = Problem("urn:sspr:problem:privileged-refused",
                      "The policy does not let the helpdesk act on administrators or protected accounts.", 403)


class ActionUnavailable(SsprError):
    """Raised with the `reason` the page tells."""

    problem = Problem("urn:sspr:problem:action-unavailable", "This action is not available for this user.", 409)


class ApprovalNotAllowed(SsprError):
    problem = Problem("urn:sspr:problem:approval-not-allowed",
                      "A second agent must approve: not the agent who asked, and not the caller.", 403)


class ResetLinkNotValid(SsprError):
    problem = Problem("urn:sspr:problem:reset-link-not-valid",
                      "This link has expired or was already used. Call your helpdesk for a new one.", 404)
