"""The password step: the rules in context (B1, B2), then the user's password target sets it (B4, F6).

Nothing changes in the flow until the target has set the password, ended the sessions and the notice is queued,
so there is never a success without its notice, nor a "done" flow whose password was not set. The step is
claimed on the flow's row (under its ETag) before the target is called, so of any number of parallel requests
one sets the password and queues one notice; the others are told the step is already running (409).
"""

from __future__ import annotations

from datetime import datetime

from shared import i18n
from shared.domain.audit import Outcome
from shared.domain.clock import Clock
from shared.domain.password_targets import ENTRA
from shared.domain.reset_flow import ResetFlow
from shared.errors import FlowNotFound, PasswordRejected
from shared.services.password_targets import HISTORY, PasswordRefused, PasswordTargets, TargetFailed
from shared.services.reset.answers import PasswordFailureInfo
from shared.services.reset.audit import ResetAudit
from shared.services.reset.ports import ResetQueue
from shared.services.reset.state import ResetFlows
from shared.services.reset.user import UserResolver


class PasswordStep:
    def __init__(self, users: UserResolver, targets: PasswordTargets, queue: ResetQueue, audit: ResetAudit,
                 clock: Clock) -> None:
        self._users = users
        self._targets = targets
        self._queue = queue
        self._audit = audit
        self._clock = clock

    async def failures(self, flow: ResetFlow, password: str, language: str) -> list[PasswordFailureInfo]:
        """Every rule the password breaks, in the user's language; no directory call."""
        from shared.adapters.common_passwords import common_passwords
        from shared.domain.passwords import PasswordContext, check_password, password_messages

        tenant = await self._users.tenant_facts()
        names = flow.resolution.names if flow.resolution else None
        context = PasswordContext(tenant_name=tenant.name, upn=flow.username,
                                  given_name=names.given_name if names else "",
                                  surname=names.surname if names else "",
                                  display_name=names.display_name if names else "")
        failures = check_password(password, context, common_passwords())
        return [PasswordFailureInfo(rule=m["rule"], message=m["message"])
                for m in password_messages(failures, language)]

    async def set(self, flow: ResetFlow, password: str, language: str, flows: ResetFlows) -> datetime:
        """Check the rules, claim the step on the flow, set the password at the user's target, end their sessions
        and queue the notice; the moment of the reset. A refusal or failure of the target gives the claim back."""
        resolution = flow.resolution
        if resolution is None or resolution.user_id is None:
            raise FlowNotFound("a password step without a user")  # ready_for_password already refused this
        failures = await self.failures(flow, password, language)
        if failures:
            await self._audit.outcome(flow, Outcome.FAILURE, "password-rules")
            raise PasswordRejected([f.model_dump() for f in failures])
        target = self._targets.get(resolution.target or ENTRA)
        claimed = await flows.claim_password(flow)
        try:
            await target.set_password(resolution.user_id, password)
        except PasswordRefused as refused:
            await flows.release_password(claimed)
            await self._audit.outcome(flow, Outcome.FAILURE, "password-refused-by-directory")
            raise PasswordRejected([_directory_refusal(refused.rule, language).model_dump()]) from None
        except TargetFailed as failure:
            await flows.release_password(claimed)
            await self._audit.outcome(flow, Outcome.FAILURE, failure.reason)
            raise failure.error from None
        except BaseException:
            await flows.release_password(claimed)
            raise
        await target.revoke_sessions(resolution.user_id)
        now = self._clock()
        await self._queue.password_reset(resolution.user_id, now, resolution.is_admin)
        return now


def _directory_refusal(rule: str, language: str) -> PasswordFailureInfo:
    texts = i18n.catalog("reset", language)
    if rule == HISTORY:  # a directory that keeps the password history (on-premises AD) said it was used before
        return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_HISTORY", message=texts["password.directoryHistory"])
    return PasswordFailureInfo(rule="DIRECTORY_PASSWORD_POLICY", message=texts["password.directoryRefused"])
