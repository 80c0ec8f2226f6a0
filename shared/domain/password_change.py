"""A synced user's own password change (the change page): what it counts, when it pauses, what a verdict means to the
person, and the change request's state. Pure rules, no I/O.

Who may try: anyone who knows a user name and its current password, like the logon screen. AD counts every wrong
current password of a change in the account's badPwdCount and locks the account at the domain's lockout threshold
(Samba as Windows: tests/onprem/test_change_with_agent.py). A page on the internet must not let a stranger lock
anyone's account (security.md G5), so the change is throttled like a sign-in, by what the caller types and where from,
the same for every user name (C7):
- NAME_FAILURES: wrong answers for one typed user name, from anywhere. The name's changes pause before AD's own
  lockout would lock the account (`name_limit`: one wrong answer fewer than the domain's threshold, over at least its
  observation window, as the agents report them). A stranger can pause the change page for a name, never lock the
  account: the user still signs in, and resets on the reset page.
- ADDRESS_FAILURES: wrong answers from one client address (an IPv6 client by its /64), whatever names it tries
  (password spraying).
- Budgets per address and for the whole service (`Allowance.PASSWORD_CHANGES`), right or wrong, with proof-of-work
  on every try.

A wrong answer is counted the same whether the name names nobody, a cloud user, a synced user this service does not
serve, a disabled or locked-out account or a synced user whose current password AD refused: they all get one answer
(`NOT_ACCEPTED`), counted the same way, at the same deadline (C6).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.onprem import LockoutPolicy, Meaning, meaning
from shared.domain.onprem_jobs import Verdict
from shared.domain.throttling import SlidingLimit

# Microsoft's own page where a signed-in work account changes its password (My Sign-ins > Password > Change
# password, https://learn.microsoft.com/entra/identity/authentication/concept-sspr-howitworks#change-password): where
# cloud accounts change theirs (this service changes only passwords kept in on-premises AD).
CLOUD_CHANGE_URL = "https://mysignins.microsoft.com/security-info/password/change"
NAME_FAILURES = SlidingLimit("changeFailuresName", 5, timedelta(minutes=15))  # where AD locks nobody out
ADDRESS_FAILURES = SlidingLimit("changeFailuresAddress", 30, timedelta(hours=1))
# The throttle keeps a name's events this long at most (shared/domain/throttling.py `forgettable`): an AD observation
# window longer than this is counted over this hour only (docs/security.md G5 says so).
LONGEST_WINDOW = timedelta(hours=1)


def name_limit(lockout: LockoutPolicy | None) -> SlidingLimit:
    """The wrong answers a typed name may give: fewer than AD's lockout threshold by one (a wrong password typed at a
    workstation meanwhile still leaves the account unlocked), within at least AD's observation window."""
    if lockout is None or lockout.threshold <= 0:
        return NAME_FAILURES
    allowed = min(NAME_FAILURES.max_events + 1, max(1, lockout.threshold - 1))
    window = min(LONGEST_WINDOW, max(NAME_FAILURES.window, lockout.window))
    return SlidingLimit(NAME_FAILURES.name, allowed - 1, window)
# A change request's row serves its page and its results message: longer than any job may wait (SSPR_ONPREM_JOB_
# SECONDS, 10 minutes at most) and its grace, then the purge removes it.
REQUEST_RETENTION = timedelta(days=1)
SETTLE_LEASE = timedelta(minutes=1)  # how long one request holds the settling of a verdict (revoke, notice, audit)


def _normalised(username: str) -> str:
    return username.strip().lower()


def name_key(username: str) -> str:
    """The throttle key of one typed user name (normalised): a hash, so no typed value reaches a table key (D6)."""
    return "change-name-" + hashlib.sha256(_normalised(username).encode()).hexdigest()[:40]


def address_key(address: str | None) -> str:
    return "change-addr-" + hashlib.sha256((address or "unknown").encode()).hexdigest()[:40]


class ChangeState(StrEnum):
    """Where a change request stands; every state but PENDING is final."""

    PENDING = "pending"  # the job went to the agent, AD's verdict is not in yet
    DONE = "done"  # AD took the new password
    NOT_ACCEPTED = "not-accepted"  # the user name or current password is not right (or not served here): one answer
    REFUSED = "refused"  # AD's own password policy refused the new password (only after the current one was right)
    NOTHING_CHANGED = "nothing-changed"  # no agent took it in time, or it failed before AD changed anything
    UNCONFIRMED = "unconfirmed"  # an agent took it and fell silent: whether AD changed it is not known


# What an agent's verdict on a change means to the person. A disabled, locked-out or unknown account, or one outside
# the OUs, is told like a wrong current password: those are decided before AD checks the password, so telling them
# apart would tell a stranger which accounts exist.
_BY_MEANING = {Meaning.DONE: ChangeState.DONE, Meaning.REFUSED: ChangeState.REFUSED,
               Meaning.NOT_HERE: ChangeState.NOT_ACCEPTED, Meaning.NOTHING_CHANGED: ChangeState.NOTHING_CHANGED}


def state_of(verdict: Verdict) -> ChangeState:
    if verdict is Verdict.REFUSED_CURRENT_PASSWORD:
        return ChangeState.NOT_ACCEPTED
    return _BY_MEANING[meaning(verdict)]


def new_change_secret() -> str:
    """The secret a pending change's page asks with (256 bits); kept only as an HMAC."""
    return secrets.token_urlsafe(32)


def secret_digest(key: bytes, change_id: str, secret: str) -> str:
    """The change's secret as stored: an HMAC bound to its change (as a reset flow's, A2)."""
    return hmac.new(key, f"change|{change_id}|{secret}".encode(), hashlib.sha256).hexdigest()


def secret_matches(request: ChangeRequest, key: bytes, secret: str) -> bool:
    return hmac.compare_digest(secret_digest(key, request.change_id, secret), request.secret_digest)


@dataclass(frozen=True)
class ChangeRequest:
    """One try at a change that reached the agent: its row, until its verdict is settled (and a day after)."""

    change_id: str
    secret_digest: str
    user_id: str
    username: str  # as typed, normalised (the audit's name of the person)
    throttle_keys: tuple[str, str]  # name_key, address_key: what a wrong answer counts against
    created_at: datetime
    expires_at: datetime  # the job's expiry: after it, the job never applies
    client_ip: str | None = None
    state: ChangeState = ChangeState.PENDING
    rule: str | None = None  # REFUSED: AD's rule (complexity, history, minimum-age)
    settling_at: datetime | None = None
    sessions_revoked: bool | None = None
    applied_by: str | None = None

    @property
    def settled(self) -> bool:
        return self.state is not ChangeState.PENDING


def settling(request: ChangeRequest, now: datetime) -> ChangeRequest | None:
    """The request taken for settling now, or None when it is settled or another request settles it (a settler
    that died lets the next take over after SETTLE_LEASE)."""
    if request.settled or (request.settling_at is not None and now < request.settling_at + SETTLE_LEASE):
        return None
    return replace(request, settling_at=now)


def settled(request: ChangeRequest, state: ChangeState, rule: str | None = None,
            sessions_revoked: bool | None = None, applied_by: str | None = None) -> ChangeRequest:
    return replace(request, state=state, rule=rule, sessions_revoked=sessions_revoked, applied_by=applied_by,
                   settling_at=None)
