"""What the admin page reads of the directory to show names instead of object ids: groups searched by name with
their user counts, the names of many users read in one `$batch`, a user's id by UPN, and a group's users with
their licences (eligibility of the scope an admin is looking at).

Group search is an advanced query (https://learn.microsoft.com/graph/aad-advanced-queries): `$search` and the
`$count` segment need `ConsistencyLevel: eventual`, and `$count=true` for the total. A page's continuation is the
`$skiptoken` of Graph's nextLink only, so a caller can never point the next request anywhere but the same query.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared.adapters.graph.client import GraphPart
from shared.adapters.graph.query import advanced_query, counted_link
from shared.domain.eligibility import AssignedLicense, UserLicensing
from shared.domain.onprem import OnPremAccount
from shared.errors import GraphError

# https://learn.microsoft.com/graph/json-batching: at most 20 requests in one $batch. Graph refuses more than 15
# values in one `in` expression (observed; not written on Learn), so one $batch names at most 300 users.
BATCH_REQUESTS = 20
IDS_PER_FILTER = 15


@dataclass(frozen=True)
class DirectoryGroup:
    id: str
    display_name: str
    description: str
    user_count: int | None = None


@dataclass(frozen=True)
class GroupPage:
    groups: list[DirectoryGroup]
    skiptoken: str | None  # the next page's $skiptoken; None on the last page
    total: int | None  # @odata.count of the whole result


@dataclass(frozen=True)
class UserName:
    display_name: str
    user_principal_name: str


def search_text(text: str) -> str:
    """`text` as the inside of a `"displayName:<text>"` clause: a double quote and a backslash escaped with a
    backslash, as search-query-parameter asks; nothing else needs escaping."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _skiptoken(next_link: str | None) -> str | None:
    if not next_link:
        return None
    for name, value in parse_qsl(urlsplit(next_link).query):
        if name.lstrip("$").lower() == "skiptoken":
            return value
    return None


class GraphDirectory(GraphPart):
    """Groups by name, users by id or UPN, a group's users with licences."""

    GROUP_SELECT: ClassVar[list[str]] = ["id", "displayName", "description"]
    LICENSING_SELECT: ClassVar[list[str]] = ["id", "displayName", "userPrincipalName", "accountEnabled", "userType",
                                             "onPremisesSyncEnabled", "assignedLicenses",
                                             "onPremisesSecurityIdentifier", "onPremisesDistinguishedName"]

    async def search_groups(self, text: str, skiptoken: str | None, page_size: int) -> GroupPage:
        """GET /groups?$search="displayName:<text>" (every group when `text` is empty), a page of `page_size`,
        each with its user count (users among its members, nested groups included), as Graph counts them."""
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            select=self.GROUP_SELECT, top=page_size, count=True,
            search=f'"displayName:{search_text(text)}"' if text.strip() else None,
            orderby=None if text.strip() else ["displayName"],
        )
        info = advanced_query(self._sdk.groups.to_get_request_information(RequestConfiguration(query_parameters=query)))
        if skiptoken:
            info.url = counted_link(f"{info.url}&$skiptoken={skiptoken}")
        body = await self._graph.get_json(info)
        found = [DirectoryGroup(str(g["id"]), str(g.get("displayName") or ""), str(g.get("description") or ""))
                 for g in body.get("value") or [] if isinstance(g, dict) and isinstance(g.get("id"), str)]
        counts = await asyncio.gather(*(self.group_user_count(g.id) for g in found))
        total = body.get("@odata.count")
        return GroupPage([DirectoryGroup(g.id, g.display_name, g.description, n) for g, n in zip(found, counts,
                                                                                                  strict=True)],
                         _skiptoken(body.get("@odata.nextLink")), total if isinstance(total, int) else None)

    async def group_user_count(self, group_id: str) -> int:
        """GET /groups/{id}/transitiveMembers/microsoft.graph.user/$count (a `$count` segment: advanced query)."""
        builder = self._sdk.groups.by_group_id(group_id).transitive_members.graph_user.count
        info = advanced_query(builder.to_get_request_information())
        send: Any = self._sdk.request_adapter.send_primitive_async
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        count = await self._graph.call(lambda: send(info, "int", {"XXX": ODataError}))
        return int(count or 0)

    async def group_name(self, group_id: str) -> str | None:
        """The group's display name, or None when there is no such group."""
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id", "displayName"])
        config = RequestConfiguration(query_parameters=query)
        group = await self._found(lambda: self._graph.call(lambda: self._sdk.groups.by_group_id(group_id).get(config)))
        return None if group is None else (group.display_name or "")

    async def user_id_by_upn(self, upn: str) -> str | None:
        """GET /users/{upn}?$select=id: the user's object id, None when no user has that UPN."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id"])
        config = RequestConfiguration(query_parameters=query)
        user = await self._found(lambda: self._graph.call(lambda: self._sdk.users.by_user_id(upn).get(config)),
                                 missing=(400, 404))
        return None if user is None or not user.id else user.id.lower()

    async def user_names(self, user_ids: list[str]) -> dict[str, UserName]:
        """The display name and UPN of each id that names a user: one `$batch` per 300 ids, each of its requests a
        `GET /users?$filter=id in (...)` of 15 ids (ids that name nobody are left out)."""
        ids = sorted({i.lower() for i in user_ids if i})
        chunks = [ids[i:i + IDS_PER_FILTER] for i in range(0, len(ids), IDS_PER_FILTER)]
        names: dict[str, UserName] = {}
        for start in range(0, len(chunks), BATCH_REQUESTS):
            requests = [{"id": str(n), "method": "GET", "url": "/users?$select=id,displayName,userPrincipalName"
                         "&$filter=id in (" + ",".join(f"'{i}'" for i in chunk) + ")"}
                        for n, chunk in enumerate(chunks[start:start + BATCH_REQUESTS])]
            for answer in await self._batch(requests):
                if answer.get("status") != 200:
                    raise GraphError(int(answer.get("status") or 502), "batch_request_failed")
                for user in (answer.get("body") or {}).get("value") or []:
                    if isinstance(user, dict) and isinstance(user.get("id"), str):
                        names[user["id"].lower()] = UserName(str(user.get("displayName") or ""),
                                                             str(user.get("userPrincipalName") or ""))
        return names

    async def _batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /$batch written out (the SDK's batch drops JSON bodies: contracts.md section 2)."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        info = RequestInformation(Method.POST)
        info.url = f"{self._graph.base_url}/$batch"
        info.set_stream_content(json.dumps({"requests": requests}).encode(), "application/json")
        send: Any = self._sdk.request_adapter.send_primitive_async
        raw = await self._graph.call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
        responses = body.get("responses") if isinstance(body, dict) else None
        return [r for r in responses or [] if isinstance(r, dict)]

    async def group_licensing_pages(self, group_id: str) -> AsyncIterator[list[UserLicensing]]:
        """GET /groups/{id}/transitiveMembers/microsoft.graph.user with what eligibility needs, 999 a page (the cast
        is an advanced query: its header and $count=true go with every page)."""
        from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
            GraphUserRequestBuilder,
        )

        builder = self._sdk.groups.by_group_id(group_id).transitive_members.graph_user
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            select=self.LICENSING_SELECT, top=999, count=True)
        first = advanced_query(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        async for users in self._graph.pages(first, lambda link: advanced_query(
                builder.with_url(counted_link(link)).to_get_request_information())):
            yield [licensing(u) for u in users]


def licensing(u: dict[str, Any]) -> UserLicensing:
    """One user of a `/users` or members page as eligibility reads it."""
    return UserLicensing(
        id=str(u.get("id") or ""),
        account_enabled=u.get("accountEnabled") is True,
        user_type=str(u.get("userType") or "Member"),
        synced=u.get("onPremisesSyncEnabled") is True,
        licenses=tuple(AssignedLicense(str(a.get("skuId") or ""), frozenset(str(p) for p in a.get("disabledPlans") or []))
                       for a in u.get("assignedLicenses") or []),
        upn=str(u.get("userPrincipalName") or ""),
        on_premises=OnPremAccount(str(u["onPremisesSecurityIdentifier"]), str(u.get("onPremisesDistinguishedName") or ""))
        if u.get("onPremisesSecurityIdentifier") else None,
        display_name=str(u.get("displayName") or ""),
    )
