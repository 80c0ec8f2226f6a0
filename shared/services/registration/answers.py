"""Registration's answers, one model per step (the OpenAPI document uses them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.policy import Method


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatusInfo(_Body):
    """Whether the user can reset, and when they must confirm their info again."""

    registered: bool
    requiredCount: int
    usableMethods: list[Method]
    reconfirmDueAt: datetime | None
    reconfirmDue: bool


class Helpdesk(_Body):
    url: str | None
    email: str | None


class CannotReset(_Body):
    """Why this service cannot reset my password whatever I register (`reason`: the reset's refusal reasons but
    not-registered-enough; the page says it in plain words), and whom to ask instead."""

    reason: str
    helpdesk: Helpdesk


class MethodInfo(_Body):
    """One registered method, its contact masked."""

    method: Method
    contact: str | None
    registeredAt: datetime


class UnavailableMethod(_Body):
    method: Method
    reason: str


class PasskeyInfo(_Body):
    """One of my passkeys: its id (to remove it), its name, when added and last used, and whether it is backed up
    (synced to other devices)."""

    id: str
    name: str
    createdAt: datetime
    lastUsedAt: datetime | None
    backedUp: bool


class SecurityInfoView(_Body):
    """My security info: methods, status, and the methods I may register; `defaultRegion` is the country a phone
    number is read in first (the directory's usage location), when known."""

    methods: list[MethodInfo]
    status: StatusInfo
    cannotReset: CannotReset | None = Field(default=None, description="set when registering cannot make me able "
                                           "to reset my password here (status.registered then says nothing of it)")
    allowedMethods: list[Method]
    unavailableMethods: list[UnavailableMethod]
    defaultRegion: str | None = None
    passkeys: list[PasskeyInfo] = []
    entraMethods: list[MethodInfo] = Field(default=[], description="registered in the user's Microsoft (Entra) "
                                           "account; they count when the policy's entraMethods.count is on")


class PasskeyOptions(_Body):
    """Pass `publicKey` to navigator.credentials.create, then send the credential with `setupId` within 5 minutes."""

    setupId: str
    publicKey: dict[str, Any]


class ChallengeStarted(_Body):
    """A code is on its way; verify it with this challenge id."""

    challengeId: str
    method: Method
    contact: str = Field(description="masked")


class Verified(_Body):
    """The method is saved; `status.registered` says whether the user can now reset."""

    method: Method
    status: StatusInfo


class AppSetup(_Body):
    """Add this to the authenticator app (scan `qrSvg` or type `secret`), then confirm with a code from it."""

    setupId: str
    otpauthUri: str = Field(description="otpauth://totp/... (SHA1, 6 digits, 30 s)")
    qrSvg: str = Field(description="the otpauth URI as a QR code, an SVG document")
    secret: str = Field(description="the seed in base32, for typing into the app")
    expiresAt: datetime


class CatalogQuestion(_Body):
    id: str
    text: str
    custom: bool


class QuestionCatalog(_Body):
    """The questions I may answer, how many to answer, and the answer length rule."""

    language: str
    registerCount: int
    answerMinLength: int
    answerMaxLength: int
    questions: list[CatalogQuestion]
