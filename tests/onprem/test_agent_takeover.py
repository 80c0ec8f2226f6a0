"""An agent that died mid-job (SIGKILL): its claim runs out and the job is applied exactly once after (H1, H4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableServiceClient

from devtools.processes import REPO_ROOT, ManagedProcess
from shared.domain.onprem_jobs import LEDGER_TABLE, JobKind, JobResult, Verdict
from tests.onprem.conftest import Domain, Site, quoted

NEW = "T4keover!Pass-2026"


def _dead_claim(site: Site, job_id: str, first_claimed_at: datetime) -> None:
    """The row an agent leaves when it is killed after its claim: state claimed, lease already run out."""
    tables = TableServiceClient.from_connection_string(site.connection_string)
    table = tables.create_table_if_not_exists(LEDGER_TABLE.format(prefix=site.prefix))
    table.create_entity({"PartitionKey": job_id, "RowKey": "job", "state": "claimed", "agent_id": "agent-dead",
                         "first_claimed_at": first_claimed_at, "lease_until": datetime.now(UTC) - timedelta(seconds=1),
                         "expires_at": datetime.now(UTC) + timedelta(seconds=30), "claims": 1})


def _process(site: Site, agent_id: str = "agent-1") -> JobResult:
    agent = site.agent(agent_id)
    with ThreadPoolExecutor(1) as pool:
        agent.poll_once(pool, 1)
    [result] = [JobResult.model_validate_json(r) for r in site.results()]
    return result


def test_a_job_whose_agent_died_before_applying_is_applied_by_the_next(site: Site, domain: Domain) -> None:
    dn, sid, old = domain.make_user()
    time.sleep(1.1)  # the dead agent's claim comes after the account's last password set
    job = site.job(JobKind.RESET, sid, NEW)
    _dead_claim(site, job.job_id, datetime.now(UTC))
    site.send(job)
    result = _process(site)
    assert result.verdict is Verdict.APPLIED
    assert domain.binds(dn, NEW) and not domain.binds(dn, old)
    assert site.ledger_row(job.job_id)["claims"] == 2


def test_a_job_whose_agent_died_after_applying_is_not_applied_again(site: Site, domain: Domain) -> None:
    dn, sid, _ = domain.make_user()
    time.sleep(1.1)
    job = site.job(JobKind.RESET, sid, NEW)
    _dead_claim(site, job.job_id, datetime.now(UTC))
    admin = domain.connect()  # what the dead agent did before it was killed: the reset reached AD
    admin.modify(dn, {"unicodePwd": [("MODIFY_REPLACE", [quoted(NEW)])]})
    assert admin.result["result"] == 0
    stamp = domain.attribute(dn, "pwdLastSet")
    time.sleep(1.1)  # a second reset now would move pwdLastSet
    site.send(job)
    result = _process(site)
    assert result.verdict is Verdict.APPLIED
    assert domain.attribute(dn, "pwdLastSet") == stamp
    assert domain.binds(dn, NEW)


def _toml(site: Site, agent_id: str) -> str:
    config = site.config(agent_id, log_file=str(site.folder / f"{agent_id}.log"))
    d = config.directory
    return "\n".join([
        f'agent_id = "{agent_id}"', f'private_key_files = ["{config.private_key_files[0]}"]',
        f"lease_s = {config.lease_s}", f"poll_s = {config.poll_s}", "heartbeat_s = 1",
        f'log_file = "{config.log_file}"',
        "[storage]", f'connection_string_file = "{config.storage.connection_string_file}"',
        f'prefix = "{config.storage.prefix}"',
        "[directory]", f'servers = ["ldaps://{d.servers[0][0]}:{d.servers[0][1]}"]', f'ca_file = "{d.ca_file}"',
        f'base_dn = "{d.base_dn}"', f'allowed_ous = ["{d.allowed_ous[0]}"]', f'bind_dn = "{d.bind_dn}"',
        f'bind_password_file = "{d.bind_password_file}"', "",
    ])


def _start(site: Site, agent_id: str) -> ManagedProcess:
    path = site.folder / f"{agent_id}.toml"
    path.write_text(_toml(site, agent_id))
    return ManagedProcess(agent_id, [sys.executable, "-m", "onprem_agent", "run", "--config", str(path)],
                          cwd=REPO_ROOT).start("", 10)


def _wait_state(site: Site, job_id: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = str(site.ledger_row(job_id).get("state"))
            if state in states:
                return state
        except Exception:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"job {job_id} did not reach {states}")


def _listening_pids() -> str:
    return subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout


def test_the_agent_program_listens_on_no_port_logs_no_password_and_survives_a_sigkill(
        site: Site, domain: Domain) -> None:
    dn, sid, old = domain.make_user()
    job = site.job(JobKind.RESET, sid, NEW)
    first = _start(site, "agent-p1")
    try:
        site.send(job)
        assert _wait_state(site, job.job_id, {"done"}, 20) == "done"
        assert first.proc is not None and f"pid={first.proc.pid}," not in _listening_pids()
        assert domain.binds(dn, NEW) and not domain.binds(dn, old)
        # The next job: kill the agent as soon as it has claimed it (wherever the kill lands).
        dn2, sid2, _ = domain.make_user()
        time.sleep(1.1)
        second = site.job(JobKind.RESET, sid2, NEW)
        site.send(second)
        state = _wait_state(site, second.job_id, {"claimed", "done"}, 20)
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(5)
    finally:
        first.stop()
    log = (site.folder / "agent-p1.log").read_text()
    assert job.job_id in log and NEW not in log
    assert job.password is not None and job.password.box not in log
    restarted = _start(site, "agent-p2")
    try:
        assert _wait_state(site, second.job_id, {"done"}, 30) == "done"
    finally:
        restarted.stop()
    row = site.ledger_row(second.job_id)
    assert JobResult.model_validate_json(str(row["result"])).verdict is Verdict.APPLIED
    assert row["claims"] == (2 if state == "claimed" else 1)
    assert domain.binds(dn2, NEW)
