"""Every error the service raises on purpose, and the one place that maps each to an HTTP problem.

The tree of classes, each with its status and problem type, is drawn in docs/architecture.md ("Errors and
their problems"). The exception message is for logs and never carries secrets; a response carries only the
problem's `type`, `title` (in the caller's language: web/i18n/problems.<lang>.json), `status` and, where the
class says so, structured extensions such as `errors` (security.md C4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.field_error import FieldError as FieldError  # the one field's error InvalidRequest lists


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem: a stable `type` and a title a person can read."""

    type: str
    title: str
    status: int


class SsprError(Exception):
    """`message` is for logs; `extensions` are the extra members of the problem body (by their JSON names), so
    only data safe to show the caller. An error that computes either says how in its own `__init__`."""

    problem = Problem("urn:sspr:problem:internal", "Something went wrong on our side. Try again later.", 500)

    def __init__(self, message: str = "", **extensions: Any) -> None:
        super().__init__(message)
        self.extensions = extensions

    def problem_extensions(self) -> dict[str, Any]:
        """Extra members of the problem body; only data safe to show the caller."""
        return dict(self.extensions)


class InvalidRequest(SsprError):
    problem = Problem("urn:sspr:problem:invalid-request", "The request is not valid.", 400)

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def problem_extensions(self) -> dict[str, Any]:
        return {"errors": [e.as_dict() for e in self.errors]}


class Unauthenticated(SsprError):
    problem = Problem("urn:sspr:problem:unauthenticated", "Sign in again: the access token is missing or not valid.", 401)


class Forbidden(SsprError):
    problem = Problem("urn:sspr:problem:forbidden", "You do not have the role this needs.", 403)


class NotFound(SsprError):
    problem = Problem("urn:sspr:problem:not-found", "Nothing was found there.", 404)


class Conflict(SsprError):
    problem = Problem("urn:sspr:problem:conflict", "This conflicts with work already in progress.", 409)


class PreconditionFailed(SsprError):
    problem = Problem(
        "urn:sspr:problem:precondition-failed",
        "Someone changed this since you read it. Reload and apply your change again.",
        412,
    )


class PayloadTooLarge(SsprError):
    problem = Problem("urn:sspr:problem:payload-too-large", "The request body is too large.", 413)


class PreconditionRequired(SsprError):
    problem = Problem(
        "urn:sspr:problem:precondition-required", "Send If-Match with the ETag you read, so no change is lost.", 428
    )


# ---- registration, codes and throttling ----------------------------------------------------------------------

class CodeNotAccepted(SsprError):
    problem = Problem(
        "urn:sspr:problem:code-not-accepted",
        "That code is not valid. Check it, or ask for a new code.",
        400,
    )


class CodeReplaced(SsprError):
    """The code a newer one replaced (the user asked for a new code): no failure, nothing counted."""

    problem = Problem(
        "urn:sspr:problem:code-replaced",
        "That code was replaced by the new one you asked for. Type the code from the newest message.",
        400,
    )


class ChallengeLocked(SsprError):
    problem = Problem(
        "urn:sspr:problem:code-locked",
        "Too many wrong codes. Start again to get a new code.",
        403,  # the same rule as FlowLocked (A9), so the same status: a lock is refused, not "try later"
    )


class ChallengeClosed(SsprError):
    problem = Problem(
        "urn:sspr:problem:challenge-closed",
        "This verification is finished. Start again to get a new code.",
        409,
    )


class MethodNotAllowed(SsprError):
    problem = Problem(
        "urn:sspr:problem:method-not-allowed",
        "Your organisation does not allow this method for password reset.",
        403,
    )


class MethodUnavailable(SsprError):
    problem = Problem(
        "urn:sspr:problem:method-unavailable",
        "This service cannot send codes this way right now. Choose another method.",
        409,
    )


class RemovalNeedsConfirmation(SsprError):
    problem = Problem(
        "urn:sspr:problem:removal-needs-confirmation",
        "If you remove this method, you will not be able to reset your password until you register another"
        " method. Send confirm=true to remove it anyway.",
        409,
    )

    def __init__(self, required: int, remaining: int) -> None:
        super().__init__(f"removal leaves {remaining} of {required} required methods", requiredCount=required,
                         remainingCount=remaining)


class NothingToConfirm(SsprError):
    problem = Problem(
        "urn:sspr:problem:nothing-to-confirm", "You have no security info to confirm yet. Register a method first.", 409
    )


class BlockedFromSspr(SsprError):
    """The user is blocked from self-service reset (G1). The reset tells it, with until when and the helpdesk,
    once the caller has shown what only the user holds (G5); `until` and `helpdesk` are then set."""

    problem = Problem(
        "urn:sspr:problem:blocked",
        "Self-service password reset is blocked for your account for now. Contact your helpdesk.",
        429,
    )

    def __init__(self, message: str, until: datetime | None = None, detail: str | None = None,
                 helpdesk: dict[str, str | None] | None = None) -> None:
        told = {} if until is None else {"blockedUntil": until.isoformat(timespec="seconds"), "detail": detail,
                                         "helpdesk": helpdesk or {"url": None, "email": None}}
        super().__init__(message, **told)


class AppCodesPaused(SsprError):
    """Too many wrong authenticator app codes for one user name, whoever it names (nobody too): app codes for it
    are refused until `until`; other methods keep working."""

    problem = Problem(
        "urn:sspr:problem:app-codes-paused",
        "Too many wrong app codes for this user name. Use another method, or try again later.",
        429,
    )

    def __init__(self, until: datetime, detail: str, helpdesk: dict[str, str | None]) -> None:
        super().__init__(f"app codes paused until {until.isoformat()}", pausedUntil=until.isoformat(timespec="seconds"),
                         detail=detail, helpdesk=helpdesk)


class ChannelPaused(SsprError):
    problem = Problem(
        "urn:sspr:problem:channel-paused",
        "Too many codes have been sent this way recently. Try another method, or try again in an hour.",
        429,
    )

    def __init__(self, channel: str) -> None:
        super().__init__(f"send budget of {channel} used up", channel=str(channel))


class GraphError(SsprError):
    """Microsoft Graph refused a request with an error code we do not handle as a domain outcome."""

    problem = Problem("urn:sspr:problem:directory-error", "The directory refused the request.", 502)

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"Graph answered {status} {code}")
        self.status = status
        self.code = code


class DependencyUnavailable(SsprError):
    problem = Problem(
        "urn:sspr:problem:dependency-unavailable",
        "The service cannot reach what it depends on right now. Try again in a few minutes.",
        503,
    )


class StorageUnavailable(DependencyUnavailable):
    """Azure Storage did not answer, or answered with a server error."""


class GraphUnavailable(DependencyUnavailable):
    """Microsoft Graph did not answer in time, or kept answering 429/5xx."""


class IdentityUnavailable(DependencyUnavailable):
    """The tenant's OpenID configuration or JWKS could not be fetched, so no token can be checked."""


class WriteContention(StorageUnavailable):
    """Writers kept overtaking each other on one row past the retry bound (shared/adapters/etag_retry.py)."""


# ---- registration: kinds of the problems above -----------------------------------------------------------------

class QuestionsNotForAdministrators(MethodNotAllowed):
    problem = Problem(
        "urn:sspr:problem:questions-not-for-administrators",
        "Security questions are not available to administrators. Register another method.",
        403,
    )


class PhoneUnavailable(MethodUnavailable):
    """The service has no way to send this channel (provider none, or voice through ACS): the user is told to
    choose another method, as for any unavailable method."""


class SecretUnreadable(SsprError):
    """A sealed value that does not open: wrong key, wrong context, or altered. Never says which."""


class StoredPolicyUnreadable(SsprError):
    """The stored policy no longer passes the rules (e.g. after a rule was tightened): an operator must fix it."""


# ---- the reset flow (anonymous: every answer is as useful to the owner as it is useless to an attacker) --------

class ProofOfWorkFailed(SsprError):
    problem = Problem(
        "urn:sspr:problem:proof-of-work-failed",
        "The browser check did not succeed. Reload the page and try again.",
        403,
    )


class TooManyRequests(SsprError):
    problem = Problem(
        "urn:sspr:problem:too-many-requests", "Too many attempts from your network. Wait a while and try again.", 429
    )


class FlowNotFound(SsprError):
    """Unknown, expired (A5), finished or wrong-secret flows look the same."""

    problem = Problem(
        "urn:sspr:problem:flow-not-found", "This password reset has expired or does not exist. Start again.", 404
    )


class FlowLocked(SsprError):
    problem = Problem(
        "urn:sspr:problem:flow-locked", "Too many wrong answers. Start again to reset your password.", 403
    )


class MethodAlreadyVerified(SsprError):
    problem = Problem(
        "urn:sspr:problem:method-already-verified", "You already verified this method. Choose another one.", 409
    )


class QuestionsNotAvailable(SsprError):
    problem = Problem(
        "urn:sspr:problem:questions-not-available",
        "Security questions cannot be used here. Choose another method.",
        409,
    )


class AnswersNotAccepted(SsprError):
    problem = Problem(
        "urn:sspr:problem:answers-not-accepted", "One or more answers are not right. Check them and try again.", 400
    )


class MethodsMissing(SsprError):
    problem = Problem(
        "urn:sspr:problem:methods-missing", "Verify the required methods before you choose a new password.", 409
    )


class CannotResetHere(SsprError):
    """Told only after the user proved a method: why this service cannot reset their password, and whom to ask."""

    problem = Problem(
        "urn:sspr:problem:cannot-reset-here", "Your password cannot be reset here. Contact your helpdesk.", 403
    )

    def __init__(self, reason: str, detail: str, helpdesk: dict[str, str | None]) -> None:
        super().__init__(f"cannot reset here: {reason}", reason=reason, detail=detail, helpdesk=helpdesk)


class PasswordRejected(SsprError):
    problem = Problem(
        "urn:sspr:problem:password-rejected", "Choose another password: this one does not meet the rules.", 422
    )

    def __init__(self, failures: list[dict[str, str]]) -> None:
        super().__init__("password rejected: " + ", ".join(f["rule"] for f in failures), failures=failures)
