"""The one Protocol every password target implements, the rule that picks one per user, and their registry.

The reset flow does not know which directory it writes to: at resolution `target_for` (shared/domain/
password_targets.py) names the user's target (or none), the flow keeps that name, and the password step asks
`PasswordTargets.get(name)` to set the password and end the sessions. A target answers in a few words only: the
change is done (`Applied`, naming who applied it), the directory's own password policy refused the password
(`PasswordRefused`: the user may choose another), it failed (`TargetFailed`: a reason for the audit and the error
to answer with), or it is under way and will be known later (`ChangePending`: the flow asks `outcome` again).

Entra through Graph (entra.py) answers at once. On-premises AD through the agent (onprem_ad.py) may pend: the
agent inside the network applies the job when it takes it, and the flow looks for the verdict later. A target
that can also unlock an account without a new password (AD's lockout) is an `AccountUnlocker` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.onprem import OnPremAccount
from shared.domain.password_targets import ENTRA, ONPREM_AD, DirectoryUser, target_for
from shared.errors import SsprError

__all__ = ["COMPLEXITY", "ENTRA", "HISTORY", "MINIMUM_AGE", "ONPREM_AD", "AccountUnlocker", "Applied", "Change",
           "ChangePending", "DirectoryUser", "PasswordRefused", "PasswordTarget", "PasswordTargets", "TargetFailed",
           "target_for"]


COMPLEXITY = "complexity"
HISTORY = "history"
MINIMUM_AGE = "minimum-age"


@dataclass(frozen=True)
class Change:
    """One try at changing a user's account: who, and the try's own id and expiry, by which a target that answers
    later (the on-premises agent) finds it again. A new try has a new id, so it never meets an old try's verdict."""

    user_id: str
    attempt_id: str
    expires_at: datetime
    on_premises: OnPremAccount | None = None


@dataclass(frozen=True)
class Applied:
    """The change is done; `by` names what applied it (the audit's "with the on-premises agent named")."""

    by: str


class PasswordRefused(Exception):
    """The target's directory refused the password by its own rules: `rule` is COMPLEXITY (length, classes,
    banned words), HISTORY (the current or a recent password again) or MINIMUM_AGE (changed too recently).
    Entra's reset API keeps no history, so only on-premises AD (through the agent) answers HISTORY."""

    def __init__(self, rule: str = COMPLEXITY) -> None:
        super().__init__(rule)
        self.rule = rule


class TargetFailed(Exception):
    """The target could not make the change: `reason` is what the audit records, `error` what the caller gets."""

    def __init__(self, reason: str, error: SsprError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class ChangePending(Exception):
    """The target took the change but has no verdict yet: the flow says "pending" and asks `outcome` later."""


class PasswordTarget(Protocol):
    """A directory a reset writes a new password to."""

    @property
    def name(self) -> str: ...

    async def set_password(self, change: Change, password: str) -> Applied:
        """Set the password (no change forced at the next sign-in): Applied, or PasswordRefused, TargetFailed,
        ChangePending."""
        ...

    async def outcome(self, change: Change) -> Applied:
        """The verdict on a change that was pending, with the same answers as the change itself."""
        ...

    async def revoke_sessions(self, user_id: str) -> None:
        """End every session and refresh token of the user, so only the new password opens the account (B4)."""
        ...


class AccountUnlocker(Protocol):
    """A directory that can unlock a locked-out account without a new password."""

    async def unlock(self, change: Change) -> Applied: ...

    async def outcome(self, change: Change) -> Applied: ...


class PasswordTargets:
    """The registry: every target this deployment can write to, found by name."""

    def __init__(self, targets: Iterable[PasswordTarget], unlockers: dict[str, AccountUnlocker] | None = None) -> None:
        self._targets = {t.name: t for t in targets}
        self._unlockers = dict(unlockers or {})

    def get(self, name: str) -> PasswordTarget:
        return self._targets[name]

    def unlocker(self, name: str) -> AccountUnlocker | None:
        return self._unlockers.get(name)
