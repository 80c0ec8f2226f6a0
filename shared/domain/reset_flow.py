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

from shared.domain.codes import MAX_FAILED_ATTEMPTS
from shared.domain.policy import Method, Policy, effective_requirements

FLOW_LIFETIME = timedelta(minutes=15)  # A5: a flow expires 15 minutes after it starts, whatever its codes say
FLOW_SECRET_BYTES = 32
# Methods that prove possession of something: the first method of every flow is one of these (A11).
POSSESSION_METHODS = frozenset({Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE, Method.AUTHENTICATOR_APP})
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


@dataclass(frozen=True)
class ResetFlow:
    flow_id: str
    secret_digest: str
    username: str
    created_at: datetime
    client_ip: str | None = None
    resolution: Resolution | None = None
    verified: tuple[Method, ...] = ()
    failures: tuple[tuple[Method, int], ...] = ()  # wrong answers per method that has no code challenge
    question_ids: tuple[str, ...] = ()
    replaced: tuple[tuple[Method, str], ...] = ()  # per method, the digest of the code its last new code replaced
    state: FlowState = FlowState.ACTIVE
    completed_at: datetime | None = None
    password_claimed_at: datetime | None = None  # the password step runs for one request at a time (a lease)
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


def refusal_for(*, enabled: bool, account_enabled: bool, synced: bool, has_premium: bool, paid_tenant: bool,
                usable_methods: int, methods_required: int) -> Refusal | None:
    """WHO_CANNOT_RESET_HERE, in the order a helpdesk would explain it: the account first, then the tenant,
    then the policy, then the user's own registration."""
    if not account_enabled:
        return Refusal.ACCOUNT_DISABLED
    if synced:
        # PATCH passwordProfile cannot change an on-premises password; writeback needs P1/P2 and Entra's own SSPR.
        return Refusal.SYNCED_NOT_SUPPORTED if has_premium else Refusal.SYNCED_NEEDS_PREMIUM
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
    counts = dict(flow.failures)
    counts[method] = counts.get(method, 0) + 1
    updated = replace(flow, failures=tuple(sorted(counts.items())))
    return lock(updated) if counts[method] >= MAX_FAILED_ATTEMPTS else updated


def lock(flow: ResetFlow) -> ResetFlow:
    return flow if flow.state is not FlowState.ACTIVE else replace(flow, state=FlowState.LOCKED)


def ready_for_password(flow: ResetFlow) -> bool:
    """A13: the password step runs only when every required method is verified and nothing refuses the user."""
    resolution = flow.resolution
    if resolution is None or resolution.user_id is None or resolution.refusal is not None:
        return False
    return len(set(flow.verified)) >= resolution.methods_required


def remaining_methods(flow: ResetFlow, offered: frozenset[Method]) -> list[Method]:
    """What the user may prove next: offered possession methods not yet verified (questions are separate)."""
    return sorted(m for m in offered & POSSESSION_METHODS if m not in flow.verified)


def questions_possible(flow: ResetFlow) -> bool:
    resolution = flow.resolution
    return (resolution is not None and may_prove(flow, Method.SECURITY_QUESTIONS)
            and Method.SECURITY_QUESTIONS in resolution.registered)


def completed(flow: ResetFlow, now: datetime) -> ResetFlow:
    return replace(flow, state=FlowState.COMPLETED, completed_at=now)


def choose_questions(registered_ids: list[str], count: int) -> tuple[str, ...]:
    """A random subset of the user's registered questions, fixed for the flow until answered."""
    pool = list(registered_ids)
    chosen: list[str] = []
    while pool and len(chosen) < count:
        chosen.append(pool.pop(secrets.randbelow(len(pool))))
    return tuple(chosen)
