"""Who is in scope: a group's users (enablement), a user's groups, and the changes since (delta queries).

Pages are requested with the SDK's request builders and sent through its request adapter (auth, retries, base
URL) but read as raw JSON: the SDK's model parsing costs about 4 ms per user (msgraph-sdk 1.65), minutes of CPU
for a tenant of 100,000. Stored links are followed only inside the Graph base URL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared.adapters.graph.client import GraphPart
from shared.adapters.graph.query import advanced_query, counted_link
from shared.domain.enablement import DirectoryPage, DirectoryUser
from shared.domain.ids import is_guid
from shared.domain.scope_sync import DeltaPage, GroupDeltaPage, MemberChange
from shared.errors import GraphError

# https://learn.microsoft.com/graph/delta-query-overview: an expired or unusable delta token answers "a
# 40X-series error with error codes such as syncStateNotFound" (400 for directory objects), a forced resync
# 410 Gone. Both mean the same to a caller: start again without a token, so both surface as GraphError 410.
LOST_SYNC_STATE = frozenset({"syncstatenotfound", "syncstateinvalid"})


def _sync_state_lost(error: GraphError) -> GraphError:
    if error.status == 400 and error.code.lower() in LOST_SYNC_STATE:
        return GraphError(410, error.code)
    return error


class GraphGroups(GraphPart):
    """Scope reads: enablement pages, group membership checks, /users/delta and /groups/delta pages."""

    ENABLEMENT_SELECT: ClassVar[list[str]] = ["id", "accountEnabled", "userType", "displayName", "userPrincipalName"]

    async def group_exists(self, group_id: str) -> bool:
        """GET /groups/{id}?$select=id: False when the directory has no such group (never was, or deleted)."""
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id"])
        config = RequestConfiguration(query_parameters=query)
        group = await self._found(lambda: self._graph.call(
            lambda: self._sdk.groups.by_group_id(group_id).get(request_configuration=config)))
        return group is not None

    async def enablement_page(self, group_id: str | None, cursor: str | None, with_count: bool) -> DirectoryPage:
        """One page of `/users` (group_id None) or `/groups/{id}/transitiveMembers/microsoft.graph.user`.

        `cursor` is a nextLink this gateway returned earlier (None: the first page, 999 users, $count when asked).
        The group's cast is an advanced query (aad-advanced-queries): `ConsistencyLevel: eventual` and
        `$count=true` go with every one of its pages, nextLinks included.
        """
        from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
            GraphUserRequestBuilder,
        )
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        builder: Any
        params: Any
        cast = group_id is not None
        if group_id is None:
            builder = self._sdk.users
            params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
        else:
            builder = self._sdk.groups.by_group_id(group_id).transitive_members.graph_user
            params = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters
        if cursor is not None:
            link = self._graph.check_link(cursor)  # a tampered checkpoint never leaves Graph
            info = builder.with_url(counted_link(link) if cast else link).to_get_request_information()
        else:
            counted = with_count or cast
            config = RequestConfiguration(
                query_parameters=params(select=self.ENABLEMENT_SELECT, top=999, count=True if counted else None)
            )
            info = builder.to_get_request_information(config)
        if cast or (cursor is None and with_count):
            advanced_query(info)  # $count on directory objects needs it too
        body = await self._graph.get_json(info)
        users = [
            DirectoryUser(id=str(u["id"]), account_enabled=u.get("accountEnabled") is True, user_type=u.get("userType"),
                          display_name=str(u.get("displayName") or ""),
                          user_principal_name=str(u.get("userPrincipalName") or ""))
            for u in body.get("value") or []
            if isinstance(u, dict) and isinstance(u.get("id"), str)
        ]
        count = body.get("@odata.count") if with_count else None
        return DirectoryPage(users, body.get("@odata.nextLink"), count if isinstance(count, int) else None)

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]:
        """POST /users/{id}/checkMemberGroups (transitive, up to 20 ids): the ids the user is a member of.
        A user deleted meanwhile is a member of none."""
        from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
            CheckMemberGroupsPostRequestBody,
        )

        body = CheckMemberGroupsPostRequestBody(group_ids=group_ids)
        result = await self._found(lambda: self._graph.call(
            lambda: self._sdk.users.by_user_id(user_id).check_member_groups.post(body)))
        return {g.lower() for g in (result.value if result and result.value else [])}

    async def users_delta_page(self, cursor: str | None) -> DeltaPage:
        """GET /users/delta (cursor None: a full enumeration from scratch) or the stored nextLink / deltaLink.

        GraphError 410 when Graph no longer knows the delta token (410, or 400 syncStateNotFound /
        syncStateInvalid): restart without one.
        """
        from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

        builder = self._sdk.users.delta
        if cursor is not None:
            info = builder.with_url(self._graph.check_link(cursor)).to_get_request_information()
        else:
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=self.ENABLEMENT_SELECT)
            config = RequestConfiguration(query_parameters=params)
            config.headers.add("Prefer", "odata.maxpagesize=999")
            info = builder.to_get_request_information(config)
        try:
            body = await self._graph.get_json(info)
        except GraphError as error:
            raise _sync_state_lost(error) from None
        users: list[DirectoryUser] = []
        removed: list[str] = []
        for u in body.get("value") or []:
            if not isinstance(u, dict) or not isinstance(u.get("id"), str):
                continue
            if "@removed" in u:
                removed.append(u["id"])
            else:
                users.append(DirectoryUser(id=u["id"], account_enabled=u.get("accountEnabled") is True,
                                           user_type=u.get("userType"), display_name=str(u.get("displayName") or ""),
                                           user_principal_name=str(u.get("userPrincipalName") or "")))
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        return DeltaPage(users, removed, next_link if isinstance(next_link, str) else None,
                         delta_link if isinstance(delta_link, str) else None)

    # Real Graph's /users/delta does not report membership; /groups/delta on the group and its nested groups does
    # (members@delta, removals with @removed).

    async def groups_delta_page(self, group_ids: list[str], cursor: str | None) -> GroupDeltaPage:
        """GET /groups/delta?$filter=id eq '<id>' or ..&$select=members (cursor None: a full round from scratch)
        or the stored nextLink / deltaLink. GraphError 410 when Graph no longer knows the delta token."""
        from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder

        builder = self._sdk.groups.delta
        if cursor is not None:
            info = builder.with_url(self._graph.check_link(cursor)).to_get_request_information()
        else:
            if not group_ids or not all(is_guid(g) for g in group_ids):  # ids are filter text: GUIDs only (D6)
                raise GraphError(400, "group_ids_not_guids")
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                filter=" or ".join(f"id eq '{g.lower()}'" for g in group_ids), select=["id", "members"])
            info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        try:
            body = await self._graph.get_json(info)
        except GraphError as error:
            raise _sync_state_lost(error) from None
        changes: list[MemberChange] = []
        for group in body.get("value") or []:
            if not isinstance(group, dict) or not isinstance(group.get("id"), str):
                continue
            for member in group.get("members@delta") or []:
                if isinstance(member, dict) and isinstance(member.get("id"), str):
                    changes.append(MemberChange(
                        group_id=group["id"].lower(), member_id=member["id"].lower(),
                        is_group=str(member.get("@odata.type", "")).lower() == "#microsoft.graph.group",
                        removed="@removed" in member))
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        return GroupDeltaPage(changes, next_link if isinstance(next_link, str) else None,
                              delta_link if isinstance(delta_link, str) else None)
