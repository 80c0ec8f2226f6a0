"""Helpdesk-verified recovery: a helpdesk agent proves who is calling through the user's own registered methods,
then takes one audited action at a time. The rules of each step, no I/O.

    started --code or app code right--> verified --action, action...--> (expires)
        \\___ 5 wrong answers to a method: locked (nothing more; a new verification is needed)
        \\___ VERIFICATION_LIFETIME after the start: expired (every step refused)

VERIFY_THROUGH_REGISTERED: a code goes only to a contact the user registered (email, mobile phone, office phone),
picked by its method, never typed; or the caller reads their authenticator app's current code. Nothing the caller
says on the call (a number, an address) is ever used: the API has no field for it.

ONE_AGENT_ONE_VERIFICATION: a verification belongs to the agent who started it; another agent's request for it is
told "not found". AGENT_NOT_SELF: an agent never verifies or acts on their own account (that is self-service).

PRIVILEGED_CALLERS: a caller who holds any directory role, or is in the policy's protected group, is privileged.
By policy, an action on a privileged caller is refused, or waits for FOUR_EYES: a second helpdesk agent, neither
the one who asked nor the caller, approves it before it runs. A request lives as long as its verification.

NO_PASSWORD: no action shows or sets a password. The strongest is a one-time reset link sent to the user's
registered address (shared/domain/helpdesk_links.py): the user sets their own password on the reset page.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.codes import FailureCounts, count_failure
from shared.domain.helpdesk_policy import PrivilegedCallers
from shared.domain.onprem import OnPremAccount
from shared.domain.policy import Method

VERIFICATION_LIFETIME = timedelta(minutes=30)  # a call, its verification and the actions that follow it
VERIFICATION_ROW = "verification"
# What a caller may be verified with: codes to registered contacts, and the authenticator app's code.
CODE_METHODS = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE})
VERIFY_METHODS = CODE_METHODS | {Method.AUTHENTICATOR_APP, Method.PASSKEY}
# PASSKEY_ON_OWN_DEVICE: the agent asks the user to confirm with a passkey on their own device (a link to their reset
# page, mailed to their registered address); the challenge lives on the verification, used up by the first answer.
PASSKEY_CHALLENGE_LIFETIME = timedelta(minutes=5)
MAX_RESET_LINKS = 3  # links one verification may send (each new one voids the one before)


class VerificationState(StrEnum):
    STARTED = "started"
    VERIFIED = "verified"
    LOCKED = "locked"


class HelpdeskAction(StrEnum):
    """What a verified agent may do, each a separate, audited action."""

    CLEAR_BLOCK = "clear-block"  # the user's self-service password reset block (G1)
    UNLOCK = "unlock"  # the account's lockout in on-premises AD, through the agent
    RESET_LINK = "reset-link"  # a one-time link to the reset page, sent to a registered address
    ACCESS_PASS = "access-pass"  # a Temporary Access Pass, shown once to the user on the page a link opens


@dataclass(frozen=True)
class Caller:
    """Who the verification is about, as decided at its start and kept: the facts the actions rest on."""

    user_id: str
    user_principal_name: str
    display_name: str
    privileged: bool
    account_enabled: bool = True
    synced: bool = False
    target: str | None = None  # the user's password target (shared/domain/password_targets.py)
    on_premises: OnPremAccount | None = None


@dataclass(frozen=True)
class Verification:
    verification_id: str
    agent_id: str
    agent_name: str
    caller: Caller
    created_at: datetime
    state: VerificationState = VerificationState.STARTED
    method: Method | None = None  # the method that verified the caller
    verified_at: datetime | None = None
    failures: FailureCounts = ()  # wrong app codes (code methods count on their challenge rows)
    done: tuple[HelpdeskAction, ...] = ()  # actions completed in this verification
    links_sent: int = 0
    attempts: int = 0  # tries at an unlock through the on-premises agent (each try's job id is new)
    unlock_pending_until: datetime | None = None  # an unlock the agent took and has not answered yet
    passkey_asked_at: datetime | None = None  # when the agent asked for a passkey confirmation (PASSKEY_ON_OWN_DEVICE)
    passkey_challenge: str | None = None  # base64url: the one open WebAuthn challenge of the confirmation
    passkey_challenge_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + VERIFICATION_LIFETIME

    @property
    def user_id(self) -> str:
        return self.caller.user_id


def is_expired(verification: Verification, now: datetime) -> bool:
    return now >= verification.expires_at


def belongs_to(verification: Verification, agent_id: str) -> bool:
    """ONE_AGENT_ONE_VERIFICATION."""
    return verification.agent_id.lower() == agent_id.lower()


def agent_is_caller(agent_id: str, user_id: str) -> bool:
    """AGENT_NOT_SELF: the agent's own account is never a caller."""
    return agent_id.lower() == user_id.lower()


def is_privileged(directory_roles: list[str], in_protected_group: bool) -> bool:
    """PRIVILEGED_CALLERS: any directory role, or the policy's protected group."""
    return bool(directory_roles) or in_protected_group


def record_verified(verification: Verification, method: Method, now: datetime) -> Verification:
    if verification.state is not VerificationState.STARTED:
        return verification
    return replace(verification, state=VerificationState.VERIFIED, method=method, verified_at=now)


def record_failure(verification: Verification, method: Method) -> Verification:
    """A wrong app code; the 5th locks the verification (as a reset flow, A9)."""
    failures, locks = count_failure(verification.failures, method)
    updated = replace(verification, failures=failures)
    return lock(updated) if locks else updated


def lock(verification: Verification) -> Verification:
    if verification.state is VerificationState.LOCKED:
        return verification
    return replace(verification, state=VerificationState.LOCKED)


def may_act(verification: Verification, now: datetime) -> bool:
    return verification.state is VerificationState.VERIFIED and not is_expired(verification, now)


def needs_four_eyes(verification: Verification, handling: PrivilegedCallers) -> bool:
    return verification.caller.privileged and handling is PrivilegedCallers.FOUR_EYES


def refused_as_privileged(verification: Verification, handling: PrivilegedCallers) -> bool:
    return verification.caller.privileged and handling is PrivilegedCallers.REFUSE


def record_done(verification: Verification, action: HelpdeskAction) -> Verification:
    done = verification.done if action in verification.done else (*verification.done, action)
    links = verification.links_sent + (1 if action in (HelpdeskAction.RESET_LINK, HelpdeskAction.ACCESS_PASS) else 0)
    return replace(verification, done=done, links_sent=links)


def may_repeat(verification: Verification, action: HelpdeskAction) -> bool:
    """Clearing a block and an unlock are done once per verification; links may be sent again (each new one voids
    the last) up to MAX_RESET_LINKS."""
    if action in (HelpdeskAction.RESET_LINK, HelpdeskAction.ACCESS_PASS):
        return verification.links_sent < MAX_RESET_LINKS
    return action not in verification.done


# ---- four eyes ----------------------------------------------------------------------------------------------


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True)
class ApprovalRequest:
    """An action on a privileged caller, waiting for a second agent (FOUR_EYES)."""

    request_id: str
    verification_id: str
    action: HelpdeskAction
    user_id: str
    user_principal_name: str
    requested_by: str
    requested_by_name: str
    requested_at: datetime
    expires_at: datetime
    option: str | None = None  # the action's choice (the registered address a link goes to)
    state: ApprovalState = ApprovalState.PENDING
    decided_by: str | None = None
    decided_by_name: str | None = None
    decided_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)


def is_open(request: ApprovalRequest, now: datetime) -> bool:
    return request.state is ApprovalState.PENDING and now < request.expires_at


def may_decide(request: ApprovalRequest, approver_id: str) -> bool:
    """FOUR_EYES: neither the agent who asked nor the caller approves."""
    approver = approver_id.lower()
    return approver not in (request.requested_by.lower(), request.user_id.lower())


def decided(request: ApprovalRequest, approve: bool, approver_id: str, approver_name: str,
            now: datetime) -> ApprovalRequest:
    if request.state is not ApprovalState.PENDING:
        return request
    return replace(request, state=ApprovalState.APPROVED if approve else ApprovalState.DENIED,
                   decided_by=approver_id, decided_by_name=approver_name, decided_at=now)


def may_confirm_by_passkey(verification: Verification, now: datetime) -> bool:
    """PASSKEY_ON_OWN_DEVICE: only a started, live verification whose agent asked for it."""
    return (verification.state is VerificationState.STARTED and verification.passkey_asked_at is not None
            and not is_expired(verification, now))


def open_challenge(verification: Verification, now: datetime) -> str | None:
    """The confirmation's challenge while it lives (PASSKEY_CHALLENGE_LIFETIME), else None."""
    at = verification.passkey_challenge_at
    if verification.passkey_challenge is None or at is None or now >= at + PASSKEY_CHALLENGE_LIFETIME:
        return None
    return verification.passkey_challenge
