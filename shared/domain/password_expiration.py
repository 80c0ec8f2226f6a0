"""Password expiration rules: per-domain validity and notification windows, and one user's "never expires" flag.

Graph stores "never" as 2147483647 days on a domain (contracts.md section 2), and a user's `passwordPolicies` as a
comma-separated list ("DisablePasswordExpiration, DisableStrongPassword"), so turning one flag on or off must keep
the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.errors import FieldError

NEVER = 2147483647
# Graph's domain resource: "If the property isn't set, a default value of 90 days is used" (and 14 days for the
# notification window), https://learn.microsoft.com/graph/api/resources/domain.
GRAPH_DEFAULT_VALIDITY_DAYS, GRAPH_DEFAULT_NOTIFICATION_DAYS = 90, 14
# Microsoft's guidance for the admin center's "days before passwords expire" and "days before a user is notified".
VALIDITY_MIN_DAYS, VALIDITY_MAX_DAYS = 14, 730
NOTIFICATION_MIN_DAYS, NOTIFICATION_MAX_DAYS = 1, 30
MANAGED = "Managed"

DISABLE_PASSWORD_EXPIRATION = "DisablePasswordExpiration"
NO_POLICIES = "None"
# Graph's own order when it combines values; unknown values keep their order after these.
KNOWN_POLICY_ORDER = (DISABLE_PASSWORD_EXPIRATION, "DisableStrongPassword")


@dataclass(frozen=True)
class DomainExpiration:
    """One domain's expiration policy; `validity_days` None means passwords never expire."""

    domain: str
    validity_days: int | None
    notification_days: int | None

    @classmethod
    def from_graph(cls, domain: str, validity: int | None, notification: int | None) -> DomainExpiration:
        """As Graph reports it: 2147483647 is never, a property not set is Graph's documented default."""
        validity = GRAPH_DEFAULT_VALIDITY_DAYS if validity is None else validity
        notification = GRAPH_DEFAULT_NOTIFICATION_DAYS if notification is None else notification
        return cls(domain, None if validity >= NEVER else validity, notification)

    @property
    def never(self) -> bool:
        return self.validity_days is None

    @property
    def graph_validity(self) -> int:
        return NEVER if self.validity_days is None else self.validity_days

    def as_dict(self) -> dict[str, object]:
        return {"validityDays": self.validity_days, "never": self.never, "notificationDays": self.notification_days}


@dataclass(frozen=True)
class VerifiedDomain:
    """A verified domain as the directory reports it, with its current policy."""

    name: str
    is_default: bool
    authentication_type: str
    expiration: DomainExpiration

    @property
    def managed(self) -> bool:
        """Only managed domains' passwords live in Entra; a federated domain's expire by its identity provider."""
        return self.authentication_type.lower() == MANAGED.lower()


def expiration_errors(index: int, change: DomainExpiration) -> list[FieldError]:
    """Every rule a requested domain policy breaks, each naming `domains[index].<field>`."""
    errors: list[FieldError] = []
    prefix = f"domains[{index}]"
    validity = change.validity_days
    if validity is not None and not VALIDITY_MIN_DAYS <= validity <= VALIDITY_MAX_DAYS:
        errors.append(FieldError.of(f"{prefix}.validityDays", "expiration.validityRange",
                                    f"must be {VALIDITY_MIN_DAYS}-{VALIDITY_MAX_DAYS} days, or null for never",
                                    low=VALIDITY_MIN_DAYS, high=VALIDITY_MAX_DAYS))
        validity = None  # compare the window only with a valid period: one mistake, one error
    notification = change.notification_days
    if notification is None or not NOTIFICATION_MIN_DAYS <= notification <= NOTIFICATION_MAX_DAYS:
        errors.append(FieldError.of(f"{prefix}.notificationDays", "expiration.notificationRange",
                                    f"must be {NOTIFICATION_MIN_DAYS}-{NOTIFICATION_MAX_DAYS} days",
                                    low=NOTIFICATION_MIN_DAYS, high=NOTIFICATION_MAX_DAYS))
    elif validity is not None and notification >= validity:
        errors.append(FieldError.of(f"{prefix}.notificationDays", "expiration.notificationBeforeExpiry",
                                    "must be less than validityDays, so users are warned before the password "
                                    "expires"))
    return errors


def change_errors(changes: Sequence[DomainExpiration], domains: Mapping[str, VerifiedDomain]) -> list[FieldError]:
    """Every violated rule of a whole request; `domains` is keyed by lower-case name."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, change in enumerate(changes):
        key = change.domain.lower()
        target = domains.get(key)
        if target is None:
            errors.append(FieldError.of(f"domains[{index}].id", "expiration.unknownDomain",
                                        f"'{change.domain}' is not a verified domain of this tenant",
                                        domain=change.domain))
        elif not target.managed:
            errors.append(FieldError.of(f"domains[{index}].id", "expiration.federatedDomain",
                                        f"'{change.domain}' is federated: its identity provider decides when its "
                                        "passwords expire", domain=change.domain))
        if key in seen:
            errors.append(FieldError.of(f"domains[{index}].id", "expiration.domainTwice",
                                        f"'{change.domain}' appears more than once", domain=change.domain))
        seen.add(key)
        errors.extend(expiration_errors(index, change))
    return errors


def policy_values(password_policies: str | None) -> list[str]:
    """The individual values of Graph's `passwordPolicies` ("None" and empty mean no values)."""
    values = [v.strip() for v in (password_policies or "").split(",")]
    return [v for v in values if v and v.lower() != NO_POLICIES.lower()]


def never_expires(password_policies: str | None) -> bool:
    return any(v.lower() == DISABLE_PASSWORD_EXPIRATION.lower() for v in policy_values(password_policies))


def with_never_expires(password_policies: str | None, enabled: bool) -> str:
    """`passwordPolicies` with DisablePasswordExpiration on or off and every other value kept."""
    others = [v for v in policy_values(password_policies) if v.lower() != DISABLE_PASSWORD_EXPIRATION.lower()]
    values = ([DISABLE_PASSWORD_EXPIRATION] if enabled else []) + others
    return _combine(values)


def _combine(values: Iterable[str]) -> str:
    unique: list[str] = []
    for value in values:
        if value.lower() not in {u.lower() for u in unique}:
            unique.append(value)
    known = [k for k in KNOWN_POLICY_ORDER if k.lower() in {u.lower() for u in unique}]
    unknown = [u for u in unique if u.lower() not in {k.lower() for k in KNOWN_POLICY_ORDER}]
    return ", ".join(known + unknown) or NO_POLICIES
