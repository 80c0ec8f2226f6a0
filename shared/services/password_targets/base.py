"""The one Protocol every password target implements, the rule that picks one per user, and their registry.

The reset flow does not know which directory it writes to: at resolution `target_for` (shared/domain/password_targets.py) names the user's target
(or none), the flow keeps that name, and the password step asks `PasswordTargets.get(name)` to set the password
and end the sessions. A target tells the flow only two things: the directory's own password policy refused the
password (`PasswordRefused`: the user may choose another), or it failed (`TargetFailed`: a reason for the audit
and the error to answer with).

Today there is one target, Entra through Graph (entra.py). Users synchronised from an on-premises Active
Directory get none, so the flow refuses them (`synced-not-supported` / `synced-needs-premium`); the AD target
through the on-premises agent plugs in here by a second file and one line in that rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from shared.domain.password_targets import ENTRA, DirectoryUser, target_for
from shared.errors import SsprError

__all__ = ["COMPLEXITY", "ENTRA", "HISTORY", "DirectoryUser", "PasswordRefused", "PasswordTarget", "PasswordTargets", "TargetFailed",
           "target_for"]


COMPLEXITY = "complexity"
HISTORY = "history"


class PasswordRefused(Exception):
    """The target's directory refused the password by its own rules: `rule` is COMPLEXITY (length, classes,
    banned words) or HISTORY (the current or a recent password again). Entra's reset API keeps no history, so
    only a directory that does (on-premises AD through the agent) answers HISTORY."""

    def __init__(self, rule: str = COMPLEXITY) -> None:
        super().__init__(rule)
        self.rule = rule


class TargetFailed(Exception):
    """The target could not set the password: `reason` is what the audit records, `error` what the caller gets."""

    def __init__(self, reason: str, error: SsprError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class PasswordTarget(Protocol):
    """A directory a reset writes a new password to."""

    @property
    def name(self) -> str: ...

    async def set_password(self, user_id: str, password: str) -> None:
        """Set the password (no change forced at the next sign-in); PasswordRefused or TargetFailed."""
        ...

    async def revoke_sessions(self, user_id: str) -> None:
        """End every session and refresh token of the user, so only the new password opens the account (B4)."""
        ...


class PasswordTargets:
    """The registry: every target this deployment can write to, found by name."""

    def __init__(self, targets: Iterable[PasswordTarget]) -> None:
        self._targets = {t.name: t for t in targets}

    def get(self, name: str) -> PasswordTarget:
        return self._targets[name]
