"""The messages between the service and the on-premises agent (jobs, results, heartbeats): schemas only, no I/O.

Both sides import this module and nothing else of each other. A job names its user by `objectSid` (Graph's
`onPremisesSecurityIdentifier`), never by a name a person typed; a reset carries the password only sealed to
the agent's public key (`SealedPassword`), bound to the job id, the expiry and the key id (`sealing_info`). A
change (the user's own: the current and the new password, so AD checks the current one, history and minimum
age) carries both, each sealed the same way and bound to its part too, so the two boxes cannot be swapped.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

JOBS_QUEUE = "{prefix}-onprem-jobs"
RESULTS_QUEUE = "{prefix}-onprem-results"
LEDGER_TABLE = "{prefix}onpremjobs"  # one row per job id: the claim, then the result (the flow may poll it)
AGENTS_TABLE = "{prefix}onpremagents"  # one heartbeat row per agent
# One row per account of the agents' OUs: AD's password expiry, as the agent's periodic scan (and each job it
# applies) read it. PartitionKey = the domain's SID, RowKey = the account's objectSid.
EXPIRY_TABLE = "{prefix}onpremexpiry"

JOB_ID_PATTERN = r"^[A-Za-z0-9-]{8,64}$"
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
_SID = re.compile(r"^S-1-5-21(-\d{1,10}){3}-\d{1,10}$")


def _sid(text: str) -> str:
    """A domain account's SID in its string form (S-1-5-21-a-b-c-rid); nothing else names a user."""
    if not _SID.match(text):
        raise ValueError("not a domain account SID")
    return text


ObjectSid = Annotated[str, AfterValidator(_sid)]
JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobKind(StrEnum):
    RESET = "reset"
    CHANGE = "change"  # the user's own change: unicodePwd delete current + add new
    UNLOCK = "unlock"
    READ_STATE = "read-state"


class SealedPassword(_Message):
    """HPKE ciphertext (base64) to the agent key `key_id`; opened only by the agent holding that key."""

    key_id: Annotated[str, Field(pattern=KEY_ID_PATTERN)]
    box: Annotated[str, Field(min_length=40, max_length=2000, pattern=r"^[A-Za-z0-9+/=]+$")]


class OnPremJob(_Message):
    job_id: JobId
    kind: JobKind
    object_sid: ObjectSid
    expires_at: datetime
    password: SealedPassword | None = None  # the new password (reset, change)
    old_password: SealedPassword | None = None  # the current password (change only)
    must_change_at_next_logon: bool = False

    @model_validator(mode="after")
    def _passwords_only_where_they_belong(self) -> OnPremJob:
        sets_password = self.kind in (JobKind.RESET, JobKind.CHANGE)
        if sets_password != (self.password is not None):
            raise ValueError("a reset and a change carry a sealed new password, and only they do")
        if (self.kind is JobKind.CHANGE) != (self.old_password is not None):
            raise ValueError("a change carries the sealed current password, and only a change does")
        if self.kind is JobKind.CHANGE and self.must_change_at_next_logon:
            raise ValueError("a user's own change never sets 'must change at next logon'")
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone")
        return self


Part = Literal["new", "old"]


def sealing_info(job_id: str, expires_at: datetime, key_id: str, part: Part = "new") -> bytes:
    """What a sealed password is bound to (HPKE `info`): opening it under another job, expiry, key or part (the
    new password, or a change's current one) fails."""
    label = "password" if part == "new" else "current password"
    return f"sspr onprem {label} v1|{key_id}|{job_id}|{expires_at.isoformat()}".encode()


class Verdict(StrEnum):
    APPLIED = "applied"
    REFUSED_COMPLEXITY = "refused-complexity"  # too short, too simple, contains the account name
    REFUSED_HISTORY = "refused-history"
    REFUSED_MINIMUM_AGE = "refused-minimum-age"
    REFUSED_POLICY = "refused-policy"  # AD's 0000052D without a rule we could tell apart
    REFUSED_CURRENT_PASSWORD = "refused-current-password"  # a change whose current password is not the account's
    LOCKED_OUT = "locked-out"  # a change of an account AD has locked out (00000775): AD checks nothing else then
    DISABLED = "disabled"
    NOT_IN_SCOPE = "not-in-scope"  # the account exists outside the agent's configured OUs
    NOT_FOUND = "not-found"
    EXPIRED = "expired"  # the job's expiry passed before it could apply: nothing was changed
    CANCELLED = "cancelled"  # the service gave up on the job before the agent took it: nothing was changed
    UNREADABLE = "unreadable"  # the sealed password did not open (unknown key, tampered): nothing was changed
    FAILED = "failed"  # no domain controller answered, or one failed otherwise: nothing was changed


class AccountState(_Message):
    locked: bool
    disabled: bool
    expired: bool  # the account's accountExpires has passed
    password_expires_at: datetime | None  # msDS-UserPasswordExpiryTimeComputed; None: never (or must_change)
    must_change: bool = False  # pwdLastSet 0: "must change password at next logon" (the password counts as expired)


class JobResult(_Message):
    job_id: JobId
    verdict: Verdict
    rule: Annotated[str, Field(max_length=300)] = ""  # AD's words for a refusal (never holds the password)
    state: AccountState | None = None
    agent_id: Annotated[str, Field(max_length=64)]
    finished_at: datetime


class LedgerState(StrEnum):
    """A ledger row's `state`: the agent claims a job, then records its result; the service may cancel a job no
    agent claimed yet (create the row with `cancelled`), after which no agent will apply it."""

    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class ExpiryReport(_Message):
    """One account's password expiry as AD computes it: `msDS-UserPasswordExpiryTimeComputed` is `pwdLastSet` plus
    the effective maximum password age (the domain's, or a fine-grained policy's), 0x7FFFFFFFFFFFFFFF when it never
    expires (DONT_EXPIRE_PASSWORD, a smart card, or no maximum age) and 0 when `pwdLastSet` is 0 (must change at the
    next logon): MS-ADTS 3.1.1.4.5.x, msDS-UserPasswordExpiryTimeComputed. Read by the agent, never computed here."""

    object_sid: ObjectSid
    expires_at: datetime | None  # None: never expires (or must_change: it counts as expired now)
    must_change: bool = False
    disabled: bool = False
    password_last_set: datetime | None  # pwdLastSet: which password this is (a new one starts the reminders over)
    scanned_at: datetime
    agent_id: Annotated[str, Field(max_length=64)]

    @property
    def domain_sid(self) -> str:
        """The account's domain (the SID without its RID): the report table's partition."""
        return self.object_sid.rsplit("-", 1)[0]


class Heartbeat(_Message):
    agent_id: Annotated[str, Field(max_length=64)]
    version: Annotated[str, Field(max_length=40)]
    at: datetime
    dcs_reached: list[str]
    dcs_configured: int
    jobs_applied: int = 0
    jobs_refused: int = 0
    jobs_failed: int = 0
    key_ids: list[str] = []
    policy_hints: bool = False  # the DC accepts the password-policy-hints control (history on a reset)
    allowed_ous: list[str] = []  # the OUs whose accounts this agent serves (the service's eligibility)
    expiry_scanned_at: datetime | None = None  # the end of the agent's last complete password-expiry scan
    # The domain's account lockout policy (lockoutThreshold, lockOutObservationWindow): wrong current passwords of
    # changes count in badPwdCount, so the service pauses a user name's changes before AD would lock the account.
    lockout_threshold: int = 0  # 0: no lockout
    lockout_window_s: int = 0
    expiry_accounts: int = 0  # the accounts that scan reported
