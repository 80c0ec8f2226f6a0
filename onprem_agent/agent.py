"""The agent's loop: take jobs from the jobs queue, claim each in the ledger, apply it to AD, publish the result.

Outbound only: it polls Azure Queue Storage and the Table service over HTTPS and connects to the DCs over
LDAPS; it listens on no port. A job applies at most once: the ledger claim decides who applies it, an expired
or cancelled job never applies, and a redelivered job gets its first result again. Logs name the job id,
kind and verdict, never a password nor its sealed box.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient, QueueMessage
from pydantic import ValidationError

from onprem_agent import VERSION
from onprem_agent.directory import Account, Directory, DirectoryUnavailable, Outcome
from onprem_agent.expiry import ExpiryReports, ExpiryScanner
from onprem_agent.ledger import Claim, ClaimKind, Ledger
from onprem_agent.unsealing import JobExpired, KeyRing, Unreadable
from shared.domain.onprem_jobs import Heartbeat, JobKind, JobResult, OnPremJob, Verdict

log = logging.getLogger("onprem_agent")

MAX_DEQUEUE = 5  # a message that failed this often is dropped (it cannot be read, or storage keeps failing)
REFUSALS = {Verdict.REFUSED_COMPLEXITY, Verdict.REFUSED_HISTORY, Verdict.REFUSED_MINIMUM_AGE,
            Verdict.REFUSED_POLICY, Verdict.REFUSED_CURRENT_PASSWORD, Verdict.LOCKED_OUT, Verdict.DISABLED,
            Verdict.NOT_IN_SCOPE, Verdict.NOT_FOUND, Verdict.EXPIRED,
            Verdict.CANCELLED, Verdict.UNREADABLE}


@dataclass
class Counts:
    applied: int = 0
    refused: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, verdict: Verdict) -> None:
        with self.lock:
            if verdict is Verdict.APPLIED:
                self.applied += 1
            elif verdict in REFUSALS:
                self.refused += 1
            else:
                self.failed += 1


class Agent:
    def __init__(self, agent_id: str, jobs: QueueClient, results: QueueClient, ledger: Ledger,
                 agents_table: TableClient, directory: Directory, keys: KeyRing,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.agent_id = agent_id
        self._jobs = jobs
        self._results = results
        self._ledger = ledger
        self._agents = agents_table
        self._directory = directory
        self._keys = keys
        self._clock = clock
        self.counts = Counts()
        self.lease_s = 60.0
        # The password-expiry report (onprem_agent/expiry.py): rows rewritten after each job, and the periodic scan.
        self.expiry: ExpiryReports | None = None
        self.scanner: ExpiryScanner | None = None

    # -- one job ----------------------------------------------------------------------------------------------

    def handle(self, message: QueueMessage) -> JobResult | None:
        """Process one queue message; the result, or None when another agent holds the job (message kept)."""
        try:
            job = OnPremJob.model_validate_json(message.content)
        except ValidationError:
            log.warning("dropped a message that is not a job (message %s)", message.id)
            self._jobs.delete_message(message)
            return None
        now = self._clock()
        claim = self._ledger.claim(job.job_id, job.expires_at, now)
        if claim.kind is ClaimKind.BUSY:
            log.info("job %s is held by another agent", job.job_id)
            return None
        if claim.kind is ClaimKind.DONE and claim.result is not None:
            log.info("job %s was done before (%s): its result again", job.job_id, claim.result.verdict)
            self._publish(claim.result)
            self._jobs.delete_message(message)
            return claim.result
        if claim.kind is ClaimKind.CANCELLED:
            result = self._result(job, Outcome(Verdict.CANCELLED, "the service cancelled the job"))
        else:
            result = self._apply(job, claim)
            result = self._ledger.finish(claim, result)
        self.counts.add(result.verdict)
        log.info("job %s (%s): %s", job.job_id, job.kind.value, result.verdict.value)
        self._publish(result)
        self._jobs.delete_message(message)
        return result

    def _apply(self, job: OnPremJob, claim: Claim) -> JobResult:
        if self._clock() >= job.expires_at:
            return self._result(job, Outcome(Verdict.EXPIRED, "the job expired before it could apply"))
        try:
            account = self._directory.find(job.object_sid)
            if account is None:
                return self._result(job, Outcome(Verdict.NOT_FOUND, "no account has this objectSid"))
            if not account.in_scope:
                return self._result(job, Outcome(Verdict.NOT_IN_SCOPE, "the account is outside the agent's OUs"))
            if job.kind is JobKind.READ_STATE:
                self._report_expiry(job, account)
                return self._result(job, Outcome(Verdict.APPLIED), account)
            if account.state.disabled:
                return self._result(job, Outcome(Verdict.DISABLED, "the account is disabled"), account)
            outcome = self._change(job, claim, account)
            after = self._directory.find(job.object_sid)
            if outcome.verdict is Verdict.APPLIED and after is not None:
                self._report_expiry(job, after)
            return self._result(job, outcome, after or account)
        except DirectoryUnavailable as exc:
            log.warning("job %s: %s", job.job_id, exc)
            return self._result(job, Outcome(Verdict.FAILED, "no domain controller answered"))

    def _change(self, job: OnPremJob, claim: Claim, account: Account) -> Outcome:
        if job.kind is JobKind.UNLOCK:
            return self._directory.unlock(account.dn)
        # A claim taken over from an agent that died: its reset or change may have reached AD already. pwdLastSet
        # at or after the first claim says it did (the password then is the job's): applying it again would count
        # twice against history (a change would even fail: its current password is gone), so the first stands.
        first = claim.first_claimed_at
        if (claim.kind is ClaimKind.TAKEN_OVER and first is not None and account.pwd_last_set is not None
                and account.pwd_last_set >= first - timedelta(seconds=1) and not job.must_change_at_next_logon):
            log.info("job %s was applied by an agent that stopped before recording it", job.job_id)
            return Outcome(Verdict.APPLIED)
        try:
            password = self._keys.open(job, self._clock())
            current = self._keys.open(job, self._clock(), "old") if job.kind is JobKind.CHANGE else None
        except JobExpired:
            return Outcome(Verdict.EXPIRED, "the job expired before it could apply")
        except Unreadable as exc:
            log.warning("job %s: %s", job.job_id, exc)
            return Outcome(Verdict.UNREADABLE, "the sealed password does not open here")
        try:
            if current is not None:
                return self._directory.change(account.dn, current, password)
            return self._directory.reset(account.dn, password, job.must_change_at_next_logon)
        finally:
            del password, current

    def _report_expiry(self, job: OnPremJob, account: Account) -> None:
        """The account's expiry row, at once: a new password starts its expiry (and its reminders) over."""
        if self.expiry is None:
            return
        try:
            self.expiry.account(job.object_sid, account.state, account.pwd_last_set)
        except Exception as exc:  # noqa: BLE001  (the job's result matters more; the next scan writes the row)
            log.warning("job %s: the expiry row was not written (%s)", job.job_id, type(exc).__name__)

    def _result(self, job: OnPremJob, outcome: Outcome, account: Account | None = None) -> JobResult:
        return JobResult(job_id=job.job_id, verdict=outcome.verdict, rule=outcome.rule,
                         state=account.state if account else None, agent_id=self.agent_id,
                         finished_at=self._clock())

    def _publish(self, result: JobResult) -> None:
        self._results.send_message(result.model_dump_json())

    # -- the loop ---------------------------------------------------------------------------------------------

    def poll_once(self, pool: ThreadPoolExecutor, batch: int) -> int:
        """Take up to `batch` messages and process them in parallel; how many were taken."""
        messages = list(self._jobs.receive_messages(messages_per_page=min(32, batch), max_messages=batch,
                                                    visibility_timeout=max(1, int(self.lease_s))))
        fresh = []
        for m in messages:
            if (m.dequeue_count or 0) > MAX_DEQUEUE:
                log.warning("dropped message %s after %d deliveries", m.id, m.dequeue_count)
                self._jobs.delete_message(m)
            else:
                fresh.append(m)
        for future in [pool.submit(self._safe_handle, m) for m in fresh]:
            future.result()
        return len(messages)

    def _safe_handle(self, message: QueueMessage) -> None:
        try:
            self.handle(message)
        except Exception as exc:  # noqa: BLE001  (the message returns after its visibility timeout, tried again)
            log.warning("message %s failed: %s", message.id, type(exc).__name__)

    def heartbeat(self) -> Heartbeat:
        reached = self._directory.probe()
        last = self.scanner.last if self.scanner else None
        beat = Heartbeat(agent_id=self.agent_id, version=VERSION, at=self._clock(),
                         dcs_reached=reached, dcs_configured=len(self._directory.servers),
                         jobs_applied=self.counts.applied, jobs_refused=self.counts.refused,
                         jobs_failed=self.counts.failed, key_ids=self._keys.key_ids,
                         policy_hints=any(self._directory.policy_hints.values()),
                         allowed_ous=self._directory.allowed_ous,
                         expiry_scanned_at=last.finished_at if last else None,
                         expiry_accounts=last.accounts if last else 0,
                         lockout_threshold=self._directory.lockout[0], lockout_window_s=self._directory.lockout[1])
        row = {"PartitionKey": "agent", "RowKey": self.agent_id, "heartbeat": beat.model_dump_json(),
               "at": beat.at, "version": VERSION}
        self._agents.upsert_entity(row, mode=UpdateMode.REPLACE)
        return beat

    def beat(self, stop: threading.Event, heartbeat_s: float) -> None:
        """Heartbeats until `stop`, in a thread of their own: a heartbeat probes every DC, and a DC that hangs holds
        the probe for up to its timeouts, which must not hold the jobs' polling too (a job taken meanwhile waits
        on that DC in its own thread, and the person is told it is pending rather than that nothing happened)."""
        while not stop.is_set():
            try:
                self.heartbeat()
            except Exception as exc:  # noqa: BLE001  (the beat outlives a failing heartbeat)
                log.warning("heartbeat failed: %s", type(exc).__name__)
            stop.wait(heartbeat_s)

    def run(self, stop: threading.Event, concurrency: int, poll_s: float, heartbeat_s: float) -> None:
        beating = threading.Thread(target=self.beat, args=(stop, heartbeat_s), name="heartbeat", daemon=True)
        beating.start()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job") as pool:
            while not stop.is_set():
                now = self._clock().timestamp()
                if self.scanner is not None and self.scanner.due(now):
                    self.scanner.start(now)
                try:
                    taken = self.poll_once(pool, concurrency)
                except Exception as exc:  # noqa: BLE001  (storage down: poll again later)
                    log.warning("polling the jobs queue failed: %s", type(exc).__name__)
                    taken = 0
                if not taken:
                    stop.wait(poll_s)
        beating.join(5)  # a heartbeat probing a hung DC is left to its timeouts (the thread is a daemon)
        if self.scanner is not None:
            self.scanner.join(60)  # a scan in progress finishes its page writes before the agent stops
