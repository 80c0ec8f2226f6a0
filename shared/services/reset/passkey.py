"""The passkey proof of a reset: a challenge the same for every username, then the assertion (security.md I1, I2).

`options` reads nothing about the user: the challenge is random, `allowCredentials` is empty (discoverable
credentials), so its answer tells nothing about whether the username has passkeys (I2). The challenge is kept on
the flow's row, replaced by the next request, used up by the first answer (`take_passkey_challenge`, under the
row's ETag) and dead after 5 minutes or with the flow. `verify` resolves the username (the first proof), finds the
credential the assertion names among the user's passkeys - the user handle must be the user's too - lets the
method check the ceremony, then moves the stored sign counter forward under the method row's ETag: a counter
that does not move is a cloned authenticator, and is refused. Every refusal is one answer (`PasskeyNotAccepted`),
counted on the flow (5 lock it) but never against the user: a passkey needs no secret a stranger could guess.
Both steps answer at the flow's deadline (C6).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fido2.utils import websafe_decode, websafe_encode

from shared.domain import passkeys
from shared.domain.audit import Outcome
from shared.domain.passkeys import UserPasskeys
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import ResetFlow
from shared.errors import BlockedFromSspr, MethodAlreadyVerified, MethodNotAllowed
from shared.recovery_errors import PasskeyNotAccepted
from shared.services.methods.passkey import PasskeyMethod, PasskeyRefused, Proven
from shared.services.reset.answers import FlowProgress, PasskeyRequest
from shared.services.reset.audit import ResetAudit
from shared.services.reset.offer import ResetOffer
from shared.services.reset.pace import StepDeadline, paced
from shared.services.reset.state import ResetFlows
from shared.services.reset.user import UserResolver

log = logging.getLogger("sspr.reset")

CHALLENGE_BYTES = 32


class ProofSteps(Protocol):
    """What the passkey proof shares with every other proof (ResetService)."""

    async def resolve(self, flow: ResetFlow, policy: Policy) -> ResetFlow: ...

    async def proven(self, flow: ResetFlow, method: Method, language: str) -> FlowProgress: ...

    async def not_proven(self, flow: ResetFlow, method: Method, client_ip: str | None) -> None: ...

    async def blocked(self, flow: ResetFlow, until: datetime, language: str) -> BlockedFromSspr: ...


class BlockedUntil(Protocol):
    async def blocked_until(self, user_id: str) -> datetime | None: ...


class PasskeyRows(Protocol):
    async def change_passkeys(self, user_id: str, rule: Any) -> bool: ...


@dataclass(frozen=True)
class ResetPasskeys:
    flows: ResetFlows
    offer: ResetOffer
    method: PasskeyMethod
    users: UserResolver
    rows: PasskeyRows
    steps: ProofSteps
    throttle: BlockedUntil
    audit: ResetAudit

    @property
    def deadline(self) -> StepDeadline:
        return self.flows.deadline

    async def _open(self, flow_id: str, secret: str) -> tuple[ResetFlow, Policy]:
        flow = await self.flows.open(flow_id, secret)
        policy = await self.offer.policy()
        if Method.PASSKEY not in self.offer.start_methods(policy):
            raise MethodNotAllowed("passkeys are not offered")
        if Method.PASSKEY in flow.verified:
            raise MethodAlreadyVerified("passkey already verified")
        return flow, policy

    @paced
    async def options(self, flow_id: str, secret: str) -> PasskeyRequest:
        """A fresh challenge for navigator.credentials.get, listing no credential: the same for everyone (I2)."""
        flow, _ = await self._open(flow_id, secret)
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        await self.flows.passkey_challenge(flow, websafe_encode(challenge))
        return PasskeyRequest(publicKey=self.method.request_options(challenge)["publicKey"])

    @paced
    async def verify(self, flow_id: str, secret: str, response: Mapping[str, Any], language: str,
                     client_ip: str | None) -> FlowProgress:
        flow, policy = await self._open(flow_id, secret)
        challenge, flow = await asyncio.gather(self.flows.take_passkey_challenge(flow),
                                               self.steps.resolve(flow, policy))
        user_id = flow.resolution.user_id if flow.resolution else None
        try:
            if challenge is None:
                raise PasskeyRefused("no open challenge (never asked, already used or expired)")
            await self._prove(user_id, websafe_decode(challenge), response)
        except PasskeyRefused as refused:
            log.info("flow %s: passkey refused: %s", flow.flow_id, refused.reason)
            await self.audit.progress(flow, Method.PASSKEY, Outcome.FAILURE, "passkey-refused")
            await self.steps.not_proven(flow, Method.PASSKEY, client_ip)
            raise PasskeyNotAccepted(f"passkey refused: {refused.reason}") from None
        assert user_id is not None  # _prove refuses nobody
        until = await self.throttle.blocked_until(user_id)
        if until is not None:  # the passkey proves it is the user: tell them plainly (G5)
            raise await self.steps.blocked(flow, until, language)
        return await self.steps.proven(flow, Method.PASSKEY, language)

    async def _prove(self, user_id: str | None, challenge: bytes, response: Mapping[str, Any]) -> None:
        if user_id is None:
            self.method.assertion(response)  # the same parsing work for nobody as for a user
            raise PasskeyRefused("the username names nobody")
        registered = await self.users.registered(user_id, Method.PASSKEY)
        await prove_passkey(self.method, self.rows, user_id, registered.secret if registered else None, challenge,
                            response, self.flows.now())


async def prove_passkey(method: PasskeyMethod, rows: PasskeyRows, user_id: str, registered: str | None,
                        challenge: bytes, response: Mapping[str, Any], now: datetime) -> None:
    """The assertion is one of `user_id`'s passkeys (`registered`: their stored passkeys), made for `challenge`
    with user verification, and its sign counter moves forward (stored under the row's ETag); else PasskeyRefused.
    Shared by the reset's proof and the helpdesk's confirmation on the user's own device."""
    assertion = method.assertion(response)
    keys = passkeys.decode(registered)
    if keys is None or assertion.user_handle != keys.handle:
        raise PasskeyRefused("not a passkey of this user")
    passkey = keys.find(assertion.credential_id)
    if passkey is None:
        raise PasskeyRefused("unknown or removed passkey")
    proven = method.verify(challenge, passkey, response)

    def used(current: UserPasskeys) -> UserPasskeys:
        stored = current.find(passkey.id)
        if stored is None:
            raise PasskeyRefused("passkey removed meanwhile")
        _check(stored, proven)
        return current.replaced(passkeys.after_use(stored, proven.sign_count, proven.backed_up, now))

    if not await rows.change_passkeys(user_id, used):
        raise PasskeyRefused("passkeys removed meanwhile")


def _check(stored: passkeys.Passkey, proven: Proven) -> None:
    if not passkeys.sign_counter_moves_forward(stored.sign_count, proven.sign_count):
        raise PasskeyRefused(f"sign counter went back ({proven.sign_count} after {stored.sign_count}): a clone")
    if not passkeys.backup_flags_valid(stored, proven.backup_eligible, proven.backed_up):
        raise PasskeyRefused("backup flags changed")
