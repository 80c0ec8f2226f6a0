"""The reset API's answers, one model per step (the OpenAPI document uses them too)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.domain.policy import Method


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class FlowStarted(_Body):
    """The same for every username but the two random values (C1); methods are the policy's, not the user's."""

    flowId: str
    flowSecret: str
    expiresInSeconds: int
    methods: list[Method]
    codeLength: int


class ProofRequested(_Body):
    """The same whether or not the contact matched: a code is on its way only if it did."""

    method: Method
    codeLength: int
    expiresInSeconds: int


class FlowProgress(_Body):
    flowId: str
    verified: list[Method]
    methodsRequired: int
    next: Literal["method", "password"]
    methods: list[Method]
    questions: bool


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
    sessionsRevoked: bool
    notified: list[str]
