"""The authenticator app method: a TOTP code of the registered app, +/-1 step, each step once (security.md A10)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.secret_box import SecretBox
from shared.adapters.security_info_store import SecurityInfoStore
from shared.domain import totp
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod
from shared.errors import SecretUnreadable
from shared.services.methods.base import Proof, Response

log = logging.getLogger("sspr.registration.app")


@dataclass(frozen=True)
class AuthenticatorAppCodes:
    """Checks a code of a registered authenticator app."""

    method = Method.AUTHENTICATOR_APP
    proof = Proof.APP_CODE

    store: SecurityInfoStore
    box: SecretBox

    def unavailable_reason(self) -> str | None:
        return None

    async def verify(self, user_id: str, registered: RegisteredMethod, response: Response, now: datetime) -> bool:
        if not isinstance(response, str):
            return False
        return await self.verify_totp(user_id, registered, response, now) is not None

    async def verify_totp(self, user_id: str, method: RegisteredMethod, code: str, now: datetime) -> int | None:
        """The step of a right, unused code of the user's registered app, now recorded as used; else None.

        Counting a None toward the throttle is the caller's part. Two parallel calls with one right code:
        exactly one gets the step.
        """
        if method.kind is not Method.AUTHENTICATOR_APP or not method.secret:
            return None
        try:
            seed = self.box.open(method.secret, totp.seed_context(user_id))
        except SecretUnreadable:
            log.error("the authenticator app seed of user %s does not open (key changed or row altered)", user_id)
            return None
        step = totp.accepted_step(seed, code, now, method.last_used_step)
        if step is None or not await self.store.advance_last_used_step(user_id, Method.AUTHENTICATOR_APP, step):
            return None
        return step
