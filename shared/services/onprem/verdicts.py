"""The agents' verdicts from the results queue, each to what waits for it: a reset flow (its reset or unlock job) or
a self-service change (its change job), found by the job id's letter (shared/domain/onprem.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.domain import onprem
from shared.domain.onprem_jobs import JobResult


class VerdictSettler(Protocol):
    async def settle_verdict(self, result: JobResult) -> None: ...


@dataclass(frozen=True)
class OnPremVerdicts:
    resets: VerdictSettler
    changes: VerdictSettler

    async def settle(self, result: JobResult) -> None:
        if onprem.change_of_job(result.job_id) is not None:
            await self.changes.settle_verdict(result)
        elif onprem.flow_of_job(result.job_id) is not None:
            await self.resets.settle_verdict(result)
