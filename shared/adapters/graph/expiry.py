"""What password expiry reads of the directory: every user's password facts, page by page, and one user's contact.

Pages are read as raw JSON (the SDK's model parsing costs about 4 ms per user, shared/adapters/graph/groups.py).
`lastPasswordChangeDateTime`, `passwordPolicies` and `onPremisesSyncEnabled` are "returned only on $select"
(https://learn.microsoft.com/graph/api/resources/user), so every read names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared.adapters.graph.client import GraphPart
from shared.adapters.graph.query import advanced_query
from shared.domain.password_expiry import OnPremisesExpiry, PasswordFacts, parse_instant, version_of

PAGE_SIZE = 999  # Graph's largest page of /users


@dataclass(frozen=True)
class ExpiryPage:
    """One page of users; `next_link` reads the next page, `count` is the tenant's total on the first page;
    `on_premises`: AD's expiry of the page's synced users by user id, where the on-premises agents reported it
    (added by shared/services/onprem/expiry.py)."""

    users: list[PasswordFacts]
    next_link: str | None
    count: int | None = None
    on_premises: Mapping[str, OnPremisesExpiry] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpiryContact:
    """Where a reminder goes and whether it is still due: the user's addresses, phone, language and password
    facts as they are now."""

    id: str
    display_name: str
    mail: str | None
    other_mails: tuple[str, ...]
    mobile_phone: str | None
    preferred_language: str | None
    account_enabled: bool
    password_version: str | None  # lastPasswordChangeDateTime, as password_expiry.version_of writes it
    on_premises_sid: str | None = None  # a synced user's AD account (its expiry comes from the agents' report)


def password_facts(u: dict[str, Any]) -> PasswordFacts:
    return PasswordFacts(
        user_id=str(u["id"]).lower(), user_principal_name=str(u.get("userPrincipalName") or ""),
        account_enabled=u.get("accountEnabled") is True, user_type=u.get("userType"),
        synced=u.get("onPremisesSyncEnabled") is True, password_policies=u.get("passwordPolicies"),
        last_changed=parse_instant(u.get("lastPasswordChangeDateTime")),
        on_premises_sid=_sid(u) if u.get("onPremisesSyncEnabled") is True else None,
    )


def _sid(u: dict[str, Any]) -> str | None:
    sid = u.get("onPremisesSecurityIdentifier")
    return sid if isinstance(sid, str) and sid.startswith("S-1-5-21-") and len(sid) <= 200 else None


class GraphExpiry(GraphPart):
    """Password expiry's reads: `/users` pages with the password facts, one user's reminder contact."""

    SELECT: ClassVar[list[str]] = ["id", "userPrincipalName", "accountEnabled", "userType", "onPremisesSyncEnabled",
                                   "passwordPolicies", "lastPasswordChangeDateTime", "onPremisesSecurityIdentifier"]
    CONTACT_SELECT: ClassVar[list[str]] = ["id", "displayName", "mail", "otherMails", "mobilePhone",
                                           "preferredLanguage", "accountEnabled", "lastPasswordChangeDateTime",
                                           "onPremisesSyncEnabled", "onPremisesSecurityIdentifier"]

    async def expiry_page(self, cursor: str | None, page_size: int = PAGE_SIZE) -> ExpiryPage:
        """GET /users with the password facts: the first page (`cursor` None, with `$count`) or the nextLink
        this gateway returned earlier (followed only inside the Graph base URL)."""
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        builder = self._sdk.users
        if cursor is not None:
            # The nextLink repeats `$count=true`, which needs the advanced query header on every page.
            info = advanced_query(builder.with_url(self._graph.check_link(cursor)).to_get_request_information())
        else:
            query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=self.SELECT, top=page_size,
                                                                              count=True)
            info = advanced_query(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        body = await self._graph.get_json(info)
        users = [password_facts(u) for u in body.get("value") or []
                 if isinstance(u, dict) and isinstance(u.get("id"), str)]
        count = body.get("@odata.count") if cursor is None else None
        return ExpiryPage(users, body.get("@odata.nextLink"), count if isinstance(count, int) else None)

    async def expiry_contact(self, user_id: str) -> ExpiryContact | None:
        """GET /users/{id} with the reminder's fields; None when the directory has no such user any more."""
        u = await self._found(lambda: self._graph.get_json(self._user_request(user_id, self.CONTACT_SELECT)))
        if u is None:
            return None
        changed = parse_instant(u.get("lastPasswordChangeDateTime"))
        return ExpiryContact(
            id=str(u.get("id") or user_id), display_name=str(u.get("displayName") or ""), mail=u.get("mail"),
            other_mails=tuple(str(m) for m in u.get("otherMails") or () if isinstance(m, str)),
            mobile_phone=u.get("mobilePhone"), preferred_language=u.get("preferredLanguage"),
            account_enabled=u.get("accountEnabled") is True,
            password_version=None if changed is None else version_of(changed),
            on_premises_sid=_sid(u) if u.get("onPremisesSyncEnabled") is True else None,
        )
