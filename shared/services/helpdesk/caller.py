"""Who is calling: callers found by name or UPN, one caller's view (what a decision needs and nothing more), the
facts a verification keeps, and which actions this caller can have.

The view never holds a whole contact: registered methods are masked (E2), as the reset's notices mask them.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta
from typing import Protocol

from shared.adapters.audit_store import AuditQuery
from shared.adapters.graph import HelpdeskUser
from shared.domain import helpdesk
from shared.domain.clock import Clock
from shared.domain.codes import mask_contact
from shared.domain.enablement import is_enabled
from shared.domain.helpdesk import Caller, HelpdeskAction, Verification
from shared.domain.helpdesk_policy import Helpdesk
from shared.domain.password_targets import ONPREM_AD, target_for
from shared.domain.policy import Method, Policy
from shared.domain.security_info import RegisteredMethod
from shared.errors import FieldError, InvalidRequest, NotFound
from shared.services.helpdesk.answers import (
    ActionOffer,
    CallerFound,
    CallerPage,
    CallerView,
    MaskedMethod,
    RecentEvent,
)
from shared.services.helpdesk.ports import (
    AuditReader,
    HelpdeskDirectory,
    HelpdeskThrottle,
    PolicySource,
    Unlockers,
)
from shared.services.reset.ports import EnablementReader, SecurityInfoReader

PAGE_SIZE = 25
RECENT_DAYS = 14  # how far back the view reads the user's audit events (one partition per day)
RECENT_EVENTS = 10


class AccessPassOffer(Protocol):
    """Whether this deployment can give the user a Temporary Access Pass (issue 17): None, or why not."""

    async def unavailable(self, user_id: str) -> str | None: ...


class CallerFacts:
    def __init__(self, directory: HelpdeskDirectory, security_info: SecurityInfoReader, enablement: EnablementReader,
                 throttle: HelpdeskThrottle, audit: AuditReader, policies: PolicySource, clock: Clock,
                 extras: tuple[Unlockers, AccessPassOffer]) -> None:
        self._directory = directory
        self._info = security_info
        self._enablement = enablement
        self._throttle = throttle
        self._audit = audit
        self._policies = policies
        self._clock = clock
        self._unlockers, self._access_pass = extras

    async def search(self, text: str, cursor: str | None) -> CallerPage:
        link = _decode_cursor(cursor) if cursor else None
        page = await self._directory.search_users(text, link, PAGE_SIZE)
        return CallerPage(value=[CallerFound(id=u.id, displayName=u.display_name, userPrincipalName=u.user_principal_name,
                                             accountEnabled=u.account_enabled, guest=u.guest) for u in page.users],
                          cursor=_encode_cursor(page.next_link) if page.next_link else None)

    async def user(self, user_id: str) -> HelpdeskUser:
        """The directory's member named by `user_id`; guests are not the helpdesk's (their home tenant's)."""
        user = await self._directory.helpdesk_user(user_id)
        if user is None or user.user_type == "Guest":
            raise NotFound(f"no member {user_id}")
        return user

    async def view(self, user_id: str) -> CallerView:
        user, policy = await asyncio.gather(self.user(user_id), self._policies.get())
        now = self._clock()
        (roles, protected), methods, row, blocked, recent = await asyncio.gather(
            self._privilege(user.id, policy.helpdesk), self._info.methods(user.id),
            self._enablement.get_enablement(user.id), self._throttle.blocked_until(user.id),
            self._audit.query(AuditQuery(now - timedelta(days=RECENT_DAYS), now, user.id), RECENT_EVENTS))
        privileged = helpdesk.is_privileged(roles, protected)
        return CallerView(
            id=user.id, displayName=user.display_name, userPrincipalName=user.user_principal_name,
            accountEnabled=user.account_enabled, synced=user.synced, administrator=bool(roles),
            protectedGroup=protected, privileged=privileged, ssprEnabled=is_enabled(row),
            methods=masked_methods(methods), blockedUntil=blocked.isoformat() if blocked else None,
            lastPasswordChange=user.last_password_change,
            recentEvents=[RecentEvent(time=e.time.isoformat(), activity=e.activity.value, outcome=e.outcome.value,
                                      reason=e.reason) for e in recent.events],
            fourEyes=privileged and policy.helpdesk.privileged_callers is helpdesk.PrivilegedCallers.FOUR_EYES,
            refused=privileged and policy.helpdesk.privileged_callers is helpdesk.PrivilegedCallers.REFUSE,
        )

    async def caller(self, user: HelpdeskUser, policy: Policy) -> Caller:
        """The facts a verification keeps from its start: who, whether privileged, where their password lives."""
        roles, protected = await self._privilege(user.id, policy.helpdesk)
        return Caller(user_id=user.id, user_principal_name=user.user_principal_name, display_name=user.display_name,
                      privileged=helpdesk.is_privileged(roles, protected), account_enabled=user.account_enabled,
                      synced=user.synced, target=target_for(user, policy), on_premises=user.on_premises)

    async def _privilege(self, user_id: str, rules: Helpdesk) -> tuple[list[str], bool]:
        group = rules.protected_group_id
        roles, member_of = await asyncio.gather(
            self._directory.directory_roles(user_id),
            self._directory.check_member_groups(user_id, [group]) if group else _nothing())
        return list(roles), bool(group and group in member_of)

    async def offers(self, verification: Verification, methods: list[RegisteredMethod]) -> list[ActionOffer]:
        """Each action and whether it can be taken now for this caller (the page words the reason)."""
        caller = verification.caller
        blocked, access_pass = await asyncio.gather(self._throttle.blocked_until(caller.user_id),
                                                    self._access_pass.unavailable(caller.user_id))
        email = registered_email(methods)
        reasons: dict[HelpdeskAction, str | None] = {
            HelpdeskAction.CLEAR_BLOCK: None if blocked else "not-blocked",
            HelpdeskAction.UNLOCK: None if caller.target == ONPREM_AD and self._unlockers.unlocker(ONPREM_AD)
            else "cloud-account" if not caller.synced else "writeback-off",
            HelpdeskAction.RESET_LINK: _link_reason(caller, email),
            HelpdeskAction.ACCESS_PASS: access_pass or _link_reason(caller, email),
        }
        return [ActionOffer(action=action, available=reason is None and helpdesk.may_repeat(verification, action),
                            reason=reason or (None if helpdesk.may_repeat(verification, action) else "done"))
                for action, reason in reasons.items()]


def _link_reason(caller: Caller, email: str | None) -> str | None:
    if not caller.account_enabled:
        return "account-disabled"
    if caller.target is None:
        return "writeback-off"
    return None if email else "no-registered-email"


def registered_email(methods: list[RegisteredMethod]) -> str | None:
    """The address a link may go to: the email the user registered and verified here (never one typed)."""
    return next((m.contact for m in methods if m.kind is Method.EMAIL and m.contact), None)


def masked_methods(methods: list[RegisteredMethod]) -> list[MaskedMethod]:
    return [MaskedMethod(method=m.kind, contact=mask_contact(m.contact), registeredAt=_iso(m.registered_at))
            for m in methods]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _nothing() -> set[str]:
    return set()


def _encode_cursor(link: str) -> str:
    return base64.urlsafe_b64encode(link.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest([FieldError.of("cursor", "cursor.unknown", "is not a cursor this service gave")]) from None
