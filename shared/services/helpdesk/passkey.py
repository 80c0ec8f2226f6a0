"""A passkey confirmation on the user's own device (PASSKEY_ON_OWN_DEVICE in shared/domain/helpdesk.py): the agent
asks, the user gets a mail on their registered address with a link to their own reset page, and confirms there
with one of their passkeys (issue 17's WebAuthn ceremony, shared/services/reset/passkey.py `prove_passkey`): user
verification required, the challenge bound to this verification and used once, the user handle the caller's, the
sign counter moving forward. The caller proves possession of their authenticator; nothing they say is used.

The page's two calls are anonymous (the user is not signed in): they name the verification, and every refusal is
one answer, counted on the verification (5 lock it) and against the caller and the agent (HELPDESK_LIMITS).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fido2.utils import websafe_decode, websafe_encode

from shared.domain import helpdesk
from shared.domain.audit import Actor, Outcome
from shared.domain.helpdesk import Verification, VerificationState
from shared.domain.notifications import new_message_id
from shared.domain.policy import Method
from shared.errors import MethodNotAllowed, NotFound
from shared.recovery_errors import PasskeyNotAccepted
from shared.services.helpdesk.audit import HelpdeskAudit
from shared.services.helpdesk.ports import HelpdeskQueue, HelpdeskThrottle
from shared.services.helpdesk.verification import Verifications, notice_id
from shared.services.methods.passkey import PasskeyMethod, PasskeyRefused
from shared.services.reset.answers import PasskeyRequest
from shared.services.reset.passkey import PasskeyRows, prove_passkey
from shared.services.reset.ports import SecurityInfoReader

CHALLENGE_BYTES = 32


@dataclass(frozen=True)
class PasskeyConfirmation:
    verifications: Verifications
    security_info: SecurityInfoReader
    method: PasskeyMethod
    rows: PasskeyRows
    throttle: HelpdeskThrottle
    queue: HelpdeskQueue
    audit: HelpdeskAudit

    async def registered(self, user_id: str) -> str | None:
        """The user's stored passkeys (their method row's secret), or None when they registered none."""
        found = next((m for m in await self.security_info.methods(user_id) if m.kind is Method.PASSKEY), None)
        return found.secret if found else None

    def available(self) -> bool:
        return self.method.unavailable_reason() is None

    async def ask(self, agent: Actor, verification_id: str, client_ip: str | None) -> Verification:
        """The agent asks: a mail to the user's registered address (counted as a send, HELPDESK_LIMITS)."""
        verification = await self.verifications.open(verification_id, agent)
        if verification.state is not VerificationState.STARTED:
            raise MethodNotAllowed("the caller is verified already")
        if not self.available() or await self.registered(verification.user_id) is None:
            raise MethodNotAllowed("the user registered no passkey, or passkeys are off here")
        await self.throttle.helpdesk_paused(verification.user_id, agent.id)
        await self.throttle.count_helpdesk_send(verification.user_id, agent, client_ip)
        now = self.verifications.now()
        asked = await self.verifications.change(verification, lambda v: replace(v, passkey_asked_at=now))
        await self.queue.helpdesk_confirm(asked.verification_id, new_message_id())
        await self.audit.verification(asked, agent, Outcome.SUCCESS, "passkey-asked", Method.PASSKEY.value, client_ip)
        return asked

    async def options(self, verification_id: str) -> PasskeyRequest:
        """The user's page asks for a challenge: a new one replaces the last (listing no credential)."""
        verification = await self._asked(verification_id)
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        now = self.verifications.now()
        await self.verifications.change(verification, lambda v: replace(
            v, passkey_challenge=websafe_encode(challenge), passkey_challenge_at=now))
        return PasskeyRequest(publicKey=self.method.request_options(challenge)["publicKey"])

    async def confirm(self, verification_id: str, response: Mapping[str, Any], client_ip: str | None) -> None:
        """The assertion from the user's device: the caller is verified, or one wrong answer more."""
        verification = await self._asked(verification_id)
        now = self.verifications.now()
        taken: list[str | None] = []

        def take(v: Verification) -> Verification:
            taken.append(helpdesk.open_challenge(v, now))
            return replace(v, passkey_challenge=None, passkey_challenge_at=None)

        verification = await self.verifications.change(verification, take)
        agent = Actor(id=verification.agent_id, display=verification.agent_name, kind="user")
        try:
            if not taken or taken[-1] is None:
                raise PasskeyRefused("no open challenge (never asked, already used or expired)")
            await prove_passkey(self.method, self.rows, verification.user_id,
                                await self.registered(verification.user_id), websafe_decode(taken[-1]), response, now)
        except PasskeyRefused as refused:
            counted = await self.verifications.change(verification,
                                                      lambda v: helpdesk.record_failure(v, Method.PASSKEY))
            await self.throttle.record_helpdesk_failure(verification.user_id, agent, client_ip)
            await self.audit.verification(counted, agent, Outcome.FAILURE, "passkey-refused", Method.PASSKEY.value,
                                          client_ip, why=refused.reason)
            raise PasskeyNotAccepted(f"helpdesk passkey refused: {refused.reason}") from None
        verified = await self.verifications.change(verification,
                                                   lambda v: helpdesk.record_verified(v, Method.PASSKEY, now))
        await self.audit.verification(verified, agent, Outcome.SUCCESS, "verified", Method.PASSKEY.value, client_ip)
        await self.queue.helpdesk_notice(verified.verification_id, verified.user_id, "verified", now,
                                         notice_id(verified.verification_id, "verified"))

    async def _asked(self, verification_id: str) -> Verification:
        found = await self.verifications.rows.get(verification_id.lower())
        if found is None or not helpdesk.may_confirm_by_passkey(found, self.verifications.now()):
            raise NotFound("no confirmation asked for")
        return found
