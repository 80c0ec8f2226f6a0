"""The reset's second way in: a one-time link a helpdesk agent had sent to the user's registered address opens a
reset flow that is ready for the password step (shared/domain/helpdesk_links.py: single use, short lived, bound
to the verification and its user; HELPDESK_VERIFIED in shared/domain/reset_flow.py).

The link's secret arrives in the page's URL fragment, which the browser never sends to a server; the page posts it
here once and drops it from its address bar. Every way a link fails (wrong, expired, used, replaced) is the same
answer, ResetLinkNotValid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from shared.domain import helpdesk_links, reset_flow
from shared.domain.audit import Outcome
from shared.domain.helpdesk_links import LinkPurpose, LinkVerdict, ResetLink
from shared.helpdesk_errors import ResetLinkNotValid
from shared.services.reset.answers import LinkOpened
from shared.services.reset.audit import ResetAudit
from shared.services.reset.offer import ResetOffer
from shared.services.reset.password import ChangeStep
from shared.services.reset.state import ResetFlows
from shared.services.reset.user import UserResolver


class LinkRows(Protocol):
    async def link(self, verification_id: str) -> ResetLink | None: ...

    async def change_link(self, verification_id: str, rule: Any) -> tuple[Any, ResetLink | None]: ...


class StartBudget(Protocol):
    async def admit_flow_start(self, client_ip: str | None) -> None: ...


@dataclass(frozen=True)
class HelpdeskLinkEntry:
    links: LinkRows
    flows: ResetFlows
    users: UserResolver
    offer: ResetOffer
    change: ChangeStep
    budget: StartBudget
    audit: ResetAudit
    code_key: bytes

    async def open(self, token: str, language: str, client_ip: str | None) -> LinkOpened:
        """Spend the link and open the user's flow, ready for a new password (or the pass the link is for)."""
        await self.budget.admit_flow_start(client_ip)  # the reset's start budget per address (G2, D4)
        parsed = helpdesk_links.parse_token(token)
        if parsed is None:
            raise ResetLinkNotValid("malformed link")
        verification_id, secret = parsed
        now = self.flows.now()
        link = await self.links.link(verification_id)
        if link is None or helpdesk_links.opened(link, self.code_key, secret, now)[0] is not LinkVerdict.OPENED:
            raise ResetLinkNotValid("unknown, wrong, expired or used link")
        policy = await self.offer.policy()
        resolution, upn = await self.users.resolve_verified(link.user_id, policy)
        if resolution.user_id is None:
            raise ResetLinkNotValid("the link's user is gone")
        verdict, _ = await self.links.change_link(verification_id,
                                                  lambda current: _spent(current, self.code_key, secret, now))
        if verdict is not LinkVerdict.OPENED:  # another request spent it first (LINK_SINGLE_USE)
            raise ResetLinkNotValid("link used by a racing request")
        flow, flow_secret = self.flows.new(upn, client_ip)
        flow = replace(flow, resolution=resolution, helpdesk=verification_id,
                       helpdesk_pass=link.purpose is LinkPurpose.ACCESS_PASS)
        await self.flows.save_new(flow)
        await self.audit.progress(flow, None, Outcome.SUCCESS, "helpdesk-link-opened")
        if resolution.refusal is not None:
            await self.audit.outcome(flow, Outcome.FAILURE, resolution.refusal.value)
            raise await self.offer.refusal(resolution, language)
        return LinkOpened(
            flowId=flow.flow_id, flowSecret=flow_secret,
            expiresInSeconds=int(reset_flow.FLOW_LIFETIME.total_seconds()),
            next="access-pass" if link.purpose is LinkPurpose.ACCESS_PASS else "password",
            unlock=self.change.may_unlock(flow, policy), displayName=resolution.names.display_name,
        )


def _spent(current: ResetLink | None, key: bytes, secret: str, now: datetime) -> tuple[LinkVerdict, ResetLink | None]:
    if current is None:
        return LinkVerdict.REFUSED, None
    verdict, updated = helpdesk_links.opened(current, key, secret, now)
    return verdict, updated if verdict is LinkVerdict.OPENED else None
