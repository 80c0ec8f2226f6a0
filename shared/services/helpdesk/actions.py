"""What a verified agent may do, each a separate, audited action with the agent named: clear the user's SSPR block,
unlock the account in on-premises AD (through the agent), send the user a one-time reset link (or a link to a
Temporary Access Pass) to their registered address. No action shows or sets a password (security.md D8).

An action on a privileged caller is refused or waits for a second agent (shared/domain/helpdesk.py, FOUR_EYES):
`approvals.py` runs it once a second agent approves, with both named in the audit. The user is told of each
action on every address they have.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from shared.domain import helpdesk, onprem
from shared.domain.audit import Activity, Actor, Outcome
from shared.domain.helpdesk import HelpdeskAction, Verification, VerificationState
from shared.domain.helpdesk_links import LinkPurpose, ResetLink
from shared.domain.notifications import new_message_id
from shared.helpdesk_errors import ActionUnavailable, CallerNotVerified
from shared.services.helpdesk.answers import ActionDone, ActionOffer
from shared.services.helpdesk.audit import HelpdeskAudit, masked
from shared.services.helpdesk.caller import CallerFacts, registered_email
from shared.services.helpdesk.ports import (
    HelpdeskQueue,
    HelpdeskThrottle,
    NoticeEvent,
    Unlockers,
)
from shared.services.helpdesk.verification import Verifications, notice_id
from shared.services.password_targets.base import Change, ChangePending, TargetFailed
from shared.services.reset.ports import SecurityInfoReader

ACTIVITY = {
    HelpdeskAction.CLEAR_BLOCK: Activity.HELPDESK_BLOCK_CLEARED,
    HelpdeskAction.UNLOCK: Activity.HELPDESK_UNLOCK,
    HelpdeskAction.RESET_LINK: Activity.HELPDESK_RESET_LINK,
    HelpdeskAction.ACCESS_PASS: Activity.HELPDESK_ACCESS_PASS_LINK,
}
NOTICE: dict[HelpdeskAction, NoticeEvent] = {
    HelpdeskAction.CLEAR_BLOCK: "block-cleared", HelpdeskAction.UNLOCK: "unlocked",
    HelpdeskAction.RESET_LINK: "reset-link-sent", HelpdeskAction.ACCESS_PASS: "access-pass-link-sent",
}


@dataclass(frozen=True)
class HelpdeskActions:
    verifications: Verifications
    facts: CallerFacts
    security_info: SecurityInfoReader
    throttle: HelpdeskThrottle
    unlockers: Unlockers
    queue: HelpdeskQueue
    audit: HelpdeskAudit
    unlock_lifetime: timedelta

    async def offer(self, verification: Verification, action: HelpdeskAction) -> ActionOffer:
        """The action as the view offers it now: CallerNotVerified before the caller proved who they are,
        ActionUnavailable when this caller cannot have it (with the reason the page words)."""
        if verification.state is not VerificationState.VERIFIED or helpdesk.is_expired(verification,
                                                                                     self.verifications.now()):
            raise CallerNotVerified(f"verification {verification.verification_id} is not verified")
        offers = await self.facts.offers(verification, await self.security_info.methods(verification.user_id))
        offer = next(o for o in offers if o.action is action)
        if not offer.available:
            raise ActionUnavailable(f"{action} not available: {offer.reason}", reason=offer.reason or "unavailable")
        return offer

    async def run(self, verification: Verification, action: HelpdeskAction, agent: Actor, client_ip: str | None,
                  approved_by: Actor | None = None) -> ActionDone:
        """Take the action now (its offer was checked), audited with the agent (and the approving agent)."""
        await self.offer(verification, action)
        if action is HelpdeskAction.CLEAR_BLOCK:
            await self.throttle.clear(verification.user_id)
            done = ActionDone(action=action, done=True)
        elif action is HelpdeskAction.UNLOCK:
            done = await self._unlock(verification, agent, client_ip, approved_by)
            if done.pending:
                return done
        else:
            done = await self._send_link(verification, action)
        updated = await self.verifications.change(verification, lambda v: helpdesk.record_done(v, action))
        await self.audit.write(updated, ACTIVITY[action], agent, Outcome.SUCCESS, action.value, client_ip=client_ip,
                               approvedBy=approved_by.display if approved_by else None, sentTo=done.sentTo)
        now = self.verifications.now()
        await self.queue.helpdesk_notice(updated.verification_id, updated.user_id, NOTICE[action], now,
                                         notice_id(updated.verification_id, action.value, updated.links_sent))
        return done

    # ---- unlock through the on-premises agent --------------------------------------------------------------------

    async def _unlock(self, verification: Verification, agent: Actor, client_ip: str | None,
                      approved_by: Actor | None) -> ActionDone:
        """Unlock the AD account (its lockout only; the password stays). A try the agent took and has not answered
        is asked again (`outcome`) instead of sending a new one."""
        unlocker = self.unlockers.unlocker(verification.caller.target or "")
        if unlocker is None:
            raise ActionUnavailable("no unlocker for this user's directory", reason="cloud-account")
        now = self.verifications.now()
        pending = verification.unlock_pending_until is not None and not onprem.gave_up(
            verification.unlock_pending_until, now)
        if not pending:
            expires = now + self.unlock_lifetime
            verification = await self.verifications.change(
                verification, lambda v: replace(v, attempts=v.attempts + 1, unlock_pending_until=expires))
        change = _unlock_change(verification)
        try:
            await (unlocker.outcome(change) if pending else unlocker.unlock(change))
        except ChangePending:
            return ActionDone(action=HelpdeskAction.UNLOCK, done=False, pending=True)
        except TargetFailed as failure:
            await self.verifications.change(verification, lambda v: replace(v, unlock_pending_until=None))
            await self.audit.write(verification, Activity.HELPDESK_UNLOCK, agent, Outcome.FAILURE, failure.reason,
                                   client_ip=client_ip, approvedBy=approved_by.display if approved_by else None)
            raise failure.error from None
        await self.verifications.change(verification, lambda v: replace(v, unlock_pending_until=None))
        return ActionDone(action=HelpdeskAction.UNLOCK, done=True)

    # ---- one-time links ------------------------------------------------------------------------------------------

    async def _send_link(self, verification: Verification, action: HelpdeskAction) -> ActionDone:
        """A new link for the user's registered address, made and mailed by the notifications worker (the agent
        never sees it); it replaces any earlier link of this verification (LINK_BOUND)."""
        contact = registered_email(await self.security_info.methods(verification.user_id))
        if contact is None:
            raise ActionUnavailable("no registered email", reason="no-registered-email")
        purpose = LinkPurpose.ACCESS_PASS if action is HelpdeskAction.ACCESS_PASS else LinkPurpose.RESET
        link = ResetLink(verification_id=verification.verification_id, user_id=verification.user_id, purpose=purpose,
                         contact=contact, agent_name=verification.agent_name, created_at=self.verifications.now(),
                         message_id=new_message_id())
        await self.verifications.rows.change_link(verification.verification_id, lambda _: (None, link))
        await self.queue.helpdesk_link(verification.verification_id, link.message_id)
        return ActionDone(action=action, done=True, sentTo=masked(contact))


def _unlock_change(verification: Verification) -> Change:
    """The unlock's job id names the verification and the try (`hu<n>-<id>`): no reset flow's, so the results queue
    leaves it to the helpdesk (shared/domain/onprem.flow_of_job)."""
    expires = verification.unlock_pending_until or verification.expires_at
    return Change(user_id=verification.user_id, attempt_id=f"hu{verification.attempts}-{verification.verification_id}",
                  expires_at=expires, on_premises=verification.caller.on_premises)
