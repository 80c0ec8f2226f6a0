"""The self-service password reset's steps: start, prove possession, verify, second method, new password.

The rules are in shared/domain/reset_flow.py (flow), codes.py (challenges), passwords.py (B1/B2) and
throttling.py (G1/G2); the methods are plug-ins (shared/services/methods), the directory the password goes to
is a plug-in too (shared/services/password_targets). Beside this module: state.py (the flow's row), user.py
(who the user is), challenges.py (real and decoy codes), password.py (the password step), offer.py (what is
offered and the refusal text), audit.py, answers.py (the response models), ports.py (what they all need).

Enumeration (C1-C3): `start` reads nothing about the user and answers the same for everyone. The first proof
resolves the username and keeps the result on the flow. A contact that does not match what the user registered -
or a user that does not exist, is blocked, or registered nothing - gets a decoy challenge. Who cannot reset here
(not enabled, disabled, synced, trial, too few methods) is told only after a method is proven.

Failure (F6): the directory or Storage down answers 503 and leaves the flow as it was, so the step can be retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from shared import i18n
from shared.domain import codes, reset_flow, security_questions
from shared.domain.audit import Outcome
from shared.domain.codes import ContactError, Verdict
from shared.domain.onprem_jobs import JobResult
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import FlowState, ResetFlow
from shared.errors import (
    AnswersNotAccepted,
    AppCodesPaused,
    BlockedFromSspr,
    CodeNotAccepted,
    CodeReplaced,
    FieldError,
    FlowLocked,
    FlowNotFound,
    InvalidRequest,
    MethodAlreadyVerified,
    MethodNotAllowed,
    NotFound,
    QuestionsNotAvailable,
)
from shared.services.methods import ContactCode
from shared.services.reset.answers import (
    AccessPassOffer,
    AccountUnlocked,
    ChangeWaiting,
    FlowProgress,
    FlowStarted,
    PasswordCheck,
    ProofRequested,
    QuestionText,
    ResetDone,
    ResetQuestions,
)
from shared.services.reset.audit import ResetAudit, actor
from shared.services.reset.challenges import ResetChallenges, is_real, proof_requested
from shared.services.reset.offer import ResetOffer
from shared.services.reset.pace import StepDeadline, paced
from shared.services.reset.password import ChangeStep
from shared.services.reset.ports import ProofOfWorkGate, Throttle
from shared.services.reset.state import ResetFlows
from shared.services.reset.user import UserResolver

log = logging.getLogger("sspr.reset")


class ResetService:
    """The reset's steps, each: open the flow, judge the step by the rules, change the flow, audit."""

    def __init__(self, flows: ResetFlows, pow: ProofOfWorkGate, offer: ResetOffer, throttle: Throttle,
                 users: UserResolver, challenges: ResetChallenges, password: ChangeStep, audit: ResetAudit) -> None:
        self._flows = self.flows = flows
        self._pow = pow
        self._offer = self.offer = offer
        self._methods = offer.methods
        self._throttle = throttle
        self._users = self.users = users
        self._challenges = challenges
        self._password = self.change = password
        self._audit = self.audit = audit

    @property
    def deadline(self) -> StepDeadline:
        return self._flows.deadline

    # -- 0/1. proof-of-work and start --------------------------------------------------------------------------

    def proof_of_work(self) -> dict[str, object]:
        return self._pow.challenge()

    async def start(self, username: str, altcha: str, client_ip: str | None) -> FlowStarted:
        """Create the flow; nothing about the user is read (C1): every username gets the same answer."""
        # Independent checks, concurrently: a refused proof-of-work still counts against the IP's budget.
        _, _, policy = await asyncio.gather(self._pow.spend(altcha), self._throttle.admit_flow_start(client_ip),
                                            self._offer.policy())
        flow, secret = self._flows.new(username, client_ip)
        await asyncio.gather(self._flows.save_new(flow), self._audit.progress(flow, None, Outcome.SUCCESS, "started"))
        return FlowStarted(
            flowId=flow.flow_id, flowSecret=secret, expiresInSeconds=int(reset_flow.FLOW_LIFETIME.total_seconds()),
            methods=self._offer.start_methods(policy), codeLength=codes.code_length(policy.codes),
            accessPass=AccessPassOffer(insteadOfPassword=policy.temporary_access_pass.instead_of_password,
                                       afterPassword=policy.temporary_access_pass.after_password),
        )

    # -- 2. prove possession of a contact ------------------------------------------------------------------------

    @paced
    async def request_code(self, flow_id: str, secret: str, method: Method, contact: str,
                           default_region: str | None, client_ip: str | None) -> ProofRequested:
        """Send a code to `contact` if it is what the user registered for `method`; the same answer either way."""
        flow = await self._flows.open(flow_id, secret)
        policy = await self._offer.policy()
        code_method = self._methods.contact_code(method)
        if code_method is None or method not in self._offer.start_methods(policy):
            raise MethodNotAllowed(f"{method} is not offered for proving possession by code")
        if method in flow.verified:
            raise MethodAlreadyVerified(f"{method} already verified in flow {flow_id}")
        normalised = _normalise(code_method, contact, default_region)
        # Every code request spends the channel's budgets, matched or not: a paused channel says nothing about
        # the user (G2, C1). Spending and resolving the user are independent, so they run together.
        flow, _ = await asyncio.gather(self._resolve(flow, policy),
                                       self._throttle.spend_budgets(code_method.channel, client_ip))
        user_id = flow.resolution.user_id if flow.resolution else None
        matched = blocked = False
        if user_id is not None:
            registered, blocked = await asyncio.gather(self._users.registered(user_id, method),
                                                       self._throttle.is_blocked(user_id))
            matched = code_method.same_contact(registered.contact if registered else None, normalised)
        sent = False
        if matched and user_id is not None and not blocked:
            try:
                await self._throttle.count_user_send(user_id, client_ip, actor(flow))
                sent = True
            except BlockedFromSspr:
                blocked = True  # this send crossed the limit
        # A blocked user's matched contact is kept without a code, so the code step can say they are blocked.
        step = "code-sent" if sent else "code-withheld-blocked" if matched else "contact-not-matched"
        replaced, _ = await asyncio.gather(
            self._challenges.put(flow, method, normalised if matched else None, policy, send=sent),
            self._audit.progress(flow, method, Outcome.SUCCESS if sent else Outcome.FAILURE, step),
        )
        if replaced is not None:
            await self._flows.code_replaced(flow, method, replaced)
        return proof_requested(method, policy)

    @paced
    async def resend(self, flow_id: str, secret: str, method: Method, client_ip: str | None) -> ProofRequested:
        flow = await self._flows.open(flow_id, secret)
        policy = await self._offer.policy()
        challenge = await self._challenges.get(flow, method)
        if challenge is None:
            raise NotFound(f"no code was asked for {method} in flow {flow_id}")
        if codes.is_locked(challenge):
            raise FlowLocked(f"flow {flow_id} locked")
        real = is_real(challenge)
        user_id = challenge.user_id or None
        await self._throttle.spend_budgets(challenge.channel, client_ip)
        sent = False
        if real and user_id is not None:
            try:
                await self._throttle.count_user_send(user_id, client_ip, actor(flow))
                sent = True
            except BlockedFromSspr:
                sent = False  # blocked, or this send crossed the limit: the contact is kept, no code sent
        replaced = await self._challenges.put(flow, method, challenge.contact if real else None, policy, send=sent)
        if replaced is not None:
            await self._flows.code_replaced(flow, method, replaced)
        await self._audit.progress(flow, method, Outcome.SUCCESS if sent else Outcome.FAILURE, "code-resent")
        return proof_requested(method, policy)

    # -- 3. verify a code ---------------------------------------------------------------------------------------

    @paced
    async def verify_code(self, flow_id: str, secret: str, method: Method, code: str, language: str,
                          client_ip: str | None) -> FlowProgress:
        flow = await self._flows.open(flow_id, secret)
        user_id = flow.resolution.user_id if flow.resolution else None
        if self._methods.contact_code(method) is None:
            raise CodeNotAccepted("no challenge for this method")
        challenge, blocked_until = await asyncio.gather(self._challenges.get(flow, method),
                                                        self._blocked_until(user_id))
        if challenge is None:
            raise CodeNotAccepted("no challenge for this method")
        if method in flow.verified:
            raise MethodAlreadyVerified(f"{method} already verified")
        real = is_real(challenge)
        if real and self._challenges.was_replaced(flow, method, code):
            # The code a new one replaced (A8): told so, neither a failure nor counted.
            raise CodeReplaced(f"flow {flow_id}: a replaced {method} code")
        # Every code is judged on the flow's challenge, blocked user or not: 5 wrong ones lock any flow (C7).
        verdict = await self._challenges.submit(flow, method, code)
        if verdict is Verdict.ACCEPTED and blocked_until is None:
            return await self._verified(flow, method, language)
        # Only the user's own real challenge counts against the user; a decoy's failures never do (G5).
        if verdict in (Verdict.WRONG, Verdict.LOCKED) and user_id is not None and real:
            await self._throttle.record_failure(user_id, actor(flow), client_ip)
        await self._audit.progress(flow, method, Outcome.FAILURE, f"code-{verdict.value}")
        if verdict is Verdict.LOCKED:
            await self._lock(flow, client_ip, counts_for_user=real)
            raise FlowLocked(f"flow {flow_id} locked by wrong codes")
        if real and user_id is not None:
            # The caller typed the user's registered contact: tell them plainly, with until when (G5).
            until = blocked_until or await self._throttle.blocked_until(user_id)
            if until is not None:
                raise await self._blocked(flow, until, language)
        raise CodeNotAccepted(f"code {verdict.value}")

    @paced
    async def verify_app(self, flow_id: str, secret: str, code: str, language: str,
                         client_ip: str | None) -> FlowProgress:
        """An authenticator app code proves possession in one step (A10: +/-1 step, never replayed)."""
        flow = await self._flows.open(flow_id, secret)
        policy = await self._offer.policy()
        method = Method.AUTHENTICATOR_APP
        if method not in self._offer.start_methods(policy):
            raise MethodNotAllowed("authenticator app not allowed by policy")
        if method in flow.verified:
            raise MethodAlreadyVerified("authenticator app already verified")
        flow, paused_until = await asyncio.gather(self._resolve(flow, policy),
                                                  self._throttle.app_codes_paused_until(flow.username))
        if paused_until is not None:  # USERNAME_APP_GUESSES: the same for every user name, nobody's too
            raise AppCodesPaused(paused_until, self._offer.text("blocked.appCodes", language, paused_until),
                                 _helpdesk(policy))
        user_id = flow.resolution.user_id if flow.resolution else None
        proven = False
        blocked_until = None
        if user_id is not None:
            registered, blocked_until = await asyncio.gather(self._users.registered(user_id, method),
                                                             self._throttle.blocked_until(user_id))
            if registered is not None:
                proven = await self._methods.secret(method).verify(user_id, registered, code, self._now())
        if proven and blocked_until is not None:  # the app proves it is the user: tell them (G5)
            raise await self._blocked(flow, blocked_until, language)
        if proven:
            return await self._verified(flow, method, language)
        # A wrong app code needs no contact, so it counts for the user name typed, never against the user (G5).
        await self._throttle.record_app_guess(flow.username)  # before the answer: the next attempt must see it
        await self._failed_answer(flow, method, client_ip, counts_for_user=False)
        raise CodeNotAccepted("authenticator code not accepted")

    # -- 4. security questions (a second method only) -----------------------------------------------------------

    @paced
    async def questions(self, flow_id: str, secret: str, language: str) -> ResetQuestions:
        flow = await self._flows.open(flow_id, secret)
        policy = await self._offer.policy()
        if not reset_flow.questions_possible(flow) or flow.resolution is None or flow.resolution.user_id is None:
            raise QuestionsNotAvailable("questions not available in this flow")
        user_id = flow.resolution.user_id
        if not flow.question_ids:
            registered = await self._users.registered(user_id, Method.SECURITY_QUESTIONS)
            ids = [q.id for q in security_questions.registered_questions(registered.secret if registered else None)]
            chosen = reset_flow.choose_questions(ids, policy.security_questions.reset_count)
            if len(chosen) < policy.security_questions.reset_count:
                raise QuestionsNotAvailable("fewer registered questions than the policy asks")
            flow = await self._flows.questions_chosen(flow, chosen)
        texts = {q.id: q.text for q in security_questions.available_questions(
            i18n.catalog("questions", language), policy.security_questions.custom_questions)}
        return ResetQuestions(questions=[QuestionText(id=q, text=texts.get(q, q)) for q in flow.question_ids])

    @paced
    async def answer_questions(self, flow_id: str, secret: str, answers: Mapping[str, str], language: str,
                               client_ip: str | None) -> FlowProgress:
        flow = await self._flows.open(flow_id, secret)
        method = Method.SECURITY_QUESTIONS
        if not reset_flow.questions_possible(flow) or not flow.question_ids or flow.resolution is None \
                or flow.resolution.user_id is None:
            raise QuestionsNotAvailable("ask for the questions first")
        user_id = flow.resolution.user_id
        proven = False
        registered, blocked_until = await asyncio.gather(self._users.registered(user_id, method),
                                                         self._throttle.blocked_until(user_id))
        if set(answers) == set(flow.question_ids) and registered is not None:
            proven = await self._methods.secret(method).verify(user_id, registered, dict(answers), self._now())
        if proven and blocked_until is not None:
            raise await self._blocked(flow, blocked_until, language)
        if proven:
            return await self._verified(flow, method, language)
        # Questions come only after a proven method: wrong answers count against the user.
        await self._failed_answer(flow, method, client_ip, counts_for_user=True)
        raise AnswersNotAccepted("answers not accepted")

    # -- 5. the new password ------------------------------------------------------------------------------------

    async def check_password(self, flow_id: str, secret: str, password: str, language: str) -> PasswordCheck:
        """The rules (B1, B2) without any directory call: live feedback for the page."""
        flow = await self._flows.open_ready(flow_id, secret)
        failures = await self._password.failures(flow, password, language)
        return PasswordCheck(acceptable=not failures, failures=failures)

    async def set_password(self, flow_id: str, secret: str, password: str, language: str,
                           client_ip: str | None) -> ResetDone | AccountUnlocked | ChangeWaiting:
        """The new password, made by the user's target: done, or waiting for on-premises AD's verdict."""
        flow = await self._flows.open_ready(flow_id, secret)
        return await self._password.set_password(flow, password, language, self._flows)

    async def unlock(self, flow_id: str, secret: str, language: str,
                     client_ip: str | None) -> ResetDone | AccountUnlocked | ChangeWaiting:
        """Unlock the account without a new password (on-premises AD, when the policy allows it)."""
        flow = await self._flows.open_ready(flow_id, secret)
        return await self._password.unlock(flow, await self._offer.policy(), language, self._flows)

    async def change_status(self, flow_id: str, secret: str,
                            language: str) -> ResetDone | AccountUnlocked | ChangeWaiting:
        """Where the flow's pending change stands (the page asks until its verdict is in)."""
        flow = await self._flows.open_change(flow_id, secret)
        return await self._password.status(flow, language, self._flows)

    async def settle_verdict(self, result: JobResult) -> None:
        """The on-premises agent's verdict on a flow's job (the results queue): settle the flow if it waits."""
        await self._password.settle_verdict(result, self._flows)

    # -- the flow's own steps (resolve, proven, not_proven and blocked are the passkey proof's too: passkey.py) ----

    async def not_proven(self, flow: ResetFlow, method: Method, client_ip: str | None) -> None:
        await self._failed_answer(flow, method, client_ip, counts_for_user=False)

    async def _resolve(self, flow: ResetFlow, policy: Policy) -> ResetFlow:
        """Who the username names, decided once per flow and kept (the first resolution wins)."""
        if flow.resolution is not None:
            return flow
        return await self._flows.resolved(flow, await self._users.resolve(flow.username, policy))

    async def _verified(self, flow: ResetFlow, method: Method, language: str) -> FlowProgress:
        flow = await self._flows.verified(flow, method)
        await self._audit.progress(flow, method, Outcome.SUCCESS, "verified")
        resolution = flow.resolution
        if resolution is None or resolution.user_id is None:
            raise FlowNotFound("verified without a user")  # cannot happen: decoys never verify
        if resolution.refusal is not None:  # told only now, after possession is proven
            await self._audit.outcome(flow, Outcome.FAILURE, resolution.refusal.value)
            raise await self._offer.refusal(resolution, language)
        policy = await self._offer.policy()
        offered = frozenset(self._offer.start_methods(policy)) & resolution.methods_allowed
        remaining = [m for m in reset_flow.remaining_methods(flow, offered) if m in resolution.registered]
        ready = reset_flow.ready_for_password(flow)
        # After a proof, the person may see what they registered, masked (never before one: C1, C2).
        masked = {} if ready else await self._users.masked_contacts(resolution.user_id)
        return FlowProgress(
            flowId=flow.flow_id, verified=list(flow.verified), methodsRequired=resolution.methods_required,
            next="password" if ready else "method", methods=[] if ready else remaining,
            questions=not ready and reset_flow.questions_possible(flow),
            contacts={m: masked[m] for m in remaining if m in masked},
            unlock=ready and self._password.may_unlock(flow, policy),
        )

    async def _failed_answer(self, flow: ResetFlow, method: Method, client_ip: str | None,
                             counts_for_user: bool) -> None:
        """A wrong app code or wrong answers: counted on the flow (5 lock it), and for the user when
        `counts_for_user` (USER_REAL_CHALLENGES in shared/domain/throttling.py)."""
        outcome = await self._flows.failed(flow, method)
        user_id = flow.resolution.user_id if flow.resolution and counts_for_user else None
        if user_id is not None:
            await self._throttle.record_failure(user_id, actor(flow), client_ip)
        await self._audit.progress(flow, method, Outcome.FAILURE, "wrong-answer")
        if outcome is not None and outcome[1].state is FlowState.LOCKED:
            locked_now = outcome[0]
            if locked_now and user_id is not None:  # this answer locked it: one failed flow (G1), counted once
                await self._throttle.record_failed_flow(user_id, actor(flow), client_ip)
            raise FlowLocked(f"flow {flow.flow_id} locked by wrong answers")

    async def _lock(self, flow: ResetFlow, client_ip: str | None, counts_for_user: bool) -> None:
        locked_now = await self._flows.lock(flow)
        user_id = flow.resolution.user_id if flow.resolution and counts_for_user else None
        if locked_now and user_id is not None:
            await self._throttle.record_failed_flow(user_id, actor(flow), client_ip)

    async def _blocked_until(self, user_id: str | None) -> datetime | None:
        """The end of the user's block (G1); no user, no block."""
        return None if user_id is None else await self._throttle.blocked_until(user_id)

    async def _blocked(self, flow: ResetFlow, until: datetime, language: str) -> BlockedFromSspr:
        """The block told plainly: until when, and the helpdesk (G5); audited."""
        policy = await self._offer.policy()
        await self._audit.outcome(flow, Outcome.FAILURE, "blocked-told")
        return BlockedFromSspr(f"flow {flow.flow_id}: user blocked", until,
                               self._offer.text("blocked.user", language, until), _helpdesk(policy))

    def _now(self) -> datetime:
        return self._flows.now()

    resolve = _resolve
    proven = _verified
    blocked = _blocked


def _helpdesk(policy: Policy) -> dict[str, str | None]:
    return {"url": policy.helpdesk.url, "email": policy.helpdesk.email}


def _normalise(method: ContactCode, contact: str, default_region: str | None) -> str:
    try:
        return method.normalise(contact, default_region)
    except ContactError as error:
        raise InvalidRequest([FieldError.of("contact", error.code, str(error), **error.values)]) from None
