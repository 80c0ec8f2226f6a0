"""The errors of recovery into passwordless (issue 17): passkeys and the Temporary Access Pass, beside the tree of
shared/errors.py (kept apart for its length); each carries its problem like every SsprError, and
docs/architecture.md draws them in the tree."""

from __future__ import annotations

from shared.errors import Problem, SsprError


class PasskeyNotAccepted(SsprError):
    """An unknown, removed, cloned or foreign passkey, or a used challenge: one answer for all (as C3)."""

    problem = Problem("urn:sspr:problem:passkey-not-accepted",
                      "That passkey was not accepted. Use another passkey, or another method.", 400)


class PasskeysFull(SsprError):
    problem = Problem("urn:sspr:problem:passkeys-full",
                      "You already have the most passkeys you can keep. Remove one to add another.", 409)


class AccessPassUnavailable(SsprError):
    """The policy offers no Temporary Access Pass at this step, or the tenant's TAP policy gives this user none:
    raised with its `reason` and `detail`."""

    problem = Problem("urn:sspr:problem:access-pass-unavailable",
                      "A Temporary Access Pass cannot be made for your account here.", 409)
