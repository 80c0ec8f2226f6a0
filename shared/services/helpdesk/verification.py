"""Proving who is calling: the agent starts a verification for a caller found in the directory, sends a one-time
code to one of the user's registered contacts (picked by method, never typed) or asks for the authenticator app's
current code, and types back what the caller reads. The code rules are the reset's (HMAC, single use, expiry, five
wrong answers lock: shared/domain/codes.py); the limits are HELPDESK_LIMITS per caller and per agent, plus the
channels' send budgets (G2).

Every step is audited with the agent as the actor; a verified caller is told on every address they have.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain import codes, helpdesk
from shared.domain.audit import Actor, Outcome
from shared.domain.clock import Clock
from shared.domain.codes import CHANNEL_OF_METHOD, Challenge, Verdict
from shared.domain.helpdesk import Verification, VerificationState
from shared.domain.notifications import new_message_id
from shared.domain.policy import Method
from shared.errors import ChallengeLocked, CodeNotAccepted, Forbidden, MethodNotAllowed, NotFound
from shared.helpdesk_errors import HelpdeskPaused
from shared.services.helpdesk.answers import CodeSent, VerificationView
from shared.services.helpdesk.audit import HelpdeskAudit, masked
from shared.services.helpdesk.caller import CallerFacts, masked_methods
from shared.services.helpdesk.ports import (
    HelpdeskQueue,
    HelpdeskThrottle,
    PolicySource,
    VerificationRows,
)
from shared.services.methods import Methods
from shared.services.reset.ports import SecurityInfoReader

NOTICE_NAMESPACE = uuid.UUID("0f4d5b7e-6a0e-4c8f-9d52-3b7a1e9c4d21")  # notice ids: one mail per event


def notice_id(verification_id: str, event: str, n: int = 0) -> str:
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{verification_id}|{event}|{n}"))


@dataclass(frozen=True)
class Verifications:
    """The verification's row: started, opened by its agent only, and each change under its ETag."""

    rows: VerificationRows
    code_key: bytes
    clock: Clock

    def now(self) -> datetime:
        return self.clock()

    async def open(self, verification_id: str, agent: Actor, allow_locked: bool = False) -> Verification:
        """The agent's own live verification: another agent's, an expired or unknown one is NotFound (the same
        answer); a locked one is ChallengeLocked."""
        found = await self.rows.get(verification_id.lower())
        if found is None or not helpdesk.belongs_to(found, agent.id) or helpdesk.is_expired(found, self.clock()):
            raise NotFound("no such verification of this agent")
        if found.state is VerificationState.LOCKED and not allow_locked:
            raise ChallengeLocked(f"verification {verification_id} locked")
        return found

    async def change(self, verification: Verification, rule: Callable[[Verification], Verification]) -> Verification:
        outcome = await self.rows.change(verification.verification_id, lambda v: (None, rule(v)))
        if outcome is None:
            raise NotFound("verification vanished")
        return outcome[1]

    async def submit(self, verification: Verification, method: Method, code: str) -> Verdict:
        """Judge a code read back on the method's challenge; a challenge that is gone counts as expired."""
        now = self.clock()
        outcome = await self.rows.challenges.change(
            verification.verification_id, method.value, lambda c: codes.submit(c, code, self.code_key, now))
        return outcome[0] if outcome else Verdict.EXPIRED


@dataclass(frozen=True)
class HelpdeskVerification:
    verifications: Verifications
    facts: CallerFacts
    security_info: SecurityInfoReader
    methods: Methods
    throttle: HelpdeskThrottle
    queue: HelpdeskQueue
    policies: PolicySource
    audit: HelpdeskAudit

    async def start(self, agent: Actor, user_id: str, client_ip: str | None) -> VerificationView:
        """A new verification of the caller `user_id`, by this agent (never of the agent's own account)."""
        if helpdesk.agent_is_caller(agent.id, user_id):
            raise Forbidden("an agent never verifies their own account")
        user, policy = await asyncio.gather(self.facts.user(user_id), self.policies.get())
        caller = await self.facts.caller(user, policy)
        verification = Verification(verification_id=str(uuid.uuid4()), agent_id=agent.id, agent_name=agent.display,
                                    caller=caller, created_at=self.verifications.now())
        await self.verifications.rows.create(verification)
        await self.audit.verification(verification, agent, Outcome.SUCCESS, "started", client_ip=client_ip)
        return await self.view(verification)

    async def status(self, agent: Actor, verification_id: str) -> VerificationView:
        return await self.view(await self.verifications.open(verification_id, agent, allow_locked=True))

    async def view(self, verification: Verification) -> VerificationView:
        methods = await self.security_info.methods(verification.user_id)
        policy = await self.policies.get()
        deliverable = self.methods.deliverable()
        caller = verification.caller
        return VerificationView(
            verificationId=verification.verification_id, userId=caller.user_id, displayName=caller.display_name,
            userPrincipalName=caller.user_principal_name, state=verification.state.value,
            verifiedWith=verification.method, expiresAt=verification.expires_at.isoformat(),
            codeMethods=masked_methods([m for m in methods if m.kind in helpdesk.CODE_METHODS and m.contact
                                        and m.kind in deliverable]),
            appCode=any(m.kind is Method.AUTHENTICATOR_APP for m in methods),
            passkey=Method.PASSKEY in deliverable and any(m.kind is Method.PASSKEY for m in methods),
            passkeyAsked=verification.passkey_asked_at is not None, privileged=caller.privileged,
            fourEyes=helpdesk.needs_four_eyes(verification, policy.helpdesk.privileged_callers),
            actions=await self.facts.offers(verification, methods), done=list(verification.done),
        )

    async def send_code(self, agent: Actor, verification_id: str, method: Method, client_ip: str | None) -> CodeSent:
        """A code to the contact the user registered for `method`; the same throttles as a reset's send."""
        verification = await self.verifications.open(verification_id, agent)
        code_method = self.methods.contact_code(method)
        if code_method is None or method not in helpdesk.CODE_METHODS:
            raise MethodNotAllowed(f"{method} is not a method a code is sent to")
        registered = next((m for m in await self.security_info.methods(verification.user_id)
                           if m.kind is method and m.contact), None)
        if registered is None or registered.contact is None:
            raise MethodNotAllowed(f"the user registered no {method}")
        if verification.state is VerificationState.VERIFIED:
            raise MethodNotAllowed("the caller is verified already")
        await self.throttle.helpdesk_paused(verification.user_id, agent.id)
        await self.throttle.spend_budgets(code_method.channel, client_ip)
        try:
            await self.throttle.count_helpdesk_send(verification.user_id, agent, client_ip)
        except HelpdeskPaused:
            await self.audit.verification(verification, agent, Outcome.FAILURE, "paused", method, client_ip)
            raise
        policy = await self.policies.get()
        challenge, message_id = await self._renewed(verification, method, registered.contact)
        await self.queue.verification_code(challenge, message_id, store="helpdesk")
        await self.audit.verification(verification, agent, Outcome.SUCCESS, "code-sent", method, client_ip,
                                      contact=masked(registered.contact))
        ttl = codes.code_ttl(policy.codes, CHANNEL_OF_METHOD[method])
        return CodeSent(method=method, contact=masked(registered.contact), codeLength=codes.code_length(policy.codes),
                        expiresInSeconds=int(ttl.total_seconds()))

    async def _renewed(self, verification: Verification, method: Method, contact: str) -> tuple[Challenge, str]:
        """The method's challenge with a new code asked of the worker: the last code stops working, the failures
        stay (A8), a locked challenge stays locked (A9)."""
        now = self.verifications.now()
        rows = self.verifications.rows.challenges
        message_id = new_message_id()
        partition = verification.verification_id
        fresh = Challenge(partition=partition, row=method.value, user_id=verification.user_id, method=method,
                          channel=CHANNEL_OF_METHOD[method], contact=contact, created_at=now)
        if await rows.get(partition, method.value) is None:
            stored = codes.request_delivery(fresh, message_id, now)
            await rows.create(stored)
            return stored, message_id

        def renew(current: Challenge) -> tuple[bool, Challenge]:
            if codes.is_final(current):
                return False, current
            return True, codes.request_delivery(replace(current, contact=contact, code_digest=None, expires_at=None),
                                                message_id, now)

        outcome = await rows.change(partition, method.value, renew)
        if outcome is None or not outcome[0]:
            raise ChallengeLocked(f"verification {partition}: the {method} challenge is finished")
        return outcome[1], message_id

    async def verify(self, agent: Actor, verification_id: str, method: Method, code: str,
                     client_ip: str | None) -> VerificationView:
        """The code the caller read back: verified, or one wrong answer more (five lock the verification)."""
        verification = await self.verifications.open(verification_id, agent)
        if verification.state is VerificationState.VERIFIED:
            return await self.view(verification)
        if method is Method.AUTHENTICATOR_APP:
            proven = await self._app_code(verification, code)
            if not proven:
                locked = await self.verifications.change(verification,
                                                         lambda v: helpdesk.record_failure(v, method))
                return await self._wrong(locked, agent, method, client_ip, locked.state is VerificationState.LOCKED)
        else:
            verdict = await self._submit(verification, method, code)
            if verdict in (Verdict.WRONG, Verdict.LOCKED):
                if verdict is Verdict.LOCKED:
                    verification = await self.verifications.change(verification, helpdesk.lock)
                return await self._wrong(verification, agent, method, client_ip, verdict is Verdict.LOCKED)
            if verdict is not Verdict.ACCEPTED:
                await self.audit.verification(verification, agent, Outcome.FAILURE, f"code-{verdict.value}",
                                              method, client_ip)
                raise CodeNotAccepted(f"code {verdict.value}")
        now = self.verifications.now()
        verified = await self.verifications.change(verification, lambda v: helpdesk.record_verified(v, method, now))
        await self.audit.verification(verified, agent, Outcome.SUCCESS, "verified", method, client_ip)
        await self.queue.helpdesk_notice(verified.verification_id, verified.user_id, "verified", now,
                                         notice_id(verified.verification_id, "verified"))
        return await self.view(verified)

    async def _submit(self, verification: Verification, method: Method, code: str) -> Verdict:
        if method not in helpdesk.CODE_METHODS:
            raise MethodNotAllowed(f"{method} cannot verify a caller")
        return await self.verifications.submit(verification, method, code)

    async def _app_code(self, verification: Verification, code: str) -> bool:
        registered = next((m for m in await self.security_info.methods(verification.user_id)
                           if m.kind is Method.AUTHENTICATOR_APP), None)
        if registered is None:
            raise MethodNotAllowed("the user registered no authenticator app")
        return await self.methods.secret(Method.AUTHENTICATOR_APP).verify(
            verification.user_id, registered, code, self.verifications.now())

    async def _wrong(self, verification: Verification, agent: Actor, method: Method, client_ip: str | None,
                     locked: bool) -> VerificationView:
        await self.throttle.record_helpdesk_failure(verification.user_id, agent, client_ip)
        await self.audit.verification(verification, agent, Outcome.FAILURE, "locked" if locked else "wrong-code",
                                      method, client_ip)
        if locked:
            raise ChallengeLocked(f"verification {verification.verification_id} locked by wrong codes")
        raise CodeNotAccepted("wrong code read back")
