"""Registering an authenticator app (TOTP) for the signed-in user, and checking its codes (security.md A10).

Registration is two steps. `start` makes a seed, keeps it sealed (AES-256-GCM, bound to the user and this setup)
in the user's one pending-setup row for 10 minutes, and returns what the app needs: the otpauth:// URI, the same
as a server-rendered QR code (SVG) and the base32 seed for typing in. `confirm` takes a code from the app; the
right code saves the method (seed sealed again, now bound to the user's method) with the code's step as its last
used step, so that very code cannot be replayed at a reset. The seed is never queued, logged or audited.

Wrong codes count toward the user's SSPR throttle (security.md G1: 5 failures in an hour block for 24 hours),
shared with the code methods. Of two parallel confirmations of one setup exactly one saves the method: the
pending row is taken under its ETag.

Checking a registered app's codes is the method's own (shared/services/methods/authenticator_app.py). The policy
and the saving of the method are SecurityInfoService's (security_info.py beside this one), shared with every other
registration flow.
"""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass

import segno

from shared.adapters.secret_box import SecretBox
from shared.domain import totp
from shared.domain.access import Principal
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock
from shared.domain.policy import Method, effective_requirements
from shared.domain.security_info import RegisteredMethod
from shared.errors import ChallengeClosed, CodeNotAccepted, MethodNotAllowed
from shared.services.registration.answers import AppSetup, Verified
from shared.services.registration.ports import AdminDirectory, AuditWriter, PendingSetups, RegistrationThrottle
from shared.services.registration.security_info import SecurityInfoService
from shared.services.registration.user import registration_event, user_of

log = logging.getLogger("sspr.registration.app")

DEFAULT_ISSUER = "SSPR"


def qr_svg(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(buffer, kind="svg", scale=4, border=4, xmldecl=False,
                                                 title="Authenticator app QR code")
    return buffer.getvalue().decode("utf-8")


@dataclass(frozen=True)
class AuthenticatorAppService:
    store: PendingSetups
    box: SecretBox
    throttle: RegistrationThrottle
    graph: AdminDirectory
    security_info: SecurityInfoService
    audit: AuditWriter
    clock: Clock

    async def start(self, principal: Principal, client_ip: str | None) -> AppSetup:
        user = user_of(principal)
        await self.throttle.ensure_not_blocked(user.id)
        await self._ensure_allowed()
        now = self.clock()
        seed = totp.new_seed()
        setup_id = str(uuid.uuid4())
        pending = totp.PendingSetup(
            user_id=user.id, setup_id=setup_id, created_at=now, expires_at=now + totp.SETUP_LIFETIME,
            sealed_seed=self.box.seal(seed, totp.pending_seed_context(user.id, setup_id)),
        )
        await self.store.put_pending_setup(pending)
        uri = totp.provisioning_uri(seed, principal.upn or user.id, await self._issuer())
        await self.audit.write(registration_event(user, Activity.REGISTERED_INFO, Method.AUTHENTICATOR_APP,
                                                  Outcome.SUCCESS, "app-setup-started", setup_id, client_ip, now))
        return AppSetup(setupId=setup_id, otpauthUri=uri, qrSvg=qr_svg(uri), secret=seed,
                        expiresAt=pending.expires_at)

    async def confirm(self, principal: Principal, setup_id: str, code: str, client_ip: str | None) -> Verified:
        user = user_of(principal)
        await self.throttle.ensure_not_blocked(user.id)
        await self._ensure_allowed()
        now = self.clock()
        pending = await self.store.pending_setup(user.id)
        if pending is None or pending.setup_id != setup_id.lower() or pending.expired(now):
            raise ChallengeClosed("no such pending authenticator app setup (unknown, replaced or expired)")
        seed = self.box.open(pending.sealed_seed, totp.pending_seed_context(user.id, pending.setup_id))
        step = totp.accepted_step(seed, code, now, last_used_step=None)
        if step is None:
            await self.throttle.record_failure(user.id, user.actor, client_ip)
            await self.audit.write(registration_event(user, Activity.REGISTERED_INFO, Method.AUTHENTICATOR_APP,
                                                      Outcome.FAILURE, "code-wrong", setup_id, client_ip, now))
            raise CodeNotAccepted("wrong authenticator app code")
        if not await self.store.take_pending_setup(pending):
            raise CodeNotAccepted("the setup was confirmed or replaced meanwhile")
        method = RegisteredMethod(Method.AUTHENTICATOR_APP, now, last_used_step=step,
                                  secret=self.box.seal(seed, totp.seed_context(user.id)))
        status = await self.security_info.save_method(user, method, pending.setup_id, client_ip)
        return Verified(method=Method.AUTHENTICATOR_APP, status=status)

    async def _ensure_allowed(self) -> None:
        policy = await self.security_info.policy()
        # Administrators keep every method but questions, so the app is allowed for them iff for everyone.
        if Method.AUTHENTICATOR_APP not in effective_requirements(policy, is_admin=False).methods_allowed:
            raise MethodNotAllowed("authenticator app not allowed by policy")

    async def _issuer(self) -> str:
        """The name the app shows above the codes: the organisation's, or "SSPR" if the directory has none."""
        organization = await self.graph.organization()
        return organization.display_name.strip() or DEFAULT_ISSUER
