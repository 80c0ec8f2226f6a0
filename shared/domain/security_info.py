"""A user's registered security info (the methods they can reset with) and what it means under the policy.

The summary is what the sign-in hook reads (one point read): which verified methods the user has, when they last
confirmed them, and when they were first asked to register (the start of their skip allowance).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.domain.passkeys import counts_as_two, proven_count
from shared.domain.policy import Method, Policy, effective_requirements

# The methods a user can register here (push notifications are not offered by this service).
REGISTERABLE_METHODS = frozenset(
    {Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE, Method.AUTHENTICATOR_APP, Method.SECURITY_QUESTIONS,
     Method.PASSKEY}
)


@dataclass(frozen=True)
class RegisteredMethod:
    """One verified method.

    `contact` is the normalised email address or E.164 phone number (None for the app and questions);
    `secret` is method-specific protected material: the TOTP seed encrypted with the configured key, or the
    security questions' ids with Argon2id hashes of the answers. Never a plain secret.
    """

    kind: Method
    registered_at: datetime
    contact: str | None = None
    secret: str | None = None
    last_used_step: int | None = None  # TOTP: the last accepted time step (replay protection, A10)


@dataclass(frozen=True)
class SecurityInfoSummary:
    """The one row the sign-in hook reads for a user."""

    user_id: str
    methods: frozenset[Method] = frozenset()
    last_confirmed_at: datetime | None = None
    first_prompted_at: datetime | None = None
    is_admin: bool = False
    entra_methods: frozenset[Method] = frozenset()  # read from Entra (entra_methods.py); count by policy only
    etag: str | None = field(default=None, compare=False)

    def with_method(self, kind: Method, now: datetime) -> SecurityInfoSummary:
        return replace(self, methods=self.methods | {kind}, last_confirmed_at=now)

    def without_method(self, kind: Method) -> SecurityInfoSummary:
        return replace(self, methods=self.methods - {kind})

    def confirmed(self, now: datetime) -> SecurityInfoSummary:
        return replace(self, last_confirmed_at=now)


@dataclass(frozen=True)
class RegistrationStatus:
    """What the registration page shows and the sign-in hook decides on."""

    usable_methods: frozenset[Method]
    required_count: int
    registered: bool
    reconfirm_due_at: datetime | None
    reconfirm_due: bool


def counted_methods(summary: SecurityInfoSummary, policy: Policy) -> frozenset[Method]:
    """The user's methods: those registered here, and those registered in Entra when the policy counts them."""
    return summary.methods | (summary.entra_methods if policy.entra_methods.count else frozenset())


def usable_methods(summary: SecurityInfoSummary, policy: Policy) -> frozenset[Method]:
    """Registered methods the policy allows for this user (questions never count for administrators)."""
    requirements = effective_requirements(policy, summary.is_admin)
    return frozenset(m for m in counted_methods(summary, policy) if m in requirements.methods_allowed)


def registration_status(summary: SecurityInfoSummary, policy: Policy, now: datetime) -> RegistrationStatus:
    """REGISTERED_WHEN_REQUIRED_COUNT_MET and RECONFIRM_EVERY_N_DAYS (0 = never)."""
    requirements = effective_requirements(policy, summary.is_admin)
    usable = usable_methods(summary, policy)
    registered = proven_count(usable, counts_as_two(policy, summary.is_admin)) >= requirements.methods_required
    due_at: datetime | None = None
    if policy.reconfirm_days > 0 and summary.last_confirmed_at is not None:
        due_at = summary.last_confirmed_at + timedelta(days=policy.reconfirm_days)
    return RegistrationStatus(
        usable_methods=usable,
        required_count=requirements.methods_required,
        registered=registered,
        reconfirm_due_at=due_at,
        reconfirm_due=due_at is not None and now >= due_at,
    )
