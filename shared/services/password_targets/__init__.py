"""Where a new password goes, as plug-ins: the Protocol and the rule (base.py), one file per directory."""

from shared.services.password_targets.base import (
    COMPLEXITY,
    ENTRA,
    HISTORY,
    MINIMUM_AGE,
    ONPREM_AD,
    AccountUnlocker,
    Applied,
    Change,
    ChangePending,
    PasswordRefused,
    PasswordTarget,
    PasswordTargets,
    TargetFailed,
    target_for,
)

__all__ = ["COMPLEXITY", "ENTRA", "HISTORY", "MINIMUM_AGE", "ONPREM_AD", "AccountUnlocker", "Applied", "Change",
           "ChangePending", "PasswordRefused", "PasswordTarget", "PasswordTargets", "TargetFailed", "target_for"]
