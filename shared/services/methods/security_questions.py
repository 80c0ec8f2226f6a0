"""The security questions method: answers checked against the registered Argon2id hashes (security.md A11)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from shared.domain import security_questions as rules
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod
from shared.services.methods.base import Proof, Response


class SecurityQuestions:
    method = Method.SECURITY_QUESTIONS
    proof = Proof.ANSWERS

    def unavailable_reason(self) -> str | None:
        return None

    async def verify(self, user_id: str, registered: RegisteredMethod, response: Response, now: datetime) -> bool:
        """True when every asked question (id -> answer) is answered right; which to ask is the flow's choice."""
        if registered.kind is not Method.SECURITY_QUESTIONS or not isinstance(response, Mapping):
            return False
        # Argon2id takes ~50 ms of CPU per answer: off the event loop, so other requests keep flowing.
        return await asyncio.to_thread(rules.answers_match, registered.secret, dict(response), len(response))
