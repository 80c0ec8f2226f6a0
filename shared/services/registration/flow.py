"""Registration of a signed-in user's security info: email, mobile and office phone verified by one-time codes,
the registration status, reconfirmation and removal.

The user is always the token's object id (never from the request). A challenge belongs to the user who started
it: any other user gets the answer an unknown challenge gets. Wrong, expired, used and unknown codes get one
and the same error (security.md C3); a locked challenge says so, since only its owner can reach it.

The policy, the admin check and every write of the summary go through SecurityInfoService
(security_info.py beside this one): fresh policy, the directory's word on admins at every decision. The code
methods (email, SMS, voice) are plug-ins found in the registry of shared/services/methods.

Audit (Entra's names): "User registered security info" for each step (code sent, verified, refused, locked,
reconfirmed) with method and outcome; "User registered all required security info" when the required count is
first met; "User deleted security info" on removal; "Blocked from self-service password reset" when the throttle
blocks. Details never hold a code or a full contact.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from shared.domain import codes, passkeys
from shared.domain.audit import Activity, AuditEvent, Outcome
from shared.domain.clock import Clock
from shared.domain.codes import Challenge, ContactError, Verdict, mask_contact
from shared.domain.ids import is_guid
from shared.domain.notifications import new_message_id
from shared.domain.policy import Method, Policy, effective_requirements
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary, registration_status
from shared.errors import (
    ChallengeClosed,
    ChallengeLocked,
    CodeNotAccepted,
    FieldError,
    InvalidRequest,
    MethodNotAllowed,
    MethodUnavailable,
    NotFound,
    NothingToConfirm,
    RemovalNeedsConfirmation,
)
from shared.services.methods import ContactCode, Methods
from shared.services.registration.answers import (
    CannotReset,
    ChallengeStarted,
    Helpdesk,
    MethodInfo,
    PasskeyInfo,
    SecurityInfoView,
    StatusInfo,
    UnavailableMethod,
    Verified,
)
from shared.services.registration.ports import (
    AuditWriter,
    CodeChallenges,
    CodeQueue,
    RegistrationThrottle,
)
from shared.services.registration.security_info import SecurityInfoService
from shared.services.registration.user import User, registration_event

log = logging.getLogger("sspr.registration")


@dataclass(frozen=True)
class RegistrationService:
    security_info: SecurityInfoService
    challenges: CodeChallenges
    throttle: RegistrationThrottle
    queue: CodeQueue
    methods: Methods
    audit: AuditWriter
    code_key: bytes
    clock: Clock

    # -- reading ---------------------------------------------------------------------------------------------

    async def overview(self, user: User) -> SecurityInfoView:
        policy = await self.security_info.policy()
        entra = await self.security_info.entra_methods(user.id)  # on demand: what Entra has now counts in the status
        info = self.security_info
        summary, methods, region, refusal = await asyncio.gather(
            info.current(user.id), info.methods(user.id), info.usage_location(user.id),
            info.standing(user.id, policy))
        allowed = self._registerable(policy, summary.is_admin)
        return SecurityInfoView(
            methods=[MethodInfo(method=m.kind, contact=mask_contact(m.contact), registeredAt=m.registered_at)
                     for m in sorted(methods, key=lambda m: m.registered_at)],
            status=self.security_info.status(summary, policy),
            cannotReset=None if refusal is None else CannotReset(
                reason=refusal.value, helpdesk=Helpdesk(url=policy.helpdesk.url, email=policy.helpdesk.email)),
            allowedMethods=sorted(allowed),
            unavailableMethods=[UnavailableMethod(method=m, reason=r) for m, r in self.methods.unavailable(allowed)],
            defaultRegion=region,
            passkeys=_passkeys(methods),
            entraMethods=[MethodInfo(method=m.kind, contact=mask_contact(m.contact), registeredAt=m.registered_at)
                          for m in entra],
        )

    # -- adding a method -------------------------------------------------------------------------------------

    async def start(self, user: User, method: Method, contact: str, default_region: str | None,
                    client_ip: str | None) -> ChallengeStarted:
        """Validate the contact, check policy and throttle, create the challenge and queue its code."""
        code_method = self.methods.contact_code(method)
        if code_method is None:
            raise MethodNotAllowed(f"{method} is not verified by code")
        policy = await self.security_info.policy()
        summary = await self.security_info.current(user.id)
        if method not in self._registerable(policy, summary.is_admin):
            raise MethodNotAllowed(f"{method} not allowed by policy")
        channel = code_method.channel
        if code_method.unavailable_reason() is not None:
            raise MethodUnavailable(code_method.unavailable_detail())
        normalised = _normalise(code_method, contact, default_region)
        if method is Method.EMAIL and codes.is_work_address(normalised, await self.security_info.work_domains()):
            raise InvalidRequest([FieldError.of(code_method.contact_field, "email.workAddress",
                                                "is a work address of this organisation: give a private one")])
        await self.throttle.admit_send(user.id, channel, client_ip, user.actor)
        now = self.clock()
        session = str(uuid.uuid4())
        message_id = new_message_id()
        challenge = codes.request_delivery(
            Challenge(partition=session, row=method.value, user_id=user.id, method=method, channel=channel,
                      contact=normalised, created_at=now),
            message_id, now,
        )
        await self.challenges.create(challenge)
        await self.queue.verification_code(challenge, message_id)
        await self._record(user, method, Outcome.SUCCESS, "code-sent", session, client_ip)
        return ChallengeStarted(challengeId=session, method=method, contact=mask_contact(normalised) or "")

    async def resend(self, user: User, challenge_id: str, client_ip: str | None) -> ChallengeStarted:
        challenge = await self._owned(user, challenge_id)
        if challenge is None:
            raise NotFound("no such challenge for this user")
        if codes.is_final(challenge):
            raise ChallengeLocked("challenge locked") if codes.is_locked(challenge) else ChallengeClosed("challenge used")
        await self.throttle.admit_send(user.id, challenge.channel, client_ip, user.actor)
        message_id = new_message_id()
        now = self.clock()
        outcome = await self.challenges.change(
            challenge.partition, challenge.row,
            lambda c: (None, c if codes.is_final(c) else codes.request_delivery(c, message_id, now)),
        )
        if outcome is None or outcome[1].message_id != message_id:
            raise ChallengeClosed("challenge finished meanwhile")
        await self.queue.verification_code(outcome[1], message_id)
        await self._record(user, challenge.method, Outcome.SUCCESS, "code-resent", challenge.partition, client_ip)
        return ChallengeStarted(challengeId=challenge.partition, method=challenge.method,
                                contact=mask_contact(challenge.contact) or "")

    async def verify(self, user: User, challenge_id: str, code: str, client_ip: str | None) -> Verified:
        await self.throttle.ensure_not_blocked(user.id)
        challenge = await self._owned(user, challenge_id)
        if challenge is None:
            await self.throttle.record_failure(user.id, user.actor, client_ip)
            raise CodeNotAccepted("unknown challenge")
        now = self.clock()
        outcome = await self.challenges.change(
            challenge.partition, challenge.row, lambda c: codes.submit(c, code, self.code_key, now)
        )
        verdict = outcome[0] if outcome else Verdict.EXPIRED
        if verdict is not Verdict.ACCEPTED:
            if verdict in (Verdict.WRONG, Verdict.LOCKED):
                await self.throttle.record_failure(user.id, user.actor, client_ip)
            await self._record(user, challenge.method, Outcome.FAILURE, f"code-{verdict.value}", challenge.partition,
                               client_ip)
            if verdict is Verdict.LOCKED:
                raise ChallengeLocked("challenge locked")
            raise CodeNotAccepted(f"code {verdict.value}")
        status = await self.security_info.save_method(
            user, RegisteredMethod(challenge.method, now, contact=challenge.contact), challenge.partition, client_ip)
        return Verified(method=challenge.method, status=status)

    # -- changing what is registered ------------------------------------------------------------------------

    async def remove(self, user: User, method: Method, confirm: bool, client_ip: str | None) -> StatusInfo:
        """Remove a registered method; one that leaves too few for a reset needs `confirm` (admins need two)."""
        policy = await self.security_info.policy()

        def without(summary: SecurityInfoSummary) -> SecurityInfoSummary:
            if method not in summary.methods:
                raise NotFound(f"{method} is not registered")
            after = summary.without_method(method)
            status_after = registration_status(after, policy, self.clock())
            if not status_after.registered and not confirm:
                raise RemovalNeedsConfirmation(status_after.required_count, len(status_after.usable_methods))
            return after

        _, saved = await self.security_info.change(user.id, without, delete=[method])
        await self.audit.write(self._event(user, Activity.DELETED_INFO, method, Outcome.SUCCESS, "deleted",
                                           None, client_ip))
        return self.security_info.status(saved, policy)

    async def reconfirm(self, user: User, client_ip: str | None) -> StatusInfo:
        policy = await self.security_info.policy()

        def confirmed(summary: SecurityInfoSummary) -> SecurityInfoSummary:
            if not summary.methods:
                raise NothingToConfirm("no methods")
            return summary.confirmed(self.clock())

        _, saved = await self.security_info.change(user.id, confirmed)
        await self._record(user, None, Outcome.SUCCESS, "reconfirmed", None, client_ip)
        return self.security_info.status(saved, policy)

    # -- helpers ---------------------------------------------------------------------------------------------

    async def _owned(self, user: User, challenge_id: str) -> Challenge | None:
        """The user's own code challenge with this id, or None (unknown, malformed, or someone else's)."""
        if not is_guid(challenge_id):
            return None
        found = [c for c in await self.challenges.in_partition(challenge_id.lower())
                 if self.methods.contact_code(c.method) is not None and c.user_id == user.id]
        return found[0] if found else None

    def _registerable(self, policy: Policy, is_admin: bool) -> frozenset[Method]:
        return effective_requirements(policy, is_admin).methods_allowed

    async def _record(self, user: User, method: Method | None, outcome: Outcome, step: str, session: str | None,
                      client_ip: str | None) -> None:
        await self.audit.write(self._event(user, Activity.REGISTERED_INFO, method, outcome, step, session, client_ip))

    def _event(self, user: User, activity: Activity, method: Method | None, outcome: Outcome, step: str,
               session: str | None, client_ip: str | None) -> AuditEvent:
        return registration_event(user, activity, method, outcome, step, session, client_ip, self.clock())


def _passkeys(methods: list[RegisteredMethod]) -> list[PasskeyInfo]:
    row = next((m for m in methods if m.kind is Method.PASSKEY), None)
    keys = passkeys.decode(row.secret if row else None)
    return [PasskeyInfo(id=p.id, name=p.name, createdAt=p.created_at, lastUsedAt=p.last_used_at, backedUp=p.backed_up)
            for p in (keys.passkeys if keys else ())]


def _normalise(method: ContactCode, contact: str, default_region: str | None) -> str:
    try:
        return method.normalise(contact, default_region)
    except ContactError as error:
        raise InvalidRequest([FieldError.of(method.contact_field, error.code, str(error), **error.values)]) from None
