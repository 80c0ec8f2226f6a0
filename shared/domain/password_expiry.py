"""Who expires when: one user's password expiry from the directory's facts, and which reminder stage is due.

Pure rules, no I/O. Sources:
- Cloud users: the user's `lastPasswordChangeDateTime` plus the validity period of the domain of their UPN
  (`passwordValidityPeriodInDays` on Graph's domain; "if the property isn't set, a default value of 90 days is
  used", https://learn.microsoft.com/graph/api/resources/domain); none when `passwordPolicies` holds
  DisablePasswordExpiration or the domain says 2147483647 (never). A federated domain's passwords expire by its
  identity provider, a guest's in their home tenant: both are `notManaged`, left out.
- Users synchronised from Active Directory: AD's own expiry (`msDS-UserPasswordExpiryTimeComputed`, read by the
  on-premises agent's periodic report; "must change at next logon" counts as expired now) and, when the tenant has CloudPasswordPolicyForPasswordSyncedUsersEnabled on (the policy's
  `expiryReminders.cloudPolicyForSyncedUsers`), the cloud rule above too: Entra Connect then stops setting
  DisablePasswordExpiration on them (https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-password-hash-synchronization).
  The earlier of the two wins. With neither known the user is `unknown`. A password AD reports is known by AD's
  `pwdLastSet` (its version), so a change in AD starts the reminders over before Entra hears of it.
- Disabled accounts are left out whatever their dates say.

Time: every instant is UTC-aware; Graph's DateTimeOffset may come with `Z`, an offset or fractions, and a naive
value is read as UTC. A validity period is whole days of 24 hours from the change (a leap day is a day like any
other). `days_left` counts a started day as a day (6 days 2 hours left: "7 days").

Stages: a reminder stage of `s` days is due once the expiry is at most `s` days away; of several due stages only
the smallest is sent (a user first seen 2 days before expiry gets the "3 days" reminder, not three mails). Each
stage goes at most once per password (a password is known by its `lastPasswordChangeDateTime`, so a new password
starts over), and stages only go down: once a stage was sent, no larger one is sent for the same password, so a
lengthened validity never repeats an earlier warning and a shortened one sends only the stage it lands in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.domain.password_expiration import VerifiedDomain, never_expires

DAY = timedelta(days=1)


class ExpiryState(StrEnum):
    """One user's standing (exactly one per user)."""

    EXPIRING = "expiring"  # expires in the future
    EXPIRED = "expired"
    NEVER = "never"  # DisablePasswordExpiration, or a domain (or AD) whose passwords never expire
    DISABLED = "disabled"  # the account is disabled: left out
    NOT_MANAGED = "notManaged"  # a guest, or a federated domain: another system decides
    UNKNOWN = "unknown"  # no date to count from, a domain the tenant does not list, or a synced user without facts


class Source(StrEnum):
    CLOUD = "cloud"
    ON_PREMISES = "onPremises"


@dataclass(frozen=True)
class PasswordFacts:
    """What the directory says of one user's password (Graph `/users` with $select)."""

    user_id: str
    user_principal_name: str
    account_enabled: bool
    user_type: str | None
    synced: bool
    password_policies: str | None
    last_changed: datetime | None  # lastPasswordChangeDateTime, UTC
    on_premises_sid: str | None = None  # onPremisesSecurityIdentifier: a synced user's AD account


@dataclass(frozen=True)
class OnPremisesExpiry:
    """AD's expiry of a synced user's password, as the agent read it: `expires_at` None means it never expires,
    unless `must_change` ("must change password at next logon": expired now). `password_last_set` is AD's pwdLastSet,
    the password's version."""

    expires_at: datetime | None
    must_change: bool = False
    password_last_set: datetime | None = None


@dataclass(frozen=True)
class ExpiryRules:
    """What a run judges every user by, read once when the run starts (so a policy changed mid-run changes the
    next run, never half of this one): the verified domains by lower-case name, and the synced-users switch."""

    domains: Mapping[str, VerifiedDomain]
    cloud_policy_for_synced_users: bool

    @classmethod
    def of(cls, domains: Sequence[VerifiedDomain], cloud_policy_for_synced_users: bool) -> ExpiryRules:
        return cls({d.name.lower(): d for d in domains}, cloud_policy_for_synced_users)


@dataclass(frozen=True)
class PasswordExpiry:
    """One user's judgement: its state, when the password expires (EXPIRING and EXPIRED only) and by which rule."""

    user_id: str
    state: ExpiryState
    expires_at: datetime | None = None
    source: Source | None = None
    password_version: str | None = None  # the password's change time, ISO: reminders are counted per version
    version_source: Source = Source.CLOUD  # whose clock the version is: Entra's lastPasswordChangeDateTime, AD's pwdLastSet

    def days_left(self, now: datetime) -> int | None:
        """Whole days until expiry, a started day counting as one; 0 or less once expired."""
        if self.expires_at is None:
            return None
        return math.ceil((self.expires_at - now) / DAY)


def parse_instant(value: object) -> datetime | None:
    """A Graph DateTimeOffset (`2025-11-01T08:00:00Z`, with offset or fractions) as a UTC datetime; None if absent
    or unreadable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def version_of(changed: datetime) -> str:
    return changed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def domain_of(user_principal_name: str) -> str:
    return user_principal_name.rpartition("@")[2].lower()


def _cloud_expiry(user: PasswordFacts, rules: ExpiryRules) -> tuple[ExpiryState | None, datetime | None]:
    """(NEVER, None), (UNKNOWN/NOT_MANAGED, None) or (None, the instant) by Entra's rule for this user."""
    if never_expires(user.password_policies):
        return ExpiryState.NEVER, None
    domain = rules.domains.get(domain_of(user.user_principal_name))
    if domain is None:
        return ExpiryState.UNKNOWN, None
    if not domain.managed:
        return ExpiryState.NOT_MANAGED, None
    if domain.expiration.validity_days is None:
        return ExpiryState.NEVER, None
    if user.last_changed is None:
        return ExpiryState.UNKNOWN, None
    return None, user.last_changed + domain.expiration.validity_days * DAY


def password_expiry(user: PasswordFacts, rules: ExpiryRules, now: datetime,
                    on_premises: OnPremisesExpiry | None = None) -> PasswordExpiry:
    """The user's state and expiry as of `now` (module docstring)."""
    version = version_of(user.last_changed) if user.last_changed else None
    by = Source.CLOUD
    if user.synced and on_premises is not None:
        version = version_of(on_premises.password_last_set) if on_premises.password_last_set else None
        by = Source.ON_PREMISES
    if not user.account_enabled:
        return PasswordExpiry(user.user_id, ExpiryState.DISABLED)
    if user.user_type == "Guest":
        return PasswordExpiry(user.user_id, ExpiryState.NOT_MANAGED)
    candidates: list[tuple[datetime, Source]] = []
    states: list[ExpiryState] = []
    if user.synced:
        if on_premises is not None:
            if on_premises.must_change:
                return PasswordExpiry(user.user_id, ExpiryState.EXPIRED, None, Source.ON_PREMISES, version, by)
            if on_premises.expires_at is None:
                states.append(ExpiryState.NEVER)
            else:
                candidates.append((on_premises.expires_at, Source.ON_PREMISES))
        if rules.cloud_policy_for_synced_users:
            state, at = _cloud_expiry(user, rules)
            if at is not None:
                candidates.append((at, Source.CLOUD))
            elif state is not None:
                states.append(state)
    else:
        state, at = _cloud_expiry(user, rules)
        if at is None:
            return PasswordExpiry(user.user_id, state or ExpiryState.UNKNOWN)
        candidates.append((at, Source.CLOUD))
    if not candidates:
        return PasswordExpiry(user.user_id, ExpiryState.NEVER if ExpiryState.NEVER in states else ExpiryState.UNKNOWN)
    at, source = min(candidates)
    state = ExpiryState.EXPIRED if at <= now else ExpiryState.EXPIRING
    return PasswordExpiry(user.user_id, state, at, source, version, by)


# ---- reminder stages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagesSent:
    """The stages already sent for one password of a user (its `password_version`)."""

    password_version: str
    stages: tuple[int, ...]


def due_stage(expiry: PasswordExpiry, stages: Sequence[int], now: datetime) -> int | None:
    """The smallest stage whose window the expiry is in, or None (not expiring, or further than every stage)."""
    if expiry.state is not ExpiryState.EXPIRING or expiry.expires_at is None:
        return None
    left = expiry.expires_at - now
    due = [s for s in stages if left <= s * DAY]
    return min(due) if due else None


def reminder_due(expiry: PasswordExpiry, stages: Sequence[int], sent: StagesSent | None, now: datetime) -> int | None:
    """The stage to remind the user of now, or None: due, and neither it nor a smaller stage was sent for this
    password (stages go only down, each at most once per password)."""
    stage = due_stage(expiry, stages, now)
    if stage is None or expiry.password_version is None:
        return None
    if sent is not None and sent.password_version == expiry.password_version and sent.stages \
            and stage >= min(sent.stages):
        return None
    return stage


def after_sending(sent: StagesSent | None, password_version: str, stage: int) -> StagesSent:
    """What is stored once `stage` was sent for `password_version` (a new password starts a new list)."""
    if sent is None or sent.password_version != password_version:
        return StagesSent(password_version, (stage,))
    return StagesSent(password_version, (*sent.stages, stage))
