"""The service's rules about on-premises Active Directory: which agent can serve a synced user, what an agent's
verdict means for the person waiting, and how a job is named after the flow that sent it.

The agent's side of the conversation (the message schemas) is shared/domain/onprem_jobs.py; this module is only
the service's reading of it. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.onprem_jobs import ExpiryReport, Heartbeat, JobKind, Verdict
from shared.domain.password_expiry import OnPremisesExpiry

# An agent beats every 30 s by default (onprem_agent/config.example.toml); three missed beats and it is gone.
AGENT_SILENCE = timedelta(seconds=90)
# After a job's expiry no agent applies it; a claim's lease (60 s by default) and the result's trip to storage
# follow, then the service stops waiting for a result that no live agent will ever write.
RESULT_GRACE = timedelta(seconds=90)
# An agent reports every account's password expiry every hour by default (onprem_agent/expiry.py); a report older
# than this was written by an agent that stopped scanning, and what the user did since is not in it.
EXPIRY_REPORT_FRESHNESS = timedelta(days=2)


@dataclass(frozen=True)
class OnPremAccount:
    """A synced user as the directory syncs them: the SID names the account to the agent (H5), the DN says which
    agents' OUs hold it. Both come from Graph (onPremisesSecurityIdentifier, onPremisesDistinguishedName)."""

    sid: str
    distinguished_name: str = ""


def is_live(beat: Heartbeat, now: datetime) -> bool:
    """An agent is live while its last heartbeat is recent and it reaches at least one domain controller."""
    return now - beat.at <= AGENT_SILENCE and bool(beat.dcs_reached)


def _under(dn: str, ou: str) -> bool:
    """Whether `dn` lies in the subtree of `ou` (DNs compare case-insensitively, component by component)."""
    parts = [p.strip().lower() for p in dn.split(",")]
    base = [p.strip().lower() for p in ou.split(",")]
    return bool(base) and len(parts) > len(base) and parts[-len(base):] == base


def serves(beat: Heartbeat, account: OnPremAccount) -> bool:
    """Whether this agent's configured OUs hold the account. An agent that does not say its OUs (older than
    the OU list in heartbeats) is taken to serve everyone: it refuses out-of-scope accounts itself."""
    if not beat.allowed_ous:
        return True
    return bool(account.distinguished_name) and any(_under(account.distinguished_name, ou) for ou in beat.allowed_ous)


def serving_agents(beats: Iterable[Heartbeat], account: OnPremAccount, now: datetime) -> list[Heartbeat]:
    """The live agents that can reset this account."""
    return [b for b in beats if is_live(b, now) and serves(b, account)]


class Coverage(StrEnum):
    """Whether the agents can serve a synced user (eligibility, and the refusal after a proven method)."""

    SERVED = "served"
    WRITEBACK_OFF = "writeback-off"  # the policy keeps synced users out
    NO_LIVE_AGENT = "no-live-agent"  # no agent has beaten recently, or none reaches a DC
    OUTSIDE_AGENT_OUS = "outside-agent-ous"  # agents are live, but none is configured for the user's OU
    NO_SID = "no-sid"  # Graph does not give the account's SID: the agent could not find it


@dataclass(frozen=True)
class LockoutPolicy:
    """AD's account lockout as the live agents report it: `threshold` wrong passwords within `window` lock the
    account (threshold 0: no lockout). Of several agents, the strictest."""

    threshold: int
    window: timedelta


def lockout_policy(beats: Iterable[Heartbeat], now: datetime) -> LockoutPolicy | None:
    reported = [b for b in beats if is_live(b, now) and b.lockout_threshold > 0]
    if not reported:
        return None
    return LockoutPolicy(min(b.lockout_threshold for b in reported),
                         timedelta(seconds=max(b.lockout_window_s for b in reported)))


def coverage(writeback: bool, beats: Iterable[Heartbeat], account: OnPremAccount | None, now: datetime) -> Coverage:
    if not writeback:
        return Coverage.WRITEBACK_OFF
    if account is None or not account.sid:
        return Coverage.NO_SID
    live = [b for b in beats if is_live(b, now)]
    if not live:
        return Coverage.NO_LIVE_AGENT
    return Coverage.SERVED if any(serves(b, account) for b in live) else Coverage.OUTSIDE_AGENT_OUS


# ---- what a verdict means to the person waiting ---------------------------------------------------------------


class Meaning(StrEnum):
    DONE = "done"  # AD took the change
    REFUSED = "refused"  # AD's password policy refused it: the person may choose another password
    NOT_HERE = "not-here"  # AD cannot change this account here (disabled, outside the OUs, unknown): helpdesk
    NOTHING_CHANGED = "nothing-changed"  # the job never applied (expired, cancelled, unreadable, DC down): retry


REFUSED_RULES = {
    Verdict.REFUSED_COMPLEXITY: "complexity",
    Verdict.REFUSED_HISTORY: "history",
    Verdict.REFUSED_MINIMUM_AGE: "minimum-age",
    Verdict.REFUSED_POLICY: "policy",
}
_NOT_HERE = frozenset({Verdict.DISABLED, Verdict.NOT_IN_SCOPE, Verdict.NOT_FOUND, Verdict.LOCKED_OUT})


def meaning(verdict: Verdict) -> Meaning:
    if verdict is Verdict.APPLIED:
        return Meaning.DONE
    if verdict in REFUSED_RULES:
        return Meaning.REFUSED
    if verdict in _NOT_HERE:
        return Meaning.NOT_HERE
    return Meaning.NOTHING_CHANGED


# ---- job ids: a reset flow's jobs carry the flow's id, so a result finds its flow -------------------------------

_KIND_LETTER = {JobKind.RESET: "r", JobKind.UNLOCK: "u", JobKind.READ_STATE: "s", JobKind.CHANGE: "c"}


def flow_job_id(flow_id: str, kind: JobKind, attempt: int) -> str:
    """`r3-<flow id>`: the flow's third try at a reset. Unique per try, so a new try never meets an old result."""
    return f"{_KIND_LETTER[kind]}{attempt}-{flow_id}"


def _owner(job_id: str, letters: str) -> str | None:
    head, sep, owner = job_id.partition("-")
    if not sep or len(head) < 2 or head[0] not in letters or not head[1:].isdigit() or len(owner) != 36:
        return None
    return owner


def flow_of_job(job_id: str) -> str | None:
    """The flow a job id names, or None for a job that no reset flow sent."""
    return _owner(job_id, "rus")


def change_job_id(change_id: str) -> str:
    """`c1-<change id>`: a self-service change's job (one job per change request)."""
    return flow_job_id(change_id, JobKind.CHANGE, 1)


def change_of_job(job_id: str) -> str | None:
    """The self-service change a job id names, or None for another job."""
    return _owner(job_id, "c")


def gave_up(expires_at: datetime, now: datetime) -> bool:
    """A claimed job with no result long after its expiry: its agent died and no other agent took it over."""
    return now >= expires_at + RESULT_GRACE


# ---- AD's password expiry, as the agents report it ----------------------------------------------------------------


def expiry_of(report: ExpiryReport | None, now: datetime) -> OnPremisesExpiry | None:
    """What the expiry rule reads of an agent's report: None when there is none or it is too old to believe."""
    if report is None or now - report.scanned_at > EXPIRY_REPORT_FRESHNESS:
        return None
    return OnPremisesExpiry(report.expires_at, report.must_change, report.password_last_set)
