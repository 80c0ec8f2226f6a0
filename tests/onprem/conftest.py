"""The agent's tests: a real Samba AD DC (the session's `domain`, tests/conftest.py; devtools/onprem_site.py) with an
in-scope and an out-of-scope OU and a least-privileged service account, and a `Site` to make agents and jobs.

Tests that need the DC fail (never skip) with the install command when Samba is missing.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.azurite import Azurite
from devtools.onprem_site import ELSEWHERE_OU, STAFF_OU, AgentSite, Domain, quoted
from onprem_agent.__main__ import build
from onprem_agent.agent import Agent
from onprem_agent.config import AgentConfig
from shared.adapters.job_sealing import JobSealer
from shared.domain.onprem_jobs import JOBS_QUEUE, LEDGER_TABLE, RESULTS_QUEUE, JobKind, JobResult, OnPremJob

__all__ = ["ELSEWHERE_OU", "STAFF_OU", "Domain", "Site", "quoted"]


@dataclass
class Site(AgentSite):
    """One deployment's queues and ledger on Azurite, the agent's key, and a way to make agents and jobs for it."""

    @property
    def sealer(self) -> JobSealer:
        return JobSealer.from_base64(self.public_key)

    def queue(self, template: str) -> QueueClient:
        service = QueueServiceClient.from_connection_string(self.connection_string)
        return service.get_queue_client(template.format(prefix=self.prefix),
                                        message_encode_policy=TextBase64EncodePolicy(),
                                        message_decode_policy=TextBase64DecodePolicy())

    def ledger_row(self, job_id: str) -> dict[str, object]:
        tables = TableServiceClient.from_connection_string(self.connection_string)
        return dict(tables.get_table_client(LEDGER_TABLE.format(prefix=self.prefix)).get_entity(job_id, "job"))

    def config(self, agent_id: str = "agent-1", servers: list[str] | None = None, **extra: object) -> AgentConfig:
        return AgentConfig.model_validate(self.config_data(agent_id, servers, **extra))

    def agent(self, agent_id: str = "agent-1", servers: list[str] | None = None) -> Agent:
        return build(self.config(agent_id, servers))

    def job(self, kind: JobKind, sid: str, password: str | None = None, ttl: float = 30.0,
            must_change: bool = False, current: str | None = None) -> OnPremJob:
        """A job as the service would send it: the new password (and a change's `current` one) sealed."""
        job_id = str(uuid.uuid4())
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        sealed = self.sealer.seal(password, job_id, expires) if password is not None else None
        old = self.sealer.seal(current, job_id, expires, "old") if current is not None else None
        return OnPremJob(job_id=job_id, kind=kind, object_sid=sid, expires_at=expires, password=sealed,
                         old_password=old, must_change_at_next_logon=must_change)

    def send(self, job: OnPremJob) -> None:
        jobs = self.queue(JOBS_QUEUE)
        try:
            jobs.create_queue()
        except Exception:
            pass
        jobs.send_message(job.model_dump_json())

    def results(self) -> list[str]:
        return [m.content for m in self.queue(RESULTS_QUEUE).receive_messages(max_messages=32)]

    def poll_once(self, agent_id: str = "agent-1", workers: int = 4) -> list[JobResult]:
        """One poll by an agent (`workers` threads, twice as many jobs at most), then the results sent so far."""
        agent = self.agent(agent_id)
        with ThreadPoolExecutor(workers) as pool:
            agent.poll_once(pool, 2 * workers)
        return [JobResult.model_validate_json(r) for r in self.results()]


@pytest.fixture
def site(domain: Domain, azurite: Azurite, tmp_path: Path) -> Site:
    base = AgentSite.create(domain, azurite.connection_string, tmp_path)
    return Site(base.domain, base.connection_string, base.folder, base.prefix, base.key)
