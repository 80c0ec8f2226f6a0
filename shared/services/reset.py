"""The self-service password reset: start, prove possession, verify, second method, new password (issue 5).

The rules are in shared/domain/reset_flow.py (flow), codes.py (challenges), passwords.py (B1/B2) and
throttling.py (G1/G2); this module runs them against the stores, Graph and the notifications queue.

Enumeration (C1-C3): `start` reads nothing about the user and answers the same for everyone. The first proof
resolves the username (Graph + tables) and keeps the result on the flow. A contact that does not match what the
user registered - or a user that does not exist, is blocked, or registered nothing - gets a decoy challenge: the
same rows, the same answers, the same lock after 5 wrong codes, but no code is sent and none can match. Who cannot
reset here (not enabled, disabled, synced, trial, too few methods) is told only after a method is proven.

Failure (F6): Graph or Storage down answers 503 and leaves the flow as it was, so the step can be retried; the
password step changes nothing in the flow until Graph has set the password, revoked sessions and the notice is
queued, so there is never a success without its notice, nor a "done" flow whose password was not set.

Audit (Entra's names): "Self-service password reset flow activity progress" per step, "Reset password
(self-service)" for the outcome, "Blocked from self-service password reset" from the throttle. Never a code,
answer, password or full contact.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared import i18n
from shared.adapters.audit_store import AuditStore
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.graph import GraphGateway, ResetUser
from shared.adapters.notification_queue import NotificationQueue
from shared.adapters.phone import PhoneSender
from shared.adapters.proof_of_work import ProofOfWork
from shared.adapters.reset_store import ResetFlowStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain import codes, reset_flow, security_questions
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.codes import CHANNEL_OF_METHOD, Challenge, Channel, ContactError, Verdict, mask_contact
from shared.domain.eligibility import LicenceCatalog
from shared.domain.enablement import is_enabled
from shared.domain.ids import is_guid
from shared.domain.notifications import new_message_id
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import FlowState, Refusal, ResetFlow, Resolution
from shared.domain.security_info import RegisteredMethod
from shared.errors import (
    AnswersNotAccepted,
    BlockedFromSspr,
    CannotResetHere,
    CodeNotAccepted,
    FieldError,
    FlowLocked,
    FlowNotFound,
    GraphError,
    InvalidRequest,
    MethodAlreadyVerified,
    MethodNotAllowed,
    MethodsMissing,
    NotFound,
    PasswordRejected,
    QuestionsNotAvailable,
)
from shared.services.policy import PolicyCache
from shared.services.registration_app import AuthenticatorAppCodes
from shared.services.throttle import ThrottleService

log = logging.getLogger("sspr.reset")

Clock = Callable[[], datetime]
ANONYMOUS = Actor(id="anonymous", display="self-service password reset", kind="user")
TENANT_FACTS_TTL = 600.0  # seconds: subscriptions and SKUs change rarely; a reset reads them once per 10 minutes


# ---- answers (the OpenAPI document uses them too) ----------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class FlowStarted(_Body):
    """The same for every username but the two random values (C1); methods are the policy's, not the user's."""

    flowId: str
    flowSecret: str
    expiresInSeconds: int
    methods: list[Method]
    codeLength: int


class ProofRequested(_Body):
    """The same whether or not the contact matched: a code is on its way only if it did."""

    method: Method
    codeLength: int
    expiresInSeconds: int


class FlowProgress(_Body):
    flowId: str
    verified: list[Method]
    methodsRequired: int
    next: Literal["method", "password"]
    methods: list[Method]
    questions: bool


class QuestionText(_Body):
    id: str
    text: str


class ResetQuestions(_Body):
    questions: list[QuestionText]


class PasswordFailureInfo(_Body):
    rule: str
    message: str


class PasswordCheck(_Body):
    acceptable: bool
    failures: list[PasswordFailureInfo]


class ResetDone(_Body):
    reset: bool
    sessionsRevoked: bool
    notified: list[str]


@dataclass(frozen=True)
class _TenantFacts:
    name: str
    paid: bool
    licences: LicenceCatalog
    read_at: float


class ResetService:
    def __init__(self, flows: ResetFlowStore, pow: ProofOfWork, policies: PolicyCache, graph: GraphGateway,
                 security_info: SecurityInfoStore, enablement: EnablementStore, throttle: ThrottleService,
                 queue: NotificationQueue, phone: PhoneSender, app_codes: AuthenticatorAppCodes, audit: AuditStore,
                 code_key: bytes, register_url: str, clock: Clock) -> None:
        self._flows = flows
        self._challenges = flows.challenges
        self._pow = pow
        self._policies = policies
        self._graph = graph
        self._info = security_info
        self._enablement = enablement
        self._throttle = throttle
        self._queue = queue
        self._phone = phone
        self._app = app_codes
        self._audit = audit
        self._key = code_key
        self._register_url = register_url
        self._clock = clock
        self._tenant: _TenantFacts | None = None

    # -- 0/1. proof-of-work and start --------------------------------------------------------------------------

    def proof_of_work(self) -> dict[str, object]:
        return self._pow.challenge()

    async def start(self, username: str, altcha: str, client_ip: str | None) -> FlowStarted:
        """Create the flow; nothing about the user is read (C1): every username gets the same answer."""
        # Independent checks, concurrently: a refused proof-of-work still counts against the IP's budget.
        _, _, policy = await asyncio.gather(self._pow.spend(altcha), self._throttle.admit_flow_start(client_ip),
                                            self._policies.get())
        now = self._clock()
        flow_id = str(uuid.uuid4())
        secret = reset_flow.new_flow_secret()
        flow = ResetFlow(flow_id=flow_id, secret_digest=reset_flow.secret_digest(self._key, flow_id, secret),
                         username=reset_flow.normalise_username(username), created_at=now, client_ip=client_ip)
        await asyncio.gather(self._flows.create(flow), self._progress(flow, None, Outcome.SUCCESS, "started"))
        return FlowStarted(
            flowId=flow_id, flowSecret=secret, expiresInSeconds=int(reset_flow.FLOW_LIFETIME.total_seconds()),
            methods=reset_flow.start_methods(policy, self._sendable()), codeLength=codes.code_length(policy.codes),
        )

    # -- 2. prove possession of a contact ------------------------------------------------------------------------

    async def request_code(self, flow_id: str, secret: str, method: Method, contact: str,
                           default_region: str | None, client_ip: str | None) -> ProofRequested:
        """Send a code to `contact` if it is what the user registered for `method`; the same answer either way."""
        flow = await self._open(flow_id, secret)
        policy = await self._policies.get()
        if method not in reset_flow.CONTACT_METHODS or method not in reset_flow.start_methods(policy, self._sendable()):
            raise MethodNotAllowed(f"{method} is not offered for proving possession by code")
        if method in flow.verified:
            raise MethodAlreadyVerified(f"{method} already verified in flow {flow_id}")
        normalised = _normalise(method, contact, default_region)
        # Every code request spends the channel's budgets, matched or not: a paused channel says nothing about
        # the user (G2, C1). Spending and resolving the user are independent, so they run together.
        flow, _ = await asyncio.gather(self._resolve(flow, policy),
                                       self._throttle.spend_budgets(CHANNEL_OF_METHOD[method], client_ip))
        user_id = flow.resolution.user_id if flow.resolution else None
        matched = blocked = False
        if user_id is not None:
            registered, blocked = await asyncio.gather(self._registered_contact(user_id, method),
                                                       self._throttle.is_blocked(user_id))
            matched = registered == _key(normalised)
        sent = False
        if matched and user_id is not None and not blocked:
            try:
                await self._throttle.count_user_send(user_id, client_ip, _actor(flow))
                sent = True
            except BlockedFromSspr:
                sent = False  # this send crossed the limit: from now on, the generic answer
        await asyncio.gather(
            self._put_challenge(flow, method, normalised if sent else None, policy),
            self._progress(flow, method, Outcome.SUCCESS if sent else Outcome.FAILURE,
                           "code-sent" if sent else "contact-not-matched"),
        )
        return self._proof_requested(method, policy)

    async def resend(self, flow_id: str, secret: str, method: Method, client_ip: str | None) -> ProofRequested:
        flow = await self._open(flow_id, secret)
        policy = await self._policies.get()
        challenge = await self._challenges.get(flow.flow_id, method.value)
        if challenge is None:
            raise NotFound(f"no code was asked for {method} in flow {flow_id}")
        if codes.is_locked(challenge):
            raise FlowLocked(f"flow {flow_id} locked")
        real = bool(challenge.contact)
        user_id = challenge.user_id or None
        await self._throttle.spend_budgets(challenge.channel, client_ip)
        if real and user_id is not None:
            try:
                await self._throttle.count_user_send(user_id, client_ip, _actor(flow))
            except BlockedFromSspr:
                real = False
        await self._put_challenge(flow, method, challenge.contact if real else None, policy)
        await self._progress(flow, method, Outcome.SUCCESS if real else Outcome.FAILURE, "code-resent")
        return self._proof_requested(method, policy)

    # -- 3. verify a code ---------------------------------------------------------------------------------------

    async def verify_code(self, flow_id: str, secret: str, method: Method, code: str, language: str,
                          client_ip: str | None) -> FlowProgress:
        flow = await self._open(flow_id, secret)
        user_id = flow.resolution.user_id if flow.resolution else None
        if method not in CHANNEL_OF_METHOD:
            raise CodeNotAccepted("no challenge for this method")
        challenge, blocked = await asyncio.gather(
            self._challenges.get(flow.flow_id, method.value),
            self._throttle.is_blocked(user_id) if user_id is not None else _false(),
        )
        if challenge is None:
            raise CodeNotAccepted("no challenge for this method")
        if method in flow.verified:
            raise MethodAlreadyVerified(f"{method} already verified")
        if blocked:
            raise CodeNotAccepted("user blocked")  # G1: the generic answer for 24 h, nothing judged
        now = self._clock()
        outcome = await self._challenges.change(flow.flow_id, method.value, lambda c: codes.submit(c, code, self._key, now))
        verdict = outcome[0] if outcome else Verdict.EXPIRED
        if verdict is Verdict.ACCEPTED:
            return await self._verified(flow, method, language, client_ip)
        if verdict in (Verdict.WRONG, Verdict.LOCKED) and user_id is not None:
            await self._throttle.record_failure(user_id, _actor(flow), client_ip)
        await self._progress(flow, method, Outcome.FAILURE, f"code-{verdict.value}")
        if verdict is Verdict.LOCKED:
            await self._lock(flow, client_ip)
            raise FlowLocked(f"flow {flow_id} locked by wrong codes")
        raise CodeNotAccepted(f"code {verdict.value}")

    async def verify_app(self, flow_id: str, secret: str, code: str, language: str,
                         client_ip: str | None) -> FlowProgress:
        """An authenticator app code proves possession in one step (A10: +/-1 step, never replayed)."""
        flow = await self._open(flow_id, secret)
        policy = await self._policies.get()
        method = Method.AUTHENTICATOR_APP
        if method not in reset_flow.start_methods(policy, self._sendable()):
            raise MethodNotAllowed("authenticator app not allowed by policy")
        if method in flow.verified:
            raise MethodAlreadyVerified("authenticator app already verified")
        flow = await self._resolve(flow, policy)
        user_id = flow.resolution.user_id if flow.resolution else None
        step: int | None = None
        if user_id is not None and not await self._throttle.is_blocked(user_id):
            registered = await self._registered(user_id, method)
            if registered is not None:
                step = await self._app.verify_totp(user_id, registered, code, self._clock())
        if step is not None:
            return await self._verified(flow, method, language, client_ip)
        await self._failed_answer(flow, method, client_ip)
        raise CodeNotAccepted("authenticator code not accepted")

    # -- 4. security questions (a second method only) -----------------------------------------------------------

    async def questions(self, flow_id: str, secret: str, language: str) -> ResetQuestions:
        flow = await self._open(flow_id, secret)
        policy = await self._policies.get()
        if not reset_flow.questions_possible(flow) or flow.resolution is None or flow.resolution.user_id is None:
            raise QuestionsNotAvailable("questions not available in this flow")
        user_id = flow.resolution.user_id
        if not flow.question_ids:
            registered = await self._registered(user_id, Method.SECURITY_QUESTIONS)
            ids = [q.id for q in security_questions.registered_questions(registered.secret if registered else None)]
            chosen = reset_flow.choose_questions(ids, policy.security_questions.reset_count)
            if len(chosen) < policy.security_questions.reset_count:
                raise QuestionsNotAvailable("fewer registered questions than the policy asks")
            outcome = await self._flows.change(flow.flow_id, lambda f: (None, f if f.question_ids
                                                                          else replace(f, question_ids=chosen)))
            if outcome is None:
                raise FlowNotFound("flow vanished")
            flow = outcome[1]
        texts = {q.id: q.text for q in security_questions.available_questions(
            i18n.catalog("questions", language), policy.security_questions.custom_questions)}
        return ResetQuestions(questions=[QuestionText(id=q, text=texts.get(q, q)) for q in flow.question_ids])

    async def answer_questions(self, flow_id: str, secret: str, answers: Mapping[str, str], language: str,
                               client_ip: str | None) -> FlowProgress:
        flow = await self._open(flow_id, secret)
        method = Method.SECURITY_QUESTIONS
        if not reset_flow.questions_possible(flow) or not flow.question_ids or flow.resolution is None \
                or flow.resolution.user_id is None:
            raise QuestionsNotAvailable("ask for the questions first")
        user_id = flow.resolution.user_id
        ok = False
        if set(answers) == set(flow.question_ids) and not await self._throttle.is_blocked(user_id):
            registered = await self._registered(user_id, method)
            if registered is not None:
                ok = await asyncio.to_thread(security_questions.answers_match, registered.secret, dict(answers),
                                             len(flow.question_ids))
        if ok:
            return await self._verified(flow, method, language, client_ip)
        await self._failed_answer(flow, method, client_ip)
        raise AnswersNotAccepted("answers not accepted")

    # -- 5. the new password ------------------------------------------------------------------------------------

    async def check_password(self, flow_id: str, secret: str, password: str, language: str) -> PasswordCheck:
        """The rules (B1, B2) without any Graph call: live feedback for the page."""
        flow = await self._ready(await self._open(flow_id, secret))
        failures = await self._password_failures(flow, password, language)
        return PasswordCheck(acceptable=not failures, failures=failures)

    async def set_password(self, flow_id: str, secret: str, password: str, language: str,
                           client_ip: str | None) -> ResetDone:
        flow = await self._ready(await self._open(flow_id, secret))
        assert flow.resolution is not None and flow.resolution.user_id is not None
        user_id, is_admin = flow.resolution.user_id, flow.resolution.is_admin
        failures = await self._password_failures(flow, password, language)
        if failures:
            await self._outcome(flow, Outcome.FAILURE, "password-rules")
            raise PasswordRejected([f.model_dump() for f in failures])
        try:
            await self._graph.set_password(user_id, password)
        except GraphError as error:
            if error.status == 400:
                await self._outcome(flow, Outcome.FAILURE, "password-refused-by-directory")
                raise PasswordRejected([_directory_refusal(language).model_dump()]) from None
            await self._outcome(flow, Outcome.FAILURE, f"directory-error-{error.status}")
            raise
        await self._graph.revoke_sessions(user_id)
        now = self._clock()
        await self._queue.password_reset(user_id, now, is_admin)
        outcome = await self._flows.change(flow.flow_id, lambda f: (None, reset_flow.completed(f, now)))
        if outcome is None:
            log.warning("flow %s vanished after its password was set", flow.flow_id)
        await self._throttle.clear(user_id)
        await self._outcome(flow, Outcome.SUCCESS, "password-set")
        emails = [mask_contact(m.contact) or "" for m in await self._info.methods(user_id)
                  if m.kind is Method.EMAIL and m.contact]
        return ResetDone(reset=True, sessionsRevoked=True, notified=emails)

    # -- helpers: the flow ----------------------------------------------------------------------------------------

    async def _open(self, flow_id: str, secret: str) -> ResetFlow:
        """The flow this secret opens: FlowNotFound for unknown, wrong-secret, expired or finished; FlowLocked."""
        if not is_guid(flow_id) or not secret or len(secret) > 128:
            raise FlowNotFound("malformed flow id or secret")
        flow = await self._flows.get(flow_id.lower())
        if flow is None or not reset_flow.secret_matches(flow, self._key, secret):
            raise FlowNotFound("unknown flow or wrong secret")
        if reset_flow.is_expired(flow, self._clock()) or flow.state is FlowState.COMPLETED:
            raise FlowNotFound("flow expired or finished")
        if flow.state is FlowState.LOCKED:
            raise FlowLocked(f"flow {flow.flow_id} locked")
        return flow

    async def _ready(self, flow: ResetFlow) -> ResetFlow:
        """A13: the password step of a flow whose required methods are not all verified is refused, no Graph."""
        if not reset_flow.ready_for_password(flow):
            raise MethodsMissing(f"flow {flow.flow_id} has not verified its required methods")
        return flow

    async def _resolve(self, flow: ResetFlow, policy: Policy) -> ResetFlow:
        """Who the username names, decided once per flow and kept (the first resolution wins)."""
        if flow.resolution is not None:
            return flow
        resolution = await self._resolution(flow.username, policy)
        outcome = await self._flows.change(flow.flow_id, lambda f: (None, reset_flow.resolved(f, resolution)))
        if outcome is None:
            raise FlowNotFound("flow vanished")
        return outcome[1]

    async def _resolution(self, username: str, policy: Policy) -> Resolution:
        user = await self._graph.reset_user(username) if _plausible_username(username) else None
        if user is None:
            return Resolution(user_id=None)
        roles, summary, row, tenant = await asyncio.gather(
            self._graph.directory_roles(user.id), self._info.summary(user.id),
            self._enablement.get_enablement(user.id), self._tenant_facts(),
        )
        is_admin = bool(roles)
        required, allowed = reset_flow.requirements_for(policy, is_admin)
        usable = summary.methods & allowed
        refusal = reset_flow.refusal_for(
            enabled=is_enabled(row), account_enabled=user.account_enabled, synced=user.synced,
            has_premium=tenant.licences.has_premium(user.licenses), paid_tenant=tenant.paid,
            usable_methods=len(usable), methods_required=required,
        )
        return Resolution(user_id=user.id, is_admin=is_admin, registered=frozenset(summary.methods), refusal=refusal,
                          methods_required=required, methods_allowed=allowed,
                          context=_context_words(user))

    async def _tenant_facts(self) -> _TenantFacts:
        facts = self._tenant
        if facts is None or time.monotonic() - facts.read_at > TENANT_FACTS_TTL:
            organization, subscriptions, skus = await asyncio.gather(
                self._graph.organization(), self._graph.subscriptions(), self._graph.subscribed_skus())
            paid = any(s.active and not s.is_trial for s in subscriptions)
            facts = _TenantFacts(organization.display_name, paid, LicenceCatalog(skus), time.monotonic())
            self._tenant = facts
        return facts

    async def _verified(self, flow: ResetFlow, method: Method, language: str, client_ip: str | None) -> FlowProgress:
        outcome = await self._flows.change(flow.flow_id, lambda f: (None, reset_flow.record_verified(f, method)))
        if outcome is None:
            raise FlowNotFound("flow vanished")
        flow = outcome[1]
        await self._progress(flow, method, Outcome.SUCCESS, "verified")
        resolution = flow.resolution
        if resolution is None or resolution.user_id is None:
            raise FlowNotFound("verified without a user")  # cannot happen: decoys never verify
        if resolution.refusal is not None:  # told only now, after possession is proven
            await self._outcome(flow, Outcome.FAILURE, resolution.refusal.value)
            policy = await self._policies.get()
            raise CannotResetHere(resolution.refusal.value, self._refusal_text(resolution, language),
                                  {"url": policy.helpdesk.url, "email": policy.helpdesk.email})
        policy = await self._policies.get()
        offered = frozenset(reset_flow.start_methods(policy, self._sendable())) & resolution.methods_allowed
        remaining = [m for m in reset_flow.remaining_methods(flow, offered) if m in resolution.registered]
        ready = reset_flow.ready_for_password(flow)
        return FlowProgress(
            flowId=flow.flow_id, verified=list(flow.verified), methodsRequired=resolution.methods_required,
            next="password" if ready else "method", methods=[] if ready else remaining,
            questions=not ready and reset_flow.questions_possible(flow),
        )

    async def _failed_answer(self, flow: ResetFlow, method: Method, client_ip: str | None) -> None:
        """A wrong app code or wrong answers: counted on the flow (5 lock it) and for the user (G1)."""
        def counted(f: ResetFlow) -> tuple[bool, ResetFlow]:
            updated = reset_flow.record_failure(f, method)
            return f.state is FlowState.ACTIVE and updated.state is FlowState.LOCKED, updated

        outcome = await self._flows.change(flow.flow_id, counted)
        user_id = flow.resolution.user_id if flow.resolution else None
        if user_id is not None:
            await self._throttle.record_failure(user_id, _actor(flow), client_ip)
        await self._progress(flow, method, Outcome.FAILURE, "wrong-answer")
        if outcome is not None and outcome[1].state is FlowState.LOCKED:
            if outcome[0] and user_id is not None:  # this answer locked it: one failed flow (G1), counted once
                await self._throttle.record_failed_flow(user_id, _actor(flow), client_ip)
            raise FlowLocked(f"flow {flow.flow_id} locked by wrong answers")

    async def _lock(self, flow: ResetFlow, client_ip: str | None) -> None:
        outcome = await self._flows.change(flow.flow_id, lambda f: (f.state is FlowState.ACTIVE, reset_flow.lock(f)))
        user_id = flow.resolution.user_id if flow.resolution else None
        if outcome is not None and outcome[0] and user_id is not None:
            await self._throttle.record_failed_flow(user_id, _actor(flow), client_ip)

    # -- helpers: challenges ------------------------------------------------------------------------------------

    async def _put_challenge(self, flow: ResetFlow, method: Method, contact: str | None, policy: Policy) -> None:
        """A real challenge (`contact` given: its code is queued) or a decoy (no code sent, none can match).

        A new request for the same method replaces the code but keeps the failure count (A8); a locked one stays
        locked (A9)."""
        now = self._clock()
        channel = CHANNEL_OF_METHOD[method]
        ttl = codes.code_ttl(policy.codes, channel)
        user_id = flow.resolution.user_id if flow.resolution and flow.resolution.user_id else ""
        message_id = new_message_id()

        def renewed(current: Challenge | None) -> Challenge:
            base = current or Challenge(partition=flow.flow_id, row=method.value, user_id=user_id, method=method,
                                        channel=channel, contact="", created_at=now)
            if contact is not None:
                return codes.request_delivery(replace(base, contact=contact, user_id=user_id, code_digest=None,
                                                      expires_at=None), message_id, now)
            # A decoy: a digest no code produces, alive as long as a real code would be.
            return replace(base, contact="", code_digest=secrets.token_hex(32), sent_at=now, expires_at=now + ttl,
                           send_count=base.send_count + 1, message_id=None, delivery=codes.Delivery.DELIVERED,
                           delivery_at=now)

        existing = await self._challenges.get(flow.flow_id, method.value)
        if existing is None:
            stored = renewed(None)
            await self._challenges.create(stored)
        else:
            def rule(current: Challenge) -> tuple[bool, Challenge]:
                if codes.is_final(current):
                    return False, current
                return True, renewed(current)

            outcome = await self._challenges.change(flow.flow_id, method.value, rule)
            if outcome is None or not outcome[0]:
                raise FlowLocked(f"flow {flow.flow_id}: the {method} challenge is finished")
            stored = outcome[1]
        if contact is not None:
            await self._queue.verification_code(stored, message_id, store="reset")

    def _proof_requested(self, method: Method, policy: Policy) -> ProofRequested:
        ttl = codes.code_ttl(policy.codes, CHANNEL_OF_METHOD[method])
        return ProofRequested(method=method, codeLength=codes.code_length(policy.codes),
                              expiresInSeconds=int(ttl.total_seconds()))

    async def _registered(self, user_id: str, method: Method) -> RegisteredMethod | None:
        return next((m for m in await self._info.methods(user_id) if m.kind is method), None)

    async def _registered_contact(self, user_id: str, method: Method) -> str | None:
        registered = await self._registered(user_id, method)
        return _key(registered.contact) if registered and registered.contact else None

    def _sendable(self) -> frozenset[Method]:
        """Methods this deployment can deliver: email and the app always; phones only with a provider."""
        methods = {Method.EMAIL, Method.AUTHENTICATOR_APP}
        if self._phone.can_send(Channel.SMS):
            methods.add(Method.MOBILE_PHONE)
        if self._phone.can_send(Channel.VOICE):
            methods.add(Method.OFFICE_PHONE)
        return frozenset(methods)

    # -- helpers: passwords, texts, audit ------------------------------------------------------------------------

    async def _password_failures(self, flow: ResetFlow, password: str, language: str) -> list[PasswordFailureInfo]:
        from shared.adapters.common_passwords import common_passwords
        from shared.domain.passwords import PasswordContext, check_password, password_messages

        tenant = await self._tenant_facts()
        words = flow.resolution.context if flow.resolution else ()
        context = PasswordContext(tenant_name=tenant.name, upn=flow.username, given_name=_word(words, 0),
                                  surname=_word(words, 1), display_name=_word(words, 2))
        failures = check_password(password, context, common_passwords())
        return [PasswordFailureInfo(rule=m["rule"], message=m["message"])
                for m in password_messages(failures, language)]

    def _refusal_text(self, resolution: Resolution, language: str) -> str:
        texts = i18n.catalog("reset", language)
        refusal = resolution.refusal or Refusal.NOT_ENABLED
        return texts[f"refusal.{refusal.value}"].format(required=resolution.methods_required,
                                                        registerUrl=self._register_url)

    async def _progress(self, flow: ResetFlow, method: Method | None, outcome: Outcome, step: str) -> None:
        await self._audit.write(self._event(flow, Activity.FLOW_PROGRESS, method, outcome, step))

    async def _outcome(self, flow: ResetFlow, outcome: Outcome, step: str) -> None:
        await self._audit.write(self._event(flow, Activity.RESET_SELF_SERVICE, None, outcome, step))

    def _event(self, flow: ResetFlow, activity: Activity, method: Method | None, outcome: Outcome,
               step: str) -> AuditEvent:
        user_id = flow.resolution.user_id if flow.resolution else None
        return AuditEvent(time=self._clock(), activity=activity, service=AuditService.SSPR, actor=_actor(flow),
                          outcome=outcome, target_user_id=user_id, method=method.value if method else None,
                          flow_id=flow.flow_id, client_ip=flow.client_ip, reason=step,
                          details={"step": step, "username": flow.username})


async def _false() -> bool:
    return False


def _actor(flow: ResetFlow) -> Actor:
    """The person resetting is not signed in: the actor is who they claim to be, marked unauthenticated."""
    user_id = flow.resolution.user_id if flow.resolution and flow.resolution.user_id else None
    return Actor(id=user_id or ANONYMOUS.id, display=flow.username, kind="user") if user_id else ANONYMOUS


def _plausible_username(username: str) -> bool:
    """Only something shaped like a UPN is looked up (no paths, no query characters reach Graph's URL)."""
    local, at, domain = username.partition("@")
    return bool(local and at and "." in domain) and all(c not in username for c in "/\\?#%&'\" ") \
        and len(username) <= 113


def _context_words(user: ResetUser) -> tuple[str, ...]:
    return (user.given_name, user.surname, user.display_name)


def _word(words: tuple[str, ...], index: int) -> str:
    return words[index] if index < len(words) else ""


def _key(contact: str | None) -> str | None:
    """Contacts compare case-insensitively (email) or as E.164 (phones, already normalised)."""
    return contact.casefold() if contact else None


def _normalise(method: Method, contact: str, default_region: str | None) -> str:
    field = "contact"
    try:
        if method is Method.EMAIL:
            return codes.normalise_email(contact)
        return codes.normalise_phone(contact, method, default_region)
    except ContactError as error:
        raise InvalidRequest([FieldError(field, str(error))]) from None


def _directory_refusal(language: str) -> PasswordFailureInfo:
    texts = i18n.catalog("reset", language)
    return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_POLICY", message=texts["password.directoryRefused"])
