"""The errors of on-premises Active Directory through the agent, and of the change page (which changes only passwords
kept there): each with its problem, as in shared/errors.py (the tree: docs/architecture.md "Errors and their
problems"). Kept apart so shared/errors.py stays under the modules' 400 lines.
"""

from __future__ import annotations

from datetime import datetime

from shared.errors import Problem, SsprError

# ---- on-premises AD through the agent: none took the job in time (cancelled, nothing changed); one took it and
# fell silent (unknown); AD cannot change this account here (disabled, outside the OUs, unknown SID) ----------------

class OnPremUnavailable(SsprError):
    problem = Problem(
        "urn:sspr:problem:onprem-unavailable",
        "Your organisation's on-premises directory did not answer in time, so nothing was changed. Try again in a few"
        " minutes, or contact your helpdesk.",
        503,
    )


class OnPremUnconfirmed(SsprError):
    problem = Problem(
        "urn:sspr:problem:onprem-unconfirmed",
        "Your organisation's on-premises directory did not confirm the change. Try to sign in with the new password;"
        " if that does not work, start again or contact your helpdesk.",
        503,
    )


class OnPremCannotChange(SsprError):
    problem = Problem(
        "urn:sspr:problem:onprem-cannot-change",
        "Your account cannot be changed here: it is disabled in your organisation's on-premises directory, or outside"
        " what this service manages. Contact your helpdesk.",
        409,
    )


# ---- the change page (anonymous): one answer, at one deadline, for every wrong try (C6, C7) --------------------------

class ChangeNotAccepted(SsprError):
    """The user name or current password is not right, or the account cannot change its password here: one answer
    for nobody, a cloud account, an account the agents do not serve and a wrong current password (C6, C7). Raised
    with the `detail` the page tells."""

    problem = Problem(
        "urn:sspr:problem:change-not-accepted",
        "The user name or the current password is not right, or this account cannot change its password here.",
        400,
    )


class ChangePaused(SsprError):
    """Too many wrong tries for the typed user name, or from this network: paused until `until`, the same for every
    user name (C7), and before AD's own lockout would lock the account (G5)."""

    problem = Problem("urn:sspr:problem:change-paused", "Too many wrong tries. Wait a while and try again.", 429)

    def __init__(self, until: datetime, detail: str) -> None:
        super().__init__(f"password changes paused until {until.isoformat()}",
                         pausedUntil=until.isoformat(timespec="seconds"), detail=detail)


class ChangeNotOffered(SsprError):
    """Writeback is off or no agent key is set: nobody can change a password here."""

    problem = Problem(
        "urn:sspr:problem:change-not-offered",
        "Your organisation has not turned on password changes here. Contact your helpdesk.",
        409,
    )
