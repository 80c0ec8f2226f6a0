"""The agent's password-expiry report: every account of its OUs with AD's own expiry, written to the report table.

Why a periodic scan and not a job per user: the service's password-expiry run needs the expiry of every synced user
once a day. One `read-state` job per user costs a queue message, a ledger claim, an LDAP search and a result each
(about 100,000 of each for 100,000 users, and the jobs queue full while real resets wait behind them); a paged
subtree search reads 1,000 accounts per LDAP request and the rows go to Table Storage in 100-row transactions
(benchmarks/onprem_expiry.py measures both against Samba). The scan runs in a thread of its own, so the jobs of
people waiting on a page are never queued behind it; each reset or change the agent applies also rewrites that
account's row at once, so a new password is seen before the next scan.

Rows: table `<prefix>onpremexpiry`, PartitionKey = the domain's SID, RowKey = the account's objectSid, `report` =
the `ExpiryReport` (JSON), plus `scannedAt` and `agentId` as columns. After a complete scan the agent deletes the
rows it wrote before that scan began and did not write again (accounts deleted, disabled out of the OUs, moved
away); another agent's rows are left to that agent. A scan cut short deletes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.data.tables import TableClient, UpdateMode

from onprem_agent.directory import Directory, DirectoryUnavailable, ScannedAccount
from shared.domain.onprem_jobs import AccountState, ExpiryReport

log = logging.getLogger("onprem_agent.expiry")

BATCH = 100  # Table Storage's largest transaction (one partition)
WRITERS = 4  # transactions in flight during a scan


def report_of(sid: str, state: AccountState, pwd_last_set: datetime | None, agent_id: str,
              now: datetime) -> ExpiryReport:
    return ExpiryReport(object_sid=sid, expires_at=state.password_expires_at, must_change=state.must_change,
                        disabled=state.disabled, password_last_set=pwd_last_set, scanned_at=now, agent_id=agent_id)


def row_of(report: ExpiryReport) -> dict[str, object]:
    return {"PartitionKey": report.domain_sid, "RowKey": report.object_sid, "report": report.model_dump_json(),
            "scannedAt": report.scanned_at, "agentId": report.agent_id}


@dataclass
class ScanResult:
    accounts: int
    removed: int
    started_at: datetime
    finished_at: datetime


class ExpiryReports:
    """The report table, as this agent writes it."""

    def __init__(self, table: TableClient, agent_id: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._table = table
        self._agent_id = agent_id
        self._clock = clock

    def write(self, reports: Iterable[ExpiryReport], pool: ThreadPoolExecutor | None = None) -> list[Future[int]]:
        """Upsert the reports, 100 per transaction within each domain's partition, in `pool` when given (the scan
        reads the next page meanwhile); the transactions' futures (each: how many rows it wrote)."""
        by_partition: dict[str, list[ExpiryReport]] = defaultdict(list)
        for report in reports:
            by_partition[report.domain_sid].append(report)
        chunks = [rows[i:i + BATCH] for rows in by_partition.values() for i in range(0, len(rows), BATCH)]
        done: list[Future[int]] = []
        for chunk in chunks:
            if pool is None:
                finished: Future[int] = Future()
                finished.set_result(self._transaction(chunk))
                done.append(finished)
            else:
                done.append(pool.submit(self._transaction, chunk))
        return done

    def _transaction(self, chunk: list[ExpiryReport]) -> int:
        self._table.submit_transaction([("upsert", row_of(r), {"mode": UpdateMode.REPLACE}) for r in chunk])
        return len(chunk)

    def account(self, sid: str, state: AccountState, pwd_last_set: datetime | None) -> None:
        """One account's row after a job read or changed it (a reset or change starts its expiry over)."""
        for written in self.write([report_of(sid, state, pwd_last_set, self._agent_id, self._clock())]):
            written.result()

    def scan(self, directory: Directory) -> ScanResult:
        """Read every account of the OUs page by page, write each page (WRITERS transactions in flight while the
        next page is read), then forget what this agent reported before the scan and did not report again."""
        started = self._clock()
        pending: list[Future[int]] = []
        with ThreadPoolExecutor(WRITERS, thread_name_prefix="expiry-write") as pool:
            for page in directory.expiry_pages():
                now = self._clock()
                pending += self.write((report_of(a.sid, a.state, a.pwd_last_set, self._agent_id, now)
                                       for a in page if _reportable(a)), pool)
            accounts = sum(f.result() for f in pending)  # a failed write fails the scan: nothing is forgotten
        removed = self._forget_unseen(started)
        finished = self._clock()
        log.info("password expiry scan: %d accounts in %.1f s, %d rows removed", accounts,
                 (finished - started).total_seconds(), removed)
        return ScanResult(accounts, removed, started, finished)

    def _forget_unseen(self, scan_started: datetime) -> int:
        stale = list(self._table.query_entities("agentId eq @agent and scannedAt lt @started",
                                                parameters={"agent": self._agent_id, "started": scan_started},
                                                select=["PartitionKey", "RowKey"]))
        for row in stale:
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
        return len(stale)


def _reportable(account: ScannedAccount) -> bool:
    """A domain account's SID (S-1-5-21-...); built-in principals have none worth reporting."""
    return account.sid.startswith("S-1-5-21-")


class ExpiryScanner:
    """Runs the scan in a thread of its own every `interval_s` (the first at once), never two at a time."""

    def __init__(self, reports: ExpiryReports, directory: Directory, interval_s: float) -> None:
        self._reports = reports
        self._directory = directory
        self.interval_s = interval_s
        self.last: ScanResult | None = None
        self._next = 0.0
        self._thread: threading.Thread | None = None

    def due(self, now: float) -> bool:
        return now >= self._next and (self._thread is None or not self._thread.is_alive())

    def start(self, now: float) -> None:
        self._next = now + self.interval_s
        self._thread = threading.Thread(target=self.run_once, name="expiry-scan", daemon=True)
        self._thread.start()

    def run_once(self) -> ScanResult | None:
        try:
            self.last = self._reports.scan(self._directory)
        except DirectoryUnavailable as exc:
            log.warning("password expiry scan: %s", exc)
        except Exception as exc:  # noqa: BLE001  (storage down: the next interval scans again)
            log.warning("password expiry scan failed: %s", type(exc).__name__)
        return self.last

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
