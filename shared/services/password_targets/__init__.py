"""Where a new password goes, as plug-ins: the Protocol and the rule (base.py), one file per directory."""

from shared.services.password_targets.base import (
    ENTRA,
    PasswordRefused,
    PasswordTarget,
    PasswordTargets,
    TargetFailed,
    target_for,
)

__all__ = ["ENTRA", "PasswordRefused", "PasswordTarget", "PasswordTargets", "TargetFailed", "target_for"]
