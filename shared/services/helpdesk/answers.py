"""The helpdesk API's answers, one model per step (the OpenAPI document uses them too). Contacts are always masked:
an agent sees where a code goes, never the whole number or address."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.domain.helpdesk import HelpdeskAction
from shared.domain.policy import Method


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class CallerFound(_Body):
    id: str
    displayName: str
    userPrincipalName: str
    accountEnabled: bool
    guest: bool


class CallerPage(_Body):
    """One page of callers whose name, UPN or mail matches; `cursor` reads the next page."""

    value: list[CallerFound]
    cursor: str | None


class MaskedMethod(_Body):
    method: Method
    contact: str | None  # masked: n***@example.com, +46******67
    registeredAt: str


class RecentEvent(_Body):
    time: str
    activity: str
    outcome: str
    reason: str | None


class ActionOffer(_Body):
    """Whether an action can be taken for this caller, and if not, why (a reason code the page words)."""

    action: HelpdeskAction
    available: bool
    reason: str | None = None


class CallerView(_Body):
    """What an agent's decision needs about one caller, and nothing more."""

    id: str
    displayName: str
    userPrincipalName: str
    accountEnabled: bool
    synced: bool
    administrator: bool
    protectedGroup: bool
    privileged: bool
    ssprEnabled: bool
    methods: list[MaskedMethod]
    blockedUntil: str | None
    lastPasswordChange: str | None
    recentEvents: list[RecentEvent]
    fourEyes: bool  # actions on this caller wait for a second agent
    refused: bool  # the policy refuses actions on this caller


class VerificationView(_Body):
    verificationId: str
    userId: str
    displayName: str
    userPrincipalName: str
    state: str  # started | verified | locked
    verifiedWith: Method | None
    expiresAt: str
    codeMethods: list[MaskedMethod]  # where a code can be sent: the user's registered contacts, masked
    appCode: bool  # the user registered an authenticator app: its current code may be read back
    passkey: bool  # the user registered a passkey: they may confirm on their own device
    passkeyAsked: bool
    privileged: bool
    fourEyes: bool
    actions: list[ActionOffer]
    done: list[HelpdeskAction]


class CodeSent(_Body):
    """A code is on its way to the registered contact shown (masked); the caller reads it back."""

    method: Method
    contact: str
    codeLength: int
    expiresInSeconds: int


class ActionDone(_Body):
    action: HelpdeskAction
    done: bool
    pending: bool = False  # on-premises AD has not answered yet: ask again
    sentTo: str | None = None  # a link's registered address, masked


class ApprovalPending(_Body):
    """The caller is privileged: the action waits for a second agent's approval."""

    action: HelpdeskAction
    requestId: str
    pendingApproval: bool


class ApprovalView(_Body):
    requestId: str
    action: HelpdeskAction
    userId: str
    userPrincipalName: str
    requestedBy: str
    requestedAt: str
    expiresAt: str


class ApprovalList(_Body):
    value: list[ApprovalView]


class ApprovalDecided(_Body):
    requestId: str
    approved: bool
    result: ActionDone | None = None
