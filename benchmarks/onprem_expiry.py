"""Synced users' AD password expiry: the agent's paged scan against one `read-state` job per user, on a real Samba AD
DC (devtools/onprem_site.py) and Azurite; why the agent reports expiry by a periodic scan (onprem_agent/expiry.py).

Workload (`--users N`, default 300 accounts in OU=Staff): (1) the scan: every account of the agent's OU by the simple
paged results control (1,000 a page), its ExpiryReport written 100 to a transaction; (2) the alternative: N sealed
`read-state` jobs through the real agent (queue, ledger claim, LDAPS search by SID, result message and the account's
report row), timed from the first enqueue to the last ledger row done. Baseline, same run: a raw paged LDAPS search of
the OU with the same attributes (no writes). Printed: accounts/s of each, their ratio, and what 100,000 accounts
would take each way at these rates.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

import ldap3

from benchmarks.agent_kit import ldaps_admin, scratch_domain, timed_jobs
from benchmarks.baseline import report
from devtools.azurite import Azurite
from devtools.onprem_site import STAFF_OU, AdUser, AgentSite, Domain
from onprem_agent.__main__ import build
from onprem_agent.config import AgentConfig
from onprem_agent.directory import SCAN_ATTRIBUTES, SCAN_FILTER
from shared.domain.onprem_jobs import JobKind, OnPremJob

CONCURRENCY = 8  # the agent's default job threads


def _raw_scan(domain: Domain) -> tuple[float, int]:
    """Seconds and accounts of one raw paged subtree search of OU=Staff (1,000 a page), as the administrator."""
    conn = ldaps_admin(domain)
    started = time.perf_counter()
    found = conn.extend.standard.paged_search(STAFF_OU, SCAN_FILTER, ldap3.SUBTREE, attributes=SCAN_ATTRIBUTES,
                                              paged_size=1000, generator=True)
    accounts = sum(1 for entry in found if entry.get("type") == "searchResEntry")
    elapsed = time.perf_counter() - started
    conn.unbind()
    return elapsed, accounts


def _scan(site: AgentSite) -> tuple[float, int]:
    agent = build(AgentConfig.model_validate(site.config_data("scan")))
    if agent.scanner is None:
        raise RuntimeError("the agent has no expiry scanner")
    started = time.perf_counter()
    result = agent.scanner.run_once()
    elapsed = time.perf_counter() - started
    if result is None:
        raise RuntimeError("the scan failed")
    return elapsed, result.accounts


def _jobs(site: AgentSite, azurite: Azurite, users: list[AdUser]) -> float:
    """Seconds for one read-state job per user through the real agent."""
    agent = build(AgentConfig.model_validate(site.config_data("jobs", concurrency=CONCURRENCY)))
    expires = datetime.now(UTC) + timedelta(minutes=10)
    jobs = [OnPremJob(job_id=str(uuid.uuid4()), kind=JobKind.READ_STATE, object_sid=u.sid, expires_at=expires)
            for u in users]
    agent.scanner = None  # this run measures the jobs alone
    return timed_jobs(agent, site, azurite, jobs, CONCURRENCY)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300, help="accounts in the agent's OU")
    args = parser.parse_args(argv)
    with scratch_domain("onprem-expiry", args.users, threads=4) as (folder, azurite, domain, users):
        site = AgentSite.create(domain, azurite.connection_string, folder / "site", "e" + uuid.uuid4().hex[:8])
        raw_seconds, raw_accounts = _raw_scan(domain)
        scan_seconds, scanned = _scan(site)
        jobs_seconds = _jobs(site, azurite, users)
    scan_rate, jobs_rate, raw_rate = scanned / scan_seconds, len(users) / jobs_seconds, raw_accounts / raw_seconds
    return report(
        workload=(f"{len(users)} accounts in the agent's OU (Samba AD DC, single process, + Azurite): the agent's "
                  f"paged expiry scan and report rows, against {len(users)} read-state jobs through the agent "
                  f"({CONCURRENCY} threads)"),
        figure=(f"scan {scan_rate:.0f} accounts/s ({scanned} in {scan_seconds:.2f} s); read-state jobs "
                f"{jobs_rate:.1f} accounts/s ({jobs_seconds:.1f} s); at these rates 100,000 accounts take "
                f"{100_000 / scan_rate / 60:.1f} min by scan, {100_000 / jobs_rate / 60:.0f} min by jobs"),
        baseline=f"raw paged LDAPS search of the OU, no writes: {raw_rate:.0f} accounts/s",
        ratio=f"scan / raw search = {scan_rate / raw_rate:.2f}; scan / jobs = {scan_rate / jobs_rate:.0f}x",
        target="the scan well above one job per account; the scan >= 0.3x the raw search",
    )


if __name__ == "__main__":
    main()
