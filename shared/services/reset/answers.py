"""The reset API's answers, one model per step (the OpenAPI document uses them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from shared.domain.policy import Method


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class AccessPassOffer(_Body):
    """When the policy lets a verified reset end with a Temporary Access Pass (the same for everyone)."""

    insteadOfPassword: bool
    afterPassword: bool


class FlowStarted(_Body):
    """The same for every username but the two random values (C1); methods are the policy's, not the user's."""

    flowId: str
    flowSecret: str
    expiresInSeconds: int
    methods: list[Method]
    codeLength: int
    accessPass: AccessPassOffer = AccessPassOffer(insteadOfPassword=False, afterPassword=False)


class ProofRequested(_Body):
    """The same whether or not the contact matched: a code is on its way only if it did."""

    method: Method
    codeLength: int
    expiresInSeconds: int


class FlowProgress(_Body):
    """After a proven method: the user's own remaining methods and, for those with one, the contact masked."""

    flowId: str
    verified: list[Method]
    methodsRequired: int
    next: Literal["method", "password"]
    methods: list[Method]
    questions: bool
    contacts: dict[Method, str] = Field(default_factory=dict)
    unlock: bool = False  # ready, and may unlock the account without a new password (on-premises AD)

    @model_serializer(mode="wrap")
    def _unlock_only_when_offered(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`unlock` appears only where it is offered: the answer of every other flow stays as it was."""
        body: dict[str, Any] = handler(self)
        if not self.unlock:
            body.pop("unlock", None)
        return body


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
    sessionsRevoked: bool = Field(description="false: the password is set and the notice sent, but Graph could not "
                                              "end the other sign-ins yet; the service retries that from its queue")
    notified: list[str]


class AccountUnlocked(_Body):
    unlocked: bool
    notified: list[str]


class ChangeWaiting(_Body):
    """The change went to the user's directory (on-premises AD) and its verdict is not in yet: ask again with
    GET .../password after `retryAfterSeconds`."""

    pending: bool
    retryAfterSeconds: int


class LinkOpened(_Body):
    """A helpdesk link opened the user's flow: it is ready for the new password (or the pass the link is for)."""

    flowId: str
    flowSecret: str
    expiresInSeconds: int
    next: Literal["password", "access-pass"]
    unlock: bool
    displayName: str


class PasskeyRequest(_Body):
    """navigator.credentials.get's `publicKey`: a fresh challenge, the RP id, user verification required, and no
    credentials listed, so it is the same for every username (security.md I2)."""

    publicKey: dict[str, Any]


class AccessPassIssued(_Body):
    """The Temporary Access Pass, shown once: sign in with it and register a passkey or the Authenticator app.
    `passwordReset` says whether a new password was set in this flow too."""

    temporaryAccessPass: str
    startsAt: datetime
    expiresAt: datetime
    lifetimeMinutes: int
    usableOnce: bool
    passwordReset: bool
