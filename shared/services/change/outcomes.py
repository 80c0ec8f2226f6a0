"""What follows AD's verdict on a change, once, and what the person is told.

A verdict is settled by whoever meets it first: the request that sent the job (it waits a few seconds), the page
asking again (`GET /api/change/{id}`), or the agent's result on the results queue (functions/onprem.py), so a
person who closed the page is still signed out everywhere and told. Settling is claimed on the request's row (under
its ETag), so the sessions are revoked, the notice queued, the wrong answer counted and the outcome audited once.

- DONE: the sessions are revoked in Entra (queued for the notifications worker's retries when Graph cannot now), the
  notice is queued under an id derived from the job (mailed once whoever settles), the name's wrong answers from this
  address are forgotten; audit "Change password (self-service)" with the agent that applied it.
- NOT_ACCEPTED (a wrong current password; a disabled, unknown or unserved account): counted like any wrong answer.
- REFUSED: AD's own rule (complexity, history, minimum age) in the person's words.
- NOTHING_CHANGED, UNCONFIRMED: told so; the person may try again.
"""

from __future__ import annotations

import logging
import uuid

from shared import i18n
from shared.domain import onprem, password_change
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.clock import Clock
from shared.domain.onprem_jobs import JobResult
from shared.domain.password_change import CLOUD_CHANGE_URL, ChangeRequest, ChangeState
from shared.domain.password_targets import ONPREM_AD
from shared.errors import PasswordRejected, SsprError
from shared.onprem_errors import ChangeNotAccepted, OnPremUnavailable, OnPremUnconfirmed
from shared.services.change.answers import ChangeDone, ChangeWaiting
from shared.services.change.limits import ChangeLimits
from shared.services.change.ports import AuditWriter, ChangeQueue, NoticeAddresses, SessionRevoker
from shared.services.change.requests import ChangeRequests
from shared.services.password_targets.onprem_ad import RULES
from shared.services.reset.password import directory_refusal

log = logging.getLogger("sspr.change")

WAITING = ChangeWaiting(pending=True, retryAfterSeconds=2)
NOTICE_NAMESPACE = uuid.UUID("0d6c4a1e-7b52-4c39-8e0f-2a9d5b7c1e84")  # notice ids from job ids (one mail each)
ANONYMOUS = "anonymous"


def not_accepted(language: str) -> ChangeNotAccepted:
    detail = i18n.catalog("change", language)["notAccepted.detail"].format(cloudChangeUrl=CLOUD_CHANGE_URL)
    return ChangeNotAccepted("the user name or current password is not accepted", detail=detail)


class ChangeOutcomes:
    def __init__(self, requests: ChangeRequests, limits: ChangeLimits, revoker: SessionRevoker, queue: ChangeQueue,
                 notices: NoticeAddresses, audit: AuditWriter, clock: Clock) -> None:
        self._requests = requests
        self._limits = limits
        self._revoker = revoker
        self._queue = queue
        self._notices = notices
        self._audit = audit
        self._clock = clock

    async def settle(self, request: ChangeRequest, result: JobResult | None, language: str,
                     lost: bool = False) -> ChangeDone | ChangeWaiting:
        """Act on the job's result (None: still pending; `lost`: an agent took it and fell silent), once, and
        answer with the request's outcome."""
        if result is None and not lost:
            return WAITING
        taken = await self._requests.settling(request)
        if taken is None:  # settled already, or another request settles it now
            return await self.answer(await self._requests.read(request.change_id) or request, language)
        if result is None:
            final = await self._requests.settled(taken, ChangeState.UNCONFIRMED)
            await self._audited(final, Outcome.FAILURE, "onprem-unconfirmed")
            return await self.answer(final, language)
        state = password_change.state_of(result.verdict)
        reason = f"onprem-{result.verdict.value}"
        if state is ChangeState.DONE:
            final = await self._changed(taken, result)
            await self._audited(final, Outcome.SUCCESS, "password-changed",
                                {"target": ONPREM_AD, "appliedBy": final.applied_by or ""})
        elif state is ChangeState.NOT_ACCEPTED:
            await self._limits.failed(taken.throttle_keys)
            final = await self._requests.settled(taken, state)
            await self._audited(final, Outcome.FAILURE, reason)
        elif state is ChangeState.REFUSED:
            final = await self._requests.settled(taken, state, RULES[onprem.REFUSED_RULES[result.verdict]])
            await self._audited(final, Outcome.FAILURE, "password-refused-by-directory", {"verdict": reason})
        else:
            final = await self._requests.settled(taken, state)
            await self._audited(final, Outcome.FAILURE, reason)
        return await self.answer(final, language)

    async def answer(self, request: ChangeRequest, language: str) -> ChangeDone | ChangeWaiting:
        """The answer of a request as it stands: done, still pending, or the error that says why not."""
        state = request.state
        if state is ChangeState.PENDING:
            return WAITING
        if state is ChangeState.DONE:
            return ChangeDone(changed=True, sessionsRevoked=request.sessions_revoked is not False,
                              notified=await self._notices.masked_emails(request.user_id))
        if state is ChangeState.NOT_ACCEPTED:
            raise not_accepted(language)
        if state is ChangeState.REFUSED:
            raise PasswordRejected([directory_refusal(request.rule or "", language).model_dump()])
        if state is ChangeState.UNCONFIRMED:
            raise OnPremUnconfirmed(f"change {request.change_id}: an agent took the job and fell silent")
        raise OnPremUnavailable(f"change {request.change_id}: nothing was changed")

    async def refused_before_ad(self, username: str, keys: tuple[str, str], client_ip: str | None,
                                language: str) -> ChangeNotAccepted:
        """No account this service can change has this name: counted and audited like a wrong current password."""
        await self._limits.failed(keys)
        await self._audit.write(AuditEvent(
            time=self._clock(), activity=Activity.CHANGE_SELF_SERVICE, service=AuditService.SSPR,
            actor=Actor(id=ANONYMOUS, display=username, kind="user"), outcome=Outcome.FAILURE,
            client_ip=client_ip, reason="not-accepted", details={"username": username}))
        return not_accepted(language)

    async def rules_refused(self, username: str, client_ip: str | None) -> None:
        await self._audit.write(AuditEvent(
            time=self._clock(), activity=Activity.CHANGE_SELF_SERVICE, service=AuditService.SSPR,
            actor=Actor(id=ANONYMOUS, display=username, kind="user"), outcome=Outcome.FAILURE,
            client_ip=client_ip, reason="password-rules", details={"username": username}))

    async def _changed(self, request: ChangeRequest, result: JobResult) -> ChangeRequest:
        """The password is changed in AD: nothing below may undo that success (a failure is retried or logged)."""
        revoked = await self._revoke(request)
        job_id = onprem.change_job_id(request.change_id)
        await self._queue.password_reset(request.user_id, self._clock(), False,
                                         str(uuid.uuid5(NOTICE_NAMESPACE, job_id)), "change")
        await self._limits.succeeded(request.throttle_keys)
        return await self._requests.settled(request, ChangeState.DONE, sessions_revoked=revoked,
                                            applied_by=f"on-premises agent {result.agent_id}")

    async def _revoke(self, request: ChangeRequest) -> bool:
        try:
            await self._revoker.revoke_sessions(request.user_id)
            return True
        except SsprError as failure:
            log.warning("change %s: the sessions of user %s were not revoked (%s): queued for a retry",
                        request.change_id, request.user_id, type(failure).__name__)
        await self._queue.revoke_sessions(request.user_id, ONPREM_AD)
        return False

    async def _audited(self, request: ChangeRequest, outcome: Outcome, reason: str,
                       details: dict[str, str] | None = None) -> None:
        await self._audit.write(AuditEvent(
            time=self._clock(), activity=Activity.CHANGE_SELF_SERVICE, service=AuditService.SSPR,
            actor=Actor(id=request.user_id, display=request.username, kind="user"), outcome=outcome,
            target_user_id=request.user_id, flow_id=request.change_id, client_ip=request.client_ip, reason=reason,
            details={"username": request.username, **(details or {})}))
