"""What the flow offers and tells: the policy's methods this deployment can deliver, and the refusal text."""

from __future__ import annotations

from datetime import datetime

from shared import i18n
from shared.domain import reset_flow
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import Refusal, Resolution
from shared.errors import CannotResetHere
from shared.services.methods import Methods
from shared.services.policy import PolicyCache


class ResetOffer:
    def __init__(self, policies: PolicyCache, methods: Methods, register_url: str) -> None:
        self._policies = policies
        self.methods = methods
        self._register_url = register_url

    async def policy(self) -> Policy:
        return await self._policies.get()

    def start_methods(self, policy: Policy) -> list[Method]:
        """The same list for every user (C1, C2): the policy's possession methods this service can deliver."""
        return reset_flow.start_methods(policy, self.methods.deliverable())

    def text(self, key: str, language: str, until: datetime) -> str:
        """A block's plain words in the user's language, with until when (UTC, to the minute)."""
        return i18n.catalog("reset", language)[key].format(until=until.strftime("%Y-%m-%d %H:%M UTC"))

    async def refusal(self, resolution: Resolution, language: str) -> CannotResetHere:
        """Why this service cannot reset the user, with the helpdesk: told only after a proven method."""
        policy = await self._policies.get()
        texts = i18n.catalog("reset", language)
        refusal = resolution.refusal or Refusal.NOT_ENABLED
        detail = texts[f"refusal.{refusal.value}"].format(required=resolution.methods_required,
                                                          registerUrl=self._register_url)
        return CannotResetHere(refusal.value, detail, {"url": policy.helpdesk.url, "email": policy.helpdesk.email})
