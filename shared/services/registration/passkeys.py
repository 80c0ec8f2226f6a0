"""Registering a signed-in user's passkeys: several per user, each named and removable (security.md I1).

`begin` makes a random challenge and keeps it, with the user handle the credential is created under, in the user's
one pending row for 5 minutes; the options ask for a discoverable credential with user verification, and exclude
the user's existing passkeys. `finish` takes the pending row under its ETag (one completion wins), lets the
method check the ceremony (challenge, the pages' origin, RP id, user present and verified) and adds the passkey to
the user's `passkey` method row in the same ETag'd write as the summary. `remove` takes one passkey away; taking
the last one removes the method, and one that leaves too few methods for a reset needs `confirm`, as for every
method.

The user handle is random (never the object id, WebAuthn 14.6.1) and the same for all of a user's passkeys; it
is how a reset knows the assertion belongs to the username typed. Audit: Entra's "User registered security info"
and "User deleted security info", with the passkey's name, never its key.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fido2.utils import websafe_decode, websafe_encode

from shared.adapters.passkey_store import PasskeyStore, PendingPasskey
from shared.domain import passkeys
from shared.domain.access import Principal
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock
from shared.domain.passkeys import MAX_PASSKEYS, Passkey, UserPasskeys
from shared.domain.policy import Method, effective_requirements
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary, registration_status
from shared.errors import (
    ChallengeClosed,
    FieldError,
    InvalidRequest,
    MethodNotAllowed,
    MethodUnavailable,
    NotFound,
    RemovalNeedsConfirmation,
)
from shared.recovery_errors import PasskeyNotAccepted, PasskeysFull
from shared.services.methods.passkey import PasskeyMethod, PasskeyRefused
from shared.services.registration.answers import PasskeyOptions, StatusInfo, Verified
from shared.services.registration.ports import AuditWriter, RegistrationThrottle
from shared.services.registration.security_info import SecurityInfoService
from shared.services.registration.user import User, registration_event, user_of

log = logging.getLogger("sspr.registration.passkeys")

SETUP_LIFETIME = timedelta(minutes=5)
CHALLENGE_BYTES = 32


def _keys_of(methods: list[RegisteredMethod]) -> UserPasskeys | None:
    row = next((m for m in methods if m.kind is Method.PASSKEY), None)
    return passkeys.decode(row.secret if row else None)


@dataclass(frozen=True)
class PasskeyRegistration:
    info: SecurityInfoService
    store: PasskeyStore
    method: PasskeyMethod
    throttle: RegistrationThrottle
    audit: AuditWriter
    clock: Clock

    async def begin(self, principal: Principal, client_ip: str | None) -> PasskeyOptions:
        user = user_of(principal)
        await self.throttle.ensure_not_blocked(user.id)
        await self._ensure_allowed()
        keys = _keys_of(await self.info.methods(user.id))
        if keys is not None and len(keys.passkeys) >= MAX_PASSKEYS:
            raise PasskeysFull(f"user {user.id} has {MAX_PASSKEYS} passkeys")
        handle = keys.handle if keys else websafe_encode(secrets.token_bytes(passkeys.USER_HANDLE_BYTES))
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        now = self.clock()
        setup_id = str(uuid.uuid4())
        await self.store.put_pending(PendingPasskey(user.id, setup_id, websafe_encode(challenge), handle,
                                                    now + SETUP_LIFETIME), now)
        name = principal.upn or user.id
        options = self.method.creation_options(handle, name, principal.name or name,
                                               list(keys.passkeys) if keys else [], challenge)
        await self._record(user, Outcome.SUCCESS, "passkey-setup-started", setup_id, client_ip)
        return PasskeyOptions(setupId=setup_id, publicKey=options["publicKey"])

    async def finish(self, principal: Principal, setup_id: str, name: str, response: Mapping[str, Any],
                     client_ip: str | None) -> Verified:
        user = user_of(principal)
        await self.throttle.ensure_not_blocked(user.id)
        await self._ensure_allowed()
        if problem := passkeys.name_problem(name):
            raise InvalidRequest([FieldError.of("name", "passkey.name", problem, max=passkeys.MAX_NAME_LENGTH)])
        now = self.clock()
        pending = await self.store.pending(user.id)
        if pending is None or pending.setup_id != setup_id.lower() or now >= pending.expires_at \
                or not await self.store.take_pending(pending):
            raise ChallengeClosed("no such pending passkey registration (unknown, replaced, used or expired)")
        try:
            new = self.method.registered(websafe_decode(pending.challenge), response)
        except PasskeyRefused as refused:
            log.info("user %s: passkey registration refused: %s", user.id, refused.reason)
            await self._record(user, Outcome.FAILURE, "passkey-refused", setup_id, client_ip)
            raise PasskeyNotAccepted(refused.reason) from None
        passkey = Passkey(id=new.id, name=name.strip(), credential=new.credential, sign_count=new.sign_count,
                          backup_eligible=new.backup_eligible, backed_up=new.backed_up, created_at=now)

        def add(summary: SecurityInfoSummary, methods: list[RegisteredMethod]) -> tuple[
                SecurityInfoSummary, list[RegisteredMethod], list[Method]]:
            keys = _keys_of(methods) or UserPasskeys(handle=pending.handle)
            if keys.handle != pending.handle or keys.find(passkey.id) is not None:
                raise PasskeyNotAccepted("the passkey is registered already, or under another handle")
            if len(keys.passkeys) >= MAX_PASSKEYS:
                raise PasskeysFull(f"user {user.id} has {MAX_PASSKEYS} passkeys")
            row = RegisteredMethod(Method.PASSKEY, now, secret=passkeys.encode(keys.added(passkey)))
            return summary.with_method(Method.PASSKEY, now), [row], []

        before, saved = await self.info.change_methods(user.id, add)
        status = await self.info.audit_saved(user, Method.PASSKEY, before, saved, setup_id, client_ip)
        return Verified(method=Method.PASSKEY, status=status)

    async def remove(self, principal: Principal, credential_id: str, confirm: bool,
                     client_ip: str | None) -> StatusInfo:
        """Remove one passkey; the last one removes the method (with `confirm` when that leaves too few)."""
        user = user_of(principal)
        policy = await self.info.policy()
        now = self.clock()

        def take(summary: SecurityInfoSummary, methods: list[RegisteredMethod]) -> tuple[
                SecurityInfoSummary, list[RegisteredMethod], list[Method]]:
            keys = _keys_of(methods)
            if keys is None or keys.find(credential_id) is None:
                raise NotFound("no such passkey")
            left = keys.without(credential_id)
            if left.passkeys:
                row = next(m for m in methods if m.kind is Method.PASSKEY)
                return summary, [RegisteredMethod(Method.PASSKEY, row.registered_at,
                                                  secret=passkeys.encode(left))], []
            after = summary.without_method(Method.PASSKEY)
            status_after = registration_status(after, policy, now)
            if not status_after.registered and not confirm:
                raise RemovalNeedsConfirmation(status_after.required_count, len(status_after.usable_methods))
            return after, [], [Method.PASSKEY]

        _, saved = await self.info.change_methods(user.id, take)
        await self.audit.write(registration_event(user, Activity.DELETED_INFO, Method.PASSKEY, Outcome.SUCCESS,
                                                  "passkey-deleted", None, client_ip, now))
        return self.info.status(saved, policy)

    async def _ensure_allowed(self) -> None:
        reason = self.method.unavailable_reason()
        if reason is not None:
            raise MethodUnavailable(reason)
        policy = await self.info.policy()
        if Method.PASSKEY not in effective_requirements(policy, is_admin=False).methods_allowed:
            raise MethodNotAllowed("passkeys not allowed by policy")

    async def _record(self, user: User, outcome: Outcome, step: str, session: str | None,
                      client_ip: str | None) -> None:
        await self.audit.write(registration_event(user, Activity.REGISTERED_INFO, Method.PASSKEY, outcome, step,
                                                  session, client_ip, self.clock()))
