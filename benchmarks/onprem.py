"""On-premises AD: a synced user's reset end to end, and the agent's jobs/s, each against raw LDAPS unicodePwd
modifies measured in the same run, on a real Samba AD DC (devtools/onprem_site.py) and Azurite.

1. End to end (`--flows`, 20 concurrent users, each from its own IP): start, send, code delivery, verify and the
   password step of synced users through the local host, whose password target seals a job to the real agent
   (concurrency 20), which resets the account in AD over LDAPS and publishes AD's verdict; the password step
   answers with that verdict. Figures: flows/s and p50/p99 per step; the password step against a raw LDAPS
   unicodePwd modify (p50/p99) at the same concurrency.
2. Jobs (`--users`): the agent taking N sealed reset jobs from the queue, claiming each in the ledger, applying
   and publishing the result, timed from the first enqueue to the last ledger row done; jobs/s against raw
   modifies/s. Samba runs `-M single` (one process), so the DC serialises the modifies; a Windows DC goes further.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import ldap3

from benchmarks.agent_kit import ldaps_admin, scratch_domain, timed_jobs
from benchmarks.baseline import percentile, report
from benchmarks.kit import bench_stack
from benchmarks.reset import STEPS, create_users, run_flows, seed
from devtools.azurite import Azurite
from devtools.onprem_site import AdUser, AgentRunner, AgentSite, Domain, quoted
from onprem_agent.__main__ import build
from onprem_agent.config import AgentConfig
from shared.adapters.job_sealing import JobSealer
from shared.adapters.proof_of_work import solve
from shared.domain.onprem_jobs import JobKind, OnPremJob

CONCURRENCY = 20


def _raw(domain: Domain, users: list[AdUser]) -> tuple[float, list[float]]:
    """Raw modifies/s at CONCURRENCY threads (one bound connection each), and each modify's latency (ms)."""
    local = threading.local()
    samples: list[float] = []

    def reset(index: int) -> None:
        conn = getattr(local, "conn", None) or ldaps_admin(domain)
        local.conn = conn
        t0 = time.perf_counter()
        conn.modify(users[index].dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [quoted(f"R4w!Password#{index:04d}")])]})
        samples.append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda _: ldaps_admin(domain).unbind(), range(CONCURRENCY)))  # warm the DC's TLS
        started = time.perf_counter()
        list(pool.map(reset, range(len(users))))
        elapsed = time.perf_counter() - started
    return len(users) / elapsed, samples


def _agent_jobs(domain: Domain, azurite: Azurite, folder: Path, users: list[AdUser]) -> float:
    site = AgentSite.create(domain, azurite.connection_string, folder / "jobs", "b" + uuid.uuid4().hex[:8])
    agent = build(AgentConfig.model_validate(site.config_data("bench", concurrency=CONCURRENCY)))
    sealer = JobSealer.from_base64(site.public_key)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    jobs = []
    for i, user in enumerate(users):
        job_id = str(uuid.uuid4())
        jobs.append(OnPremJob(job_id=job_id, kind=JobKind.RESET, object_sid=user.sid, expires_at=expires,
                              password=sealer.seal(f"Ag3nt!Password#{i:04d}", job_id, expires)))
    elapsed = timed_jobs(agent, site, azurite, jobs, CONCURRENCY)
    if agent.counts.applied != len(jobs):
        raise RuntimeError(f"only {agent.counts.applied} of {len(jobs)} resets applied")
    return len(jobs) / elapsed


def _end_to_end(domain: Domain, folder: Path, users: list[AdUser]) -> tuple[dict[str, list[float]], float, int]:
    """Complete resets of synced users through the host and the real agent: samples per step, seconds, failures."""
    with bench_stack() as stack:
        site = AgentSite.create(domain, stack.azurite.connection_string, folder / "flows",
                                stack.settings["SSPR_QUEUE_PREFIX"])
        stack.settings.update({"SSPR_ONPREM_AGENT_PUBLIC_KEY": site.public_key, "SSPR_ONPREM_WAIT_SECONDS": "30",
                               "SSPR_ONPREM_JOB_SECONDS": "60"})
        emulated = create_users(stack.emulator, len(users), lambda i: {
            "onPremisesSyncEnabled": True, "onPremisesSecurityIdentifier": users[i].sid,
            "onPremisesDistinguishedName": users[i].dn})
        asyncio.run(seed(stack.settings, emulated, onPremises={"writeback": True, "unlockWithoutReset": False}))
        host = stack.start_host()
        agent = AgentRunner(site, "bench", concurrency=CONCURRENCY, heartbeat_s=600.0).start()
        try:
            with httpx.Client(base_url=host.base_url, timeout=30) as http:
                solutions = [solve(http.get("/api/reset/pow").json()) for _ in emulated]
            return asyncio.run(run_flows(host.base_url, stack.emulator, emulated, solutions, CONCURRENCY))
        finally:
            agent.stop()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=60, help="agent jobs (part 2)")
    parser.add_argument("--flows", type=int, default=60, help="synced users' complete resets (part 1)")
    args = parser.parse_args(argv)
    with scratch_domain("onprem", max(args.users, args.flows)) as (folder, azurite, domain, people):
        raw_rate, raw_samples = _raw(domain, people)
        samples, seconds, failures = _end_to_end(domain, folder, people[:args.flows])
        agent_rate = _agent_jobs(domain, azurite, folder, people[:args.users])
    flows_per_second = args.flows / seconds
    steps = ", ".join(f"{s} p50 {percentile(samples[s], 0.5):.0f} / p99 {percentile(samples[s], 0.99):.0f} ms"
                      for s in STEPS if samples[s])
    raw_p50, raw_p99 = percentile(raw_samples, 0.5), percentile(raw_samples, 0.99)
    password_p50, password_p99 = percentile(samples["password"], 0.5), percentile(samples["password"], 0.99)
    return report(
        workload=(f"{args.flows} complete resets of synced users by {CONCURRENCY} concurrent users (start, send, "
                  f"delivery, verify, password through the agent into AD); {args.users} agent jobs at "
                  f"{CONCURRENCY} concurrent; Samba AD DC (single process) + Azurite"),
        figure=(f"{flows_per_second:.1f} synced resets/s; {steps}; {failures} failed flows; agent "
                f"{agent_rate:.1f} jobs/s (queue, claim, LDAPS modify, result)"),
        baseline=f"raw LDAPS unicodePwd modify {raw_rate:.1f}/s, p50 {raw_p50:.0f} / p99 {raw_p99:.0f} ms",
        ratio=(f"password step / raw modify: p50 {password_p50 / raw_p50:.1f}x, p99 {password_p99 / raw_p99:.1f}x; "
               f"agent jobs/s / raw = {agent_rate / raw_rate:.2f}"),
        target="every flow completes; agent >= 0.5x raw",
    )


if __name__ == "__main__":
    main()
