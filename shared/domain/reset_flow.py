"""The self-service reset flow: its state and the rules of each step (security.md A5, A9, A11-A13, C1-C3, G1).

A flow starts anonymously with a username and answers the same for everyone (C1): nothing about the user is
looked up until the user acts again. At the first proof the flow *resolves* the username once (who the user is,
whether an administrator, which methods are registered, and whether this service may reset them) and keeps the
outcome, so every later step judges the same facts.

    started --resolve--> resolved --proof, proof...--> ready (required methods verified) --password--> completed
          \\___ any step after FLOW_LIFETIME: expired (refused, A5)
          \\___ 5 wrong answers to one method: locked (refused, A9; a failed flow for G1)

Possession is proven by typing the full registered contact (email, phone) and then the code sent to it, or an
authenticator app code. A contact that does not match (or a user that does not exist, is blocked, or has nothing
registered) gets a *decoy* challenge: the same row and answers as a real one, but its code was never sent and
cannot match, so wrong codes count and lock it exactly like a real one (C1-C3 hold through every step).

Who cannot reset here is told only once a method is proven (REFUSAL_AFTER_POSSESSION): the refusal is decided at
resolution and kept, never shown before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.codes import FailureCounts, count_failure
from shared.domain.onprem import Coverage, OnPremAccount
from shared.domain.passkeys import proven_count
from shared.domain.policy import Method, Policy, effective_requirements

FLOW_LIFETIME = timedelta(minutes=15)  # A5: a flow expires 15 minutes after it starts, whatever its codes say
FLOW_SECRET_BYTES = 32
# Methods that prove possession of something: the first method of every flow is one of these (A11).
POSSESSION_METHODS = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE, Method.AUTHENTICATOR_APP,
                                Method.PASSKEY})
CONTACT_METHODS = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE})
FLOW_ROW = "flow"


class FlowState(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    COMPLETED = "completed"


class Refusal(StrEnum):
    """Why this service cannot reset the user's password, told after a method is proven."""

    NOT_ENABLED = "not-enabled"
    NOT_REGISTERED_ENOUGH = "not-registered-enough"
    ACCOUNT_DISABLED = "account-disabled"
    SYNCED_NEEDS_PREMIUM = "synced-needs-premium"
    SYNCED_NOT_SUPPORTED = "synced-not-supported"
    ONPREM_UNAVAILABLE = "onprem-unavailable"  # writeback is on, but no on-premises agent is live
    ONPREM_NOT_SERVED = "onprem-not-served"  # agents are live, but none serves this account's OU (or no SID)
    TRIAL_TENANT = "trial-tenant"


@dataclass(frozen=True)
class UserNames:
    """The user's names as the directory has them: words a new password must not contain (B2)."""

    given_name: str = ""
    surname: str = ""
    display_name: str = ""


@dataclass(frozen=True)
class Resolution:
    """Who the username named, decided once per flow. `user_id` None: no such user (or a guest, never served)."""

    user_id: str | None
    is_admin: bool = False
    registered: frozenset[Method] = frozenset()
    refusal: Refusal | None = None
    methods_required: int = 1
    methods_allowed: frozenset[Method] = frozenset()
    names: UserNames = UserNames()
    target: str | None = None  # the password target chosen for the user (shared/services/password_targets)
    passkey_counts_twice: bool = False  # passkeys.COUNTS_AS_TWO for this user, decided with the rest
    on_premises: OnPremAccount | None = None  # a synced user's AD account (SID, DN), as Graph syncs it


class ChangeKind(StrEnum):
    PASSWORD = "password"
    UNLOCK = "unlock"


@dataclass(frozen=True)
class PendingChange:
    """The change this flow's last try sent to its target, until its verdict is in: the try's id (by which a
    verdict that comes later finds the flow), its kind and expiry, and when one request began to settle it."""

    kind: ChangeKind
    attempt_id: str
    expires_at: datetime
    settling_at: datetime | None = None


@dataclass(frozen=True)
class ResetFlow:
    flow_id: str
    secret_digest: str
    username: str
    created_at: datetime
    client_ip: str | None = None
    resolution: Resolution | None = None
    verified: tuple[Method, ...] = ()
    failures: FailureCounts = ()  # wrong answers per method that has no code challenge
    question_ids: tuple[str, ...] = ()
    replaced: tuple[tuple[Method, str], ...] = ()  # per method, the digest of the code its last new code replaced
    state: FlowState = FlowState.ACTIVE
    completed_at: datetime | None = None
    password_claimed_at: datetime | None = None  # the password step runs for one request at a time (a lease)
    passkey_challenge: str | None = None  # base64url: the one open WebAuthn challenge of this flow (I1)
    passkey_challenge_at: datetime | None = None
    access_pass_at: datetime | None = None  # when this flow's one Temporary Access Pass was claimed (access_pass.py)
    pending: PendingChange | None = None  # a change sent to the target whose verdict is not in yet
    attempts: int = 0  # tries at the password (or unlock) step: each try's id is new
    helpdesk: str | None = None  # opened by a helpdesk link: the verification that proved who the user is
    helpdesk_pass: bool = False  # the link was for a Temporary Access Pass: the flow may end with one
    etag: str | None = field(default=None, compare=False)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + FLOW_LIFETIME

    def failures_of(self, method: Method) -> int:
        return dict(self.failures).get(method, 0)


# ---- starting ---------------------------------------------------------------------------------------------


def new_flow_secret() -> str:
    return secrets.token_urlsafe(FLOW_SECRET_BYTES)


def secret_digest(key: bytes, flow_id: str, secret: str) -> str:
    """The flow secret is stored only as an HMAC bound to its flow (like codes, A2)."""
    return hmac.new(key, f"flow|{flow_id}|{secret}".encode(), hashlib.sha256).hexdigest()


def secret_matches(flow: ResetFlow, key: bytes, secret: str) -> bool:
    return hmac.compare_digest(secret_digest(key, flow.flow_id, secret), flow.secret_digest)


def normalise_username(username: str) -> str:
    """UPNs compare case-insensitively; surrounding spaces are typing noise. Only ASCII letters are folded: a
    lookalike (the Kelvin sign lower-cases to "k") stays as typed, so it names nobody (plausible_username)."""
    return "".join(c.lower() if c.isascii() else c for c in username.strip())


def start_methods(policy: Policy, sendable: frozenset[Method]) -> list[Method]:
    """What the start answer offers: the policy's possession methods this service can deliver, the same list for
    every user (C1, C2): never the user's own methods, never security questions (never first, A11)."""
    allowed = policy.methods_allowed.methods() & POSSESSION_METHODS & sendable
    return sorted(allowed)


# ---- judging steps ----------------------------------------------------------------------------------------


def is_expired(flow: ResetFlow, now: datetime) -> bool:
    """A5: refused 15 minutes after the start, whatever else holds."""
    return now >= flow.expires_at


def is_open(flow: ResetFlow, now: datetime) -> bool:
    return flow.state is FlowState.ACTIVE and not is_expired(flow, now)


def resolved(flow: ResetFlow, resolution: Resolution) -> ResetFlow:
    """The first resolution wins: a concurrent second one never changes the facts a step was judged on."""
    return flow if flow.resolution is not None else replace(flow, resolution=resolution)


def requirements_for(policy: Policy, is_admin: bool) -> tuple[int, frozenset[Method]]:
    """A12: administrators need 2 methods and never questions, whatever the policy says."""
    requirements = effective_requirements(policy, is_admin)
    return requirements.methods_required, requirements.methods_allowed


def refusal_for(*, enabled: bool, account_enabled: bool, synced: Coverage | None, has_premium: bool,
                paid_tenant: bool, usable_methods: int, methods_required: int) -> Refusal | None:
    """WHO_CANNOT_RESET_HERE, in the order a helpdesk would explain it: the account first, then the tenant,
    then the policy, then the user's own registration. `synced`: for a user synced from on-premises AD, whether
    the on-premises agents can serve them (None for a cloud user)."""
    if not account_enabled:
        return Refusal.ACCOUNT_DISABLED
    if synced is Coverage.WRITEBACK_OFF:
        # PATCH passwordProfile cannot change an on-premises password, and the admin has not turned writeback on.
        return Refusal.SYNCED_NOT_SUPPORTED if has_premium else Refusal.SYNCED_NEEDS_PREMIUM
    if synced is Coverage.NO_LIVE_AGENT:
        return Refusal.ONPREM_UNAVAILABLE
    if synced in (Coverage.OUTSIDE_AGENT_OUS, Coverage.NO_SID):
        return Refusal.ONPREM_NOT_SERVED
    if not paid_tenant:
        return Refusal.TRIAL_TENANT
    if not enabled:
        return Refusal.NOT_ENABLED
    if usable_methods < methods_required:
        return Refusal.NOT_REGISTERED_ENOUGH
    return None


def may_prove(flow: ResetFlow, method: Method) -> bool:
    """A method may be proven once per flow; security questions only as a later method (A11), never by admins."""
    resolution = flow.resolution
    if method in flow.verified:
        return False
    if method is Method.SECURITY_QUESTIONS:
        return (bool(flow.verified) and resolution is not None and not resolution.is_admin
                and Method.SECURITY_QUESTIONS in resolution.methods_allowed)
    return method in POSSESSION_METHODS


def record_verified(flow: ResetFlow, method: Method) -> ResetFlow:
    return flow if method in flow.verified else replace(flow, verified=(*flow.verified, method))


def record_replaced(flow: ResetFlow, method: Method, digest: str) -> ResetFlow:
    """A new code replaced the one whose digest this is: typed later, it is told "replaced", not counted."""
    kept = dict(flow.replaced)
    kept[method] = digest
    return replace(flow, replaced=tuple(sorted(kept.items())))


def replaced_digest(flow: ResetFlow, method: Method) -> str | None:
    return dict(flow.replaced).get(method)


def record_failure(flow: ResetFlow, method: Method) -> ResetFlow:
    """A wrong app code or wrong answers: counted per method; the 5th locks the flow (A9)."""
    failures, locks = count_failure(flow.failures, method)
    updated = replace(flow, failures=failures)
    return lock(updated) if locks else updated


def lock(flow: ResetFlow) -> ResetFlow:
    return flow if flow.state is not FlowState.ACTIVE else replace(flow, state=FlowState.LOCKED)


def ready_for_password(flow: ResetFlow) -> bool:
    """A13: the password step runs only when every required method is verified and nothing refuses the user."""
    resolution = flow.resolution
    if resolution is None or resolution.user_id is None or resolution.refusal is not None:
        return False
    # HELPDESK_VERIFIED: a flow a helpdesk link opened was proven by the helpdesk's verification and by the link
    # read in the user's registered mailbox (shared/domain/helpdesk_links.py).
    if flow.helpdesk is not None:
        return True
    return proven_count(flow.verified, resolution.passkey_counts_twice) >= resolution.methods_required


def remaining_methods(flow: ResetFlow, offered: frozenset[Method]) -> list[Method]:
    """What the user may prove next: offered possession methods not yet verified (questions are separate)."""
    return sorted(m for m in offered & POSSESSION_METHODS if m not in flow.verified)


def questions_possible(flow: ResetFlow) -> bool:
    resolution = flow.resolution
    return (resolution is not None and may_prove(flow, Method.SECURITY_QUESTIONS)
            and Method.SECURITY_QUESTIONS in resolution.registered)


def completed(flow: ResetFlow, now: datetime) -> ResetFlow:
    return replace(flow, state=FlowState.COMPLETED, completed_at=now)


PASSKEY_CHALLENGE_LIFETIME = timedelta(minutes=5)


def passkey_challenge_issued(flow: ResetFlow, challenge: str, now: datetime) -> ResetFlow:
    """A new challenge replaces an open one: only the newest can be answered."""
    return replace(flow, passkey_challenge=challenge, passkey_challenge_at=now)


def passkey_challenge_taken(flow: ResetFlow, now: datetime) -> tuple[str | None, ResetFlow]:
    """PASSKEY_CHALLENGE_ONCE: the open challenge, now used up; None when none is open or it expired (5 minutes,
    and never past the flow's own end)."""
    challenge, issued = flow.passkey_challenge, flow.passkey_challenge_at
    taken = replace(flow, passkey_challenge=None, passkey_challenge_at=None)
    if challenge is None or issued is None or now >= issued + PASSKEY_CHALLENGE_LIFETIME or is_expired(flow, now):
        return None, taken
    return challenge, taken


def choose_questions(registered_ids: list[str], count: int) -> tuple[str, ...]:
    """A random subset of the user's registered questions, fixed for the flow until answered."""
    pool = list(registered_ids)
    chosen: list[str] = []
    while pool and len(chosen) < count:
        chosen.append(pool.pop(secrets.randbelow(len(pool))))
    return tuple(chosen)
