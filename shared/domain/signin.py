"""What the sign-in hook tells Entra about a user's SSPR registration, and when a registration reminder is due.

Pure rules, no I/O. The hook answers with custom claims (strings, as Entra requires):

    registration required   ssprRegistrationRequired "true",  ssprRegistrationSkippable "false", ssprRegistrationUrl
    may still skip          ssprRegistrationRequired "false", ssprRegistrationSkippable "true",  ssprRegistrationUrl,
                            ssprRegistrationSkipUntil (ISO 8601 UTC, when the allowance ends)
    nothing to do           ssprRegistrationRequired "false"
    our own fault (F7)      no claims at all: the sign-in goes on and nothing is claimed about the user

Skip allowance: `daysUserMaySkip` days counted from the user's first prompt of the current "episode". An episode
starts when the user first needs to register (never registered, or dropped below the required count after their
last confirmation) or when their reconfirmation falls due; a prompt recorded before the episode began (say, the
one before their first registration, months ago) does not use up the allowance of a later reconfirmation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared import queues
from shared.domain.ids import GUID_PATTERN, is_guid
from shared.domain.policy import Policy, Scope
from shared.domain.security_info import SecurityInfoSummary, registration_status

MAX_RESPONSE_BYTES = 3 * 1024  # Entra refuses larger custom-claims responses

CLAIM_REQUIRED = "ssprRegistrationRequired"
CLAIM_SKIPPABLE = "ssprRegistrationSkippable"
CLAIM_URL = "ssprRegistrationUrl"
CLAIM_SKIP_UNTIL = "ssprRegistrationSkipUntil"

SIGNIN_EVENTS_QUEUE = queues.SIGNIN_EVENTS
NOTIFICATIONS_QUEUE = queues.NOTIFICATIONS  # engineer A's worker mails the reminder
REGISTRATION_REMINDER_KIND = "registration-reminder"
SUCCESSFUL_SIGN_IN = "0"  # SignInLogs resultType of a successful sign-in
INTERACTIVE_SIGN_IN_CATEGORY = "SignInLogs"  # non-interactive ones stream as NonInteractiveUserSignInLogs


class Reason(StrEnum):
    """Why the hook answered as it did (logged, never sent to Entra)."""

    NOT_ENABLED = "not-enabled"
    NOT_REQUIRED_AT_SIGN_IN = "not-required-at-sign-in"
    REGISTERED = "registered"
    NOT_REGISTERED = "not-registered"
    RECONFIRM_DUE = "reconfirm-due"


@dataclass(frozen=True)
class RegistrationPrompt:
    """The hook's decision for one user at one moment."""

    reason: Reason
    required: bool = False  # the user must register now (no skip allowance left)
    skip_until: datetime | None = None  # set when the user is prompted but may still skip until then
    record_first_prompt: bool = False  # store `now` as the summary's first_prompted_at (a new episode began)

    @property
    def prompted(self) -> bool:
        return self.required or self.skip_until is not None


def needs_registration(summary: SecurityInfoSummary, policy: Policy, now: datetime) -> Reason:
    """NOT_REGISTERED below the required count (admins: 2, questions never count), RECONFIRM_DUE once due,
    REGISTERED otherwise. The same test decides the hook's prompt and the reminder mail."""
    status = registration_status(summary, policy, now)
    if not status.registered:
        return Reason.NOT_REGISTERED
    if status.reconfirm_due:
        return Reason.RECONFIRM_DUE
    return Reason.REGISTERED


def _episode_start(summary: SecurityInfoSummary, policy: Policy, reason: Reason) -> datetime | None:
    """When the user's current need to register began, as far as the summary tells (None: since ever)."""
    if reason is Reason.RECONFIRM_DUE and summary.last_confirmed_at is not None:
        return summary.last_confirmed_at + timedelta(days=policy.reconfirm_days)
    return summary.last_confirmed_at


def registration_prompt(summary: SecurityInfoSummary, enabled: bool, policy: Policy, now: datetime) -> RegistrationPrompt:
    """REGISTRATION_REQUIRED_AT_SIGN_IN: an enabled user who is not registered, or whose reconfirmation is due,
    must register at sign-in once their skip allowance is used up (at once when `daysUserMaySkip` is 0), if the
    policy asks for registration at sign-in at all."""
    if not enabled or policy.scope is Scope.NONE:
        return RegistrationPrompt(Reason.NOT_ENABLED)
    if not policy.require_registration_at_sign_in:
        return RegistrationPrompt(Reason.NOT_REQUIRED_AT_SIGN_IN)
    reason = needs_registration(summary, policy, now)
    if reason is Reason.REGISTERED:
        return RegistrationPrompt(reason)
    start = _episode_start(summary, policy, reason)
    first = summary.first_prompted_at
    new_episode = first is None or (start is not None and first < start)
    prompted_at = now if new_episode or first is None else first
    skip_until = prompted_at + timedelta(days=policy.days_user_may_skip)
    if now < skip_until:
        return RegistrationPrompt(reason, skip_until=skip_until, record_first_prompt=new_episode)
    return RegistrationPrompt(reason, required=True, record_first_prompt=new_episode)


def prompt_claims(prompt: RegistrationPrompt, registration_url: str) -> dict[str, str]:
    """The custom claims for a decision (all values strings)."""
    if prompt.required:
        return {CLAIM_REQUIRED: "true", CLAIM_SKIPPABLE: "false", CLAIM_URL: registration_url}
    if prompt.skip_until is not None:
        return {CLAIM_REQUIRED: "false", CLAIM_SKIPPABLE: "true", CLAIM_URL: registration_url,
                CLAIM_SKIP_UNTIL: prompt.skip_until.isoformat(timespec="seconds").replace("+00:00", "Z")}
    return {CLAIM_REQUIRED: "false"}


def token_issuance_start_response(claims: dict[str, str]) -> dict[str, Any]:
    """The one response shape Entra accepts from an OnTokenIssuanceStart extension: one provideClaimsForToken."""
    return {
        "data": {
            "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
            "actions": [
                {"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": claims}
            ],
        }
    }


def reminder_due(
    summary: SecurityInfoSummary, enabled: bool, policy: Policy, last_reminded_at: datetime | None,
    period: timedelta, now: datetime,
) -> bool:
    """REMINDER_AT_MOST_ONCE_PER_PERIOD: an enabled user who is not registered (or whose reconfirmation is due)
    gets a reminder mail after a sign-in, unless one went out less than `period` ago."""
    if not enabled or policy.scope is Scope.NONE:
        return False
    if needs_registration(summary, policy, now) is Reason.REGISTERED:
        return False
    return last_reminded_at is None or now >= last_reminded_at + period


# Fixed forever: changing it would give a reminder already sent a new id, and the notifications ledger would mail it
# again after a redelivery.
_REMINDER_ID_NAMESPACE = uuid.UUID("5b1c0e7a-2f4d-4c8e-9a61-3d7e0b9f4a21")


def reminder_message_id(user_id: str, previous_message_id: str | None) -> str:
    """REMINDER_ID_IS_DETERMINISTIC: the notification id of the user's next reminder, derived from the one before
    (none for the first). Every worker that handles a sign-in of the same period derives the same id, so a reminder
    queued twice (a crash between queueing and claiming the period, a redelivery, two workers at once) is one
    message id to the notifications ledger, and one mail."""
    return str(uuid.uuid5(_REMINDER_ID_NAMESPACE, f"registration-reminder|{user_id.lower()}|{previous_message_id or ''}"))


class SignInEventMessage(BaseModel):
    """A message of queue sspr-signin-events: the user who signed in, nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    userId: Annotated[str, Field(pattern=GUID_PATTERN, max_length=36)]


@dataclass(frozen=True)
class SignInRecord:
    """The fields of one streamed SignInLogs record that matter here (any of them may be missing)."""

    category: str | None
    result_type: str | None
    user_id: str | None


def signed_in_users(records: Iterable[SignInRecord]) -> list[str]:
    """SUCCESSFUL_INTERACTIVE_SIGN_INS_ONLY: the distinct users (lower-case GUIDs, first-seen order) of the
    records that are successful interactive sign-ins with a GUID user id; everything else is ignored."""
    users: dict[str, None] = {}
    for record in records:
        if record.category != INTERACTIVE_SIGN_IN_CATEGORY:
            continue
        if record.result_type != SUCCESSFUL_SIGN_IN or not record.user_id or not is_guid(record.user_id):
            continue
        users[record.user_id.lower()] = None
    return list(users)
