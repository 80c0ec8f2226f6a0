"""The new password's rules before anything is looked up: Entra's (B1, B2) with the context every caller has.

The context is the tenant's name and the typed user name, never the directory's names of the user: reading those
would be a lookup whose answer (a name-based refusal) tells a stranger the account exists. AD's own complexity rule
(which also refuses the account's names) follows when the agent applies the change, and only once AD has checked
the current password (Samba and Windows check it first), so its refusals reach only the person who knows it.
"""

from __future__ import annotations

from shared import i18n
from shared.services.change.ports import TenantNames
from shared.services.reset.answers import PasswordFailureInfo

SAME_AS_CURRENT = "PASSWORD_SAME_AS_CURRENT"


class ChangeRules:
    def __init__(self, tenant: TenantNames) -> None:
        self._tenant = tenant

    async def failures(self, username: str, current: str, new: str, language: str) -> list[PasswordFailureInfo]:
        """Every rule the new password breaks, in the user's language; no directory call about the user."""
        from shared.adapters.common_passwords import common_passwords
        from shared.domain.passwords import PasswordContext, check_password, password_messages

        tenant = await self._tenant.tenant_facts()
        context = PasswordContext(tenant_name=tenant.name, upn=username)
        failures = [PasswordFailureInfo(rule=m["rule"], message=m["message"])
                    for m in password_messages(check_password(new, context, common_passwords()), language)]
        if new == current:
            failures.append(PasswordFailureInfo(rule=SAME_AS_CURRENT,
                                                message=i18n.catalog("change", language)["password.sameAsCurrent"]))
        return failures
