"""The self-service change of a synced user's password (the change page): user name, current and new password.

For users whose password lives in on-premises AD and expired, must be changed at the next logon, or simply should
change: AD checks the current password, history and minimum age itself, through the agent's `change` job (the
current and the new password each sealed to the agent, bound to its part; security.md H2). Cloud accounts change
theirs at Microsoft (the page links there); they are not served here.

One try, in order (every answer, refusal or success, leaves at the step's deadline from its start, C6):
1. proof-of-work (spent once) and the address's and the service's budgets;
2. the global state: writeback on and an agent key (else `change-not-offered`);
3. a pause, when this name from this address, or this address, gave too many wrong answers lately (C7);
4. Entra's rules on the new password, with only the context everyone has (shared/services/change/rules.py);
5. a live agent (else nothing can change now, for anyone);
6. who the name names: only a synced, enabled account a live agent serves gets a job; any other name gets the
   answer of a wrong current password, counted the same way (shared/services/change/accounts.py);
7. the job, and AD's verdict within SSPR_ONPREM_WAIT_SECONDS (a job no agent took by then is cancelled and never
   applies); a verdict not in by then leaves the change pending: 202 with the change's id and secret, and the page
   asks `status` until it is in (or the agent's result settles it, `settle_verdict`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.domain import onprem
from shared.domain.onprem_jobs import JobKind, JobResult
from shared.errors import DependencyUnavailable, PasswordRejected, SsprError
from shared.services.change.accounts import ChangeAccounts
from shared.services.change.answers import ChangeDone, ChangeStarted, ChangeWaiting
from shared.services.change.limits import ChangeLimits, ThrottleKeys
from shared.services.change.outcomes import ChangeOutcomes
from shared.services.change.ports import AgentJobs
from shared.services.change.requests import ChangeRequests
from shared.services.change.rules import ChangeRules
from shared.services.onprem.jobs import JobLost, JobTicket
from shared.services.policy import PolicyCache
from shared.services.reset.answers import PasswordCheck
from shared.services.reset.pace import StepDeadline, paced

log = logging.getLogger("sspr.change")


@dataclass(frozen=True)
class PasswordChangeService:
    requests: ChangeRequests
    limits: ChangeLimits
    rules: ChangeRules
    accounts: ChangeAccounts
    jobs: AgentJobs
    outcomes: ChangeOutcomes
    policies: PolicyCache
    deadline: StepDeadline

    def proof_of_work(self) -> dict[str, object]:
        return self.limits.proof_of_work()

    async def check_password(self, username: str, password: str, language: str,
                             client_ip: str | None) -> PasswordCheck:
        """Entra's rules on a new password while it is typed: no lookup of the user, within the address's budget."""
        await self.limits.admit_check(client_ip)
        failures = await self.rules.failures(username, "", password, language)
        return PasswordCheck(acceptable=not failures, failures=failures)

    @paced
    async def change(self, username: str, current: str, new: str, altcha: str, language: str,
                     client_ip: str | None) -> ChangeDone | ChangeStarted:
        """One try at a change (module docstring): done, pending, or refused with the same words for everyone."""
        await self.limits.admit(altcha, client_ip)
        policy = await self.policies.get()
        await self.accounts.ensure_offered(policy)
        keys = ThrottleKeys.of(username, client_ip)
        await self.limits.ensure_not_paused(keys, language)
        failures = await self.rules.failures(username, current, new, language)
        if failures:
            await self.outcomes.rules_refused(username, client_ip)
            raise PasswordRejected([f.model_dump() for f in failures])
        await self.accounts.ensure_reachable()
        found = await self.accounts.find(username, policy)
        if found is None:
            raise await self.outcomes.refused_before_ad(username, keys.as_tuple(), client_ip, language)
        request, secret = await self.requests.new(found.user_id, username, keys.as_tuple(),
                                                  self.requests.now() + self.jobs.lifetime, client_ip)
        ticket = JobTicket(onprem.change_job_id(request.change_id), request.expires_at)
        await self.jobs.send(ticket, JobKind.CHANGE, found.account.sid, new, current)
        answer = await self.outcomes.settle(request, await self.jobs.wait_for(ticket), language)
        if isinstance(answer, ChangeWaiting):
            return ChangeStarted(pending=True, retryAfterSeconds=answer.retryAfterSeconds,
                                 changeId=request.change_id, changeSecret=secret)
        return answer

    async def status(self, change_id: str, secret: str, language: str) -> ChangeDone | ChangeWaiting:
        """Where a pending change stands (the page asks until its verdict is in); settles it when the verdict is."""
        request = await self.requests.open(change_id, secret)
        if request.settled:
            return await self.outcomes.answer(request, language)
        ticket = JobTicket(onprem.change_job_id(request.change_id), request.expires_at)
        try:
            result = await self.jobs.look(ticket)
        except JobLost:
            return await self.outcomes.settle(request, None, language, lost=True)
        return await self.outcomes.settle(request, result, language)

    async def settle_verdict(self, result: JobResult) -> None:
        """The agent's verdict on a change's job (the results queue): settle it if it still waits, so a person who
        closed the page is still signed out everywhere and told."""
        change_id = onprem.change_of_job(result.job_id)
        request = await self.requests.read(change_id) if change_id else None
        if request is None or request.settled:
            return
        try:
            await self.outcomes.settle(request, result, "en")
        except DependencyUnavailable:
            raise  # storage or Graph down: the queue tries the message again
        except SsprError as told:  # a refusal is the person's answer: audited; their page tells it when it asks
            log.info("change %s: the agent's verdict settled as %s", request.change_id, type(told).__name__)
