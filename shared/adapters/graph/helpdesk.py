"""What the helpdesk reads of the directory: callers found by name or UPN (a page at a time), and one caller's facts.

Search is an advanced query (https://learn.microsoft.com/graph/search-query-parameter, "Using $search on directory
object collections"): `ConsistencyLevel: eventual` and `$count=true`; `displayName` is searched by tokens (a
surname finds "Casey Jensen"), `userPrincipalName` and `mail` by prefix. A `"` or `\\` in the text is escaped with a
backslash. `lastPasswordChangeDateTime` is returned only on `$select` (resources/user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from shared.adapters.graph.client import GraphPart, next_link
from shared.adapters.graph.query import advanced_query, counted_link
from shared.domain.onprem import OnPremAccount
from shared.domain.password_expiry import parse_instant

SEARCH_SELECT = ["id", "displayName", "userPrincipalName", "accountEnabled", "userType"]


@dataclass(frozen=True)
class FoundUser:
    id: str
    display_name: str
    user_principal_name: str
    account_enabled: bool
    guest: bool


@dataclass(frozen=True)
class UserPage:
    users: list[FoundUser]
    next_link: str | None


@dataclass(frozen=True)
class HelpdeskUser:
    """One caller as the directory has them: what an agent's decision needs, and nothing of their contacts."""

    id: str
    user_principal_name: str
    display_name: str
    account_enabled: bool
    user_type: str
    synced: bool
    last_password_change: str | None  # ISO 8601, UTC
    on_premises: OnPremAccount | None


def search_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class GraphHelpdesk(GraphPart):
    CALLER_SELECT: ClassVar[list[str]] = [
        "id", "userPrincipalName", "displayName", "accountEnabled", "userType", "onPremisesSyncEnabled",
        "onPremisesSecurityIdentifier", "onPremisesDistinguishedName", "lastPasswordChangeDateTime",
    ]

    async def search_users(self, text: str, cursor: str | None, page_size: int) -> UserPage:
        """GET /users?$search="displayName:<t>" OR "userPrincipalName:<t>" OR "mail:<t>", one page; `cursor` is a
        nextLink this gateway returned (followed only inside the Graph base URL)."""
        builder = self._sdk.users
        if cursor is not None:
            link = counted_link(self._graph.check_link(cursor))
        else:
            words = search_text(text.strip())
            search = " OR ".join(f'"{prop}:{words}"' for prop in ("displayName", "userPrincipalName", "mail"))
            link = (f"{self._graph.base_url}/users?$search={quote(search, safe='')}"
                    f"&$select={','.join(SEARCH_SELECT)}&$top={page_size}&$count=true")
        body = await self._graph.get_json(advanced_query(builder.with_url(link).to_get_request_information()))
        users = [_found(u) for u in body.get("value") or [] if isinstance(u, dict) and isinstance(u.get("id"), str)]
        return UserPage(users, next_link(body))

    async def helpdesk_user(self, user_id: str) -> HelpdeskUser | None:
        """GET /users/{id} with the facts the helpdesk shows; None when there is no such user."""
        u = await self._found(lambda: self._graph.get_json(self._user_request(user_id, self.CALLER_SELECT)),
                              missing=(400, 404))
        if u is None or not isinstance(u.get("id"), str):
            return None
        synced = u.get("onPremisesSyncEnabled") is True
        sid = u.get("onPremisesSecurityIdentifier")
        changed = parse_instant(u.get("lastPasswordChangeDateTime"))
        return HelpdeskUser(
            id=str(u["id"]).lower(), user_principal_name=str(u.get("userPrincipalName") or ""),
            display_name=str(u.get("displayName") or ""), account_enabled=u.get("accountEnabled") is True,
            user_type=str(u.get("userType") or "Member"), synced=synced,
            last_password_change=changed.isoformat() if changed else None,
            on_premises=OnPremAccount(str(sid), str(u.get("onPremisesDistinguishedName") or ""))
            if synced and isinstance(sid, str) and sid else None,
        )


def _found(u: dict[str, Any]) -> FoundUser:
    return FoundUser(id=str(u["id"]).lower(), display_name=str(u.get("displayName") or ""),
                     user_principal_name=str(u.get("userPrincipalName") or ""),
                     account_enabled=u.get("accountEnabled") is True, guest=u.get("userType") == "Guest")
