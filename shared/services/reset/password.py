"""The change step: a new password (the rules in context, B1/B2), or an unlock without one, made by the user's
password target; and the settling of a change whose verdict comes later (on-premises AD through the agent).

Nothing changes in the flow until the target has made the change and the notice is queued, so there is never a
success without its notice, nor a "done" flow whose password was not set. The step is claimed on the flow's row
(under its ETag) before the target is called: of any number of parallel requests one makes the change and queues
one notice; the others are told the step is already running (409).

Once the password is set it is set: what follows must happen whatever fails. Ending the user's sessions is tried
at once; when the target cannot (Graph down), the step does not fail (that would tell a user whose password was
changed that it was not, and hold the claim for its lease): it queues the revoke, which the notifications worker
retries until the target takes it (then poison, for an operator), and the answer says `sessionsRevoked: false`.
The notice is queued either way (B4: a reset is always told; F6: no half state is left behind).

A change the target cannot answer at once stays the flow's pending change. Whoever meets its verdict first settles
it, once: the person's page asking again (`status`), or the agent's result on its queue (`settle_verdict`), so a
person who closed the page is still signed out everywhere and told.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from shared import i18n
from shared.domain import onprem
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock
from shared.domain.onprem_jobs import JobKind, JobResult
from shared.domain.password_targets import ENTRA
from shared.domain.policy import Policy
from shared.domain.reset_flow import ChangeKind, FlowState, PendingChange, ResetFlow
from shared.errors import DependencyUnavailable, FlowNotFound, MethodNotAllowed, PasswordRejected, SsprError
from shared.services.password_targets.base import (
    HISTORY,
    MINIMUM_AGE,
    AccountUnlocker,
    Applied,
    Change,
    ChangePending,
    PasswordRefused,
    PasswordTarget,
    PasswordTargets,
    TargetFailed,
)
from shared.services.reset.answers import AccountUnlocked, ChangeWaiting, PasswordFailureInfo, ResetDone
from shared.services.reset.audit import ResetAudit
from shared.services.reset.ports import ResetQueue, Throttle
from shared.services.reset.state import SETTLE_LEASE, ResetFlows
from shared.services.reset.user import UserResolver

log = logging.getLogger("sspr.reset")

WAITING = ChangeWaiting(pending=True, retryAfterSeconds=2)
NOTICE_NAMESPACE = uuid.UUID("5b1e5c0a-3f7e-4d2b-9a51-6f0c2d7e9b13")  # notice ids from attempt ids (one mail each)

Answer = ResetDone | AccountUnlocked | ChangeWaiting


class ChangeStep:
    def __init__(self, users: UserResolver, targets: PasswordTargets, queue: ResetQueue, throttle: Throttle,
                 audit: ResetAudit, clock: Clock, lifetime: timedelta = timedelta(minutes=1)) -> None:
        self._users = users
        self._targets = targets
        self._queue = queue
        self._throttle = throttle
        self._audit = audit
        self._clock = clock
        self._lifetime = lifetime  # how long a change may wait for its target before it can never apply

    async def failures(self, flow: ResetFlow, password: str, language: str) -> list[PasswordFailureInfo]:
        """Every rule the password breaks, in the user's language; no directory call."""
        from shared.adapters.common_passwords import common_passwords
        from shared.domain.passwords import PasswordContext, check_password, password_messages

        tenant = await self._users.tenant_facts()
        names = flow.resolution.names if flow.resolution else None
        context = PasswordContext(tenant_name=tenant.name, upn=flow.username,
                                  given_name=names.given_name if names else "",
                                  surname=names.surname if names else "",
                                  display_name=names.display_name if names else "")
        failures = check_password(password, context, common_passwords())
        return [PasswordFailureInfo(rule=m["rule"], message=m["message"])
                for m in password_messages(failures, language)]

    def may_unlock(self, flow: ResetFlow, policy: Policy) -> bool:
        """Unlock without a reset: the policy allows it and the user's directory can (on-premises AD)."""
        target = flow.resolution.target if flow.resolution else None
        return policy.on_premises.unlock_without_reset and target is not None \
            and self._targets.unlocker(target) is not None

    # -- the changes --------------------------------------------------------------------------------------------

    async def set_password(self, flow: ResetFlow, password: str, language: str, flows: ResetFlows) -> Answer:
        """Check the rules, claim the step, have the user's target set the password; settle it when it answers."""
        failures = await self.failures(flow, password, language)
        if failures:
            await self._audit.outcome(flow, Outcome.FAILURE, "password-rules")
            raise PasswordRejected([f.model_dump() for f in failures])
        target = self._target(flow)
        claimed = await flows.claim_change(flow, ChangeKind.PASSWORD, _attempt_id(flow, JobKind.RESET), self._lifetime)
        return await self._made(claimed, lambda change: target.set_password(change, password), language, flows)

    async def unlock(self, flow: ResetFlow, policy: Policy, language: str, flows: ResetFlows) -> Answer:
        if not self.may_unlock(flow, policy):
            raise MethodNotAllowed("unlocking without a reset is not offered to this user")
        unlocker = self._unlocker(flow)
        claimed = await flows.claim_change(flow, ChangeKind.UNLOCK, _attempt_id(flow, JobKind.UNLOCK), self._lifetime)
        return await self._made(claimed, unlocker.unlock, language, flows)

    async def status(self, flow: ResetFlow, language: str, flows: ResetFlows) -> Answer:
        """Where the flow's last change stands, for the page that waits for it; settles it when its verdict is in."""
        pending = flow.pending
        if pending is None:
            raise FlowNotFound("no change in this flow")
        if flow.state is FlowState.COMPLETED:
            return await self._done_answer(flow)
        if flow.state is not FlowState.ACTIVE:
            raise FlowNotFound("flow locked")
        if pending.settling_at is not None and self._clock() < pending.settling_at + SETTLE_LEASE:
            return WAITING
        return await self._made(flow, self._outcome_of(flow), language, flows, claimed_here=False)

    async def settle_verdict(self, result: JobResult, flows: ResetFlows) -> None:
        """The agent's verdict on a flow's job, from the results queue: settle the flow if it still waits for it."""
        flow_id = onprem.flow_of_job(result.job_id)
        flow = await flows.read(flow_id) if flow_id else None
        if flow is None or flow.pending is None or flow.pending.attempt_id != result.job_id \
                or flow.state is not FlowState.ACTIVE:
            return
        try:
            await self._made(flow, self._outcome_of(flow), "en", flows, claimed_here=False)
        except DependencyUnavailable:
            raise  # storage or Graph down: the queue tries the message again
        except SsprError as told:  # a refusal or failure: audited; the person's page tells it when it asks
            log.info("flow %s: the agent's verdict settled as %s", flow.flow_id, type(told).__name__)

    # -- one change, from the target's answer to the settled flow ----------------------------------------------

    async def _made(self, flow: ResetFlow, make: Callable[[Change], Awaitable[Applied]], language: str,
                    flows: ResetFlows, claimed_here: bool = True) -> Answer:
        """Run `make(change)` against the target and act on its answer: settle, refuse, fail, or wait."""
        change = _change(flow)
        try:
            applied = await make(change)
        except ChangePending:
            return WAITING
        except PasswordRefused as refused:
            if await self._give_back(flow, flows, claimed_here, "password-refused-by-directory"):
                raise PasswordRejected([directory_refusal(refused.rule, language).model_dump()]) from None
            return WAITING
        except TargetFailed as failure:
            if await self._give_back(flow, flows, claimed_here, failure.reason):
                raise failure.error from None
            return WAITING
        except BaseException:
            if claimed_here:
                await flows.release_change(flow)
            raise
        return await self._settle(flow, applied, flows)

    async def _give_back(self, flow: ResetFlow, flows: ResetFlows, claimed_here: bool, reason: str) -> bool:
        """Nothing changed: free the step for another try and audit why; False when another request does it."""
        if not claimed_here:
            taken = await flows.settling(flow.flow_id, _pending(flow).attempt_id)
            if taken is None:
                return False
            flow = taken
        await flows.release_change(flow)
        await self._audit.outcome(flow, Outcome.FAILURE, reason, activity=_activity(flow))
        return True

    async def _settle(self, flow: ResetFlow, applied: Applied, flows: ResetFlows) -> Answer:
        """The change is made: end the sessions (a new password), queue the notice, complete the flow, once."""
        pending = _pending(flow)
        taken = await flows.settling(flow.flow_id, pending.attempt_id)
        if taken is None:  # another request is settling it (or has): the change is made either way
            return await self._done_answer(flow)
        user_id = _user_id(taken)
        target = self._target(taken)
        revoked = pending.kind is not ChangeKind.PASSWORD or await self._revoke_sessions(taken, target, user_id)
        now = self._clock()
        is_admin = bool(taken.resolution and taken.resolution.is_admin)
        await self._queue.password_reset(user_id, now, is_admin, str(uuid.uuid5(NOTICE_NAMESPACE, pending.attempt_id)),
                                         "reset" if pending.kind is ChangeKind.PASSWORD else "unlock")
        await flows.completed(taken, now)
        await self._throttle.clear(user_id)
        step = "password-set" if pending.kind is ChangeKind.PASSWORD else "account-unlocked"
        await self._audit.outcome(taken, Outcome.SUCCESS, step, activity=_activity(taken),
                                  details={"target": target.name, "appliedBy": applied.by})
        return await self._done_answer(taken, revoked)

    async def _revoke_sessions(self, flow: ResetFlow, target: PasswordTarget, user_id: str) -> bool:
        """End the user's sessions now (True), or queue it for the worker's retries when the target cannot (False)."""
        try:
            await target.revoke_sessions(user_id)
            return True
        except (SsprError, TargetFailed) as failure:  # the password is set already: this may not undo the success
            log.warning("flow %s: the sessions of user %s were not revoked (%s): queued for a retry",
                        flow.flow_id, user_id, type(failure).__name__)
        await self._queue.revoke_sessions(user_id, target.name)
        await self._audit.progress(flow, None, Outcome.FAILURE, "sessions-revoke-queued")
        return False

    async def _done_answer(self, flow: ResetFlow, sessions_revoked: bool = True) -> Answer:
        """The answer of a finished change. Asked again after another request settled it, a reset answers that the
        sessions ended: the revoke was made, or queued for the worker's retries."""
        notified = await self._users.masked_emails(_user_id(flow))
        if _pending(flow).kind is ChangeKind.UNLOCK:
            return AccountUnlocked(unlocked=True, notified=notified)
        return ResetDone(reset=True, sessionsRevoked=sessions_revoked, notified=notified)

    def _outcome_of(self, flow: ResetFlow) -> Callable[[Change], Awaitable[Applied]]:
        if _pending(flow).kind is ChangeKind.UNLOCK:
            return self._unlocker(flow).outcome
        return self._target(flow).outcome

    def _target(self, flow: ResetFlow) -> PasswordTarget:
        resolution = flow.resolution
        if resolution is None or resolution.user_id is None:
            raise FlowNotFound("a change without a user")  # ready_for_password already refused this
        return self._targets.get(resolution.target or ENTRA)

    def _unlocker(self, flow: ResetFlow) -> AccountUnlocker:
        unlocker = self._targets.unlocker(self._target(flow).name)
        if unlocker is None:
            raise MethodNotAllowed("this user's directory cannot unlock an account")
        return unlocker


def _attempt_id(flow: ResetFlow, kind: JobKind) -> Callable[[int], str]:
    """The n-th try's id: the flow's id with the kind and number (shared/domain/onprem.flow_job_id)."""
    return lambda attempt: onprem.flow_job_id(flow.flow_id, kind, attempt)


def _pending(flow: ResetFlow) -> PendingChange:
    if flow.pending is None:
        raise FlowNotFound("no change in this flow")
    return flow.pending


def _user_id(flow: ResetFlow) -> str:
    return flow.resolution.user_id if flow.resolution and flow.resolution.user_id else ""


def _change(flow: ResetFlow) -> Change:
    pending = _pending(flow)
    resolution = flow.resolution
    return Change(user_id=_user_id(flow), attempt_id=pending.attempt_id, expires_at=pending.expires_at,
                  on_premises=resolution.on_premises if resolution else None)


def _activity(flow: ResetFlow) -> Activity:
    kind = flow.pending.kind if flow.pending else ChangeKind.PASSWORD
    if kind is ChangeKind.UNLOCK:
        return Activity.UNLOCK_SELF_SERVICE
    return Activity.RESET_HELPDESK_LINK if flow.helpdesk else Activity.RESET_SELF_SERVICE


def directory_refusal(rule: str, language: str) -> PasswordFailureInfo:
    texts = i18n.catalog("reset", language)
    if rule == HISTORY:  # a directory that keeps the password history (on-premises AD) said it was used before
        return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_HISTORY", message=texts["password.directoryHistory"])
    if rule == MINIMUM_AGE:  # AD's minimum password age: the password was changed too recently
        return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_MINIMUM_AGE", message=texts["password.directoryMinimumAge"])
    return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_POLICY", message=texts["password.directoryRefused"])
