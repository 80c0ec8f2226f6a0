"""One user in the directory: who a username is, their contact and roles, a new password, their sessions.

The password goes as plain JSON written here (never through a model, never logged) so it reaches Graph
byte-exact (security.md B3); the SDK's retry handler resends the same bytes on 429/5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation

from shared.adapters.graph.client import GraphPart
from shared.adapters.graph.query import advanced_query, counted_link
from shared.domain.eligibility import AssignedLicense
from shared.domain.enablement import DirectoryUser
from shared.domain.onprem import OnPremAccount
from shared.errors import GraphError


@dataclass(frozen=True)
class ResetUser:
    """What a reset decides on about one user (GET /users/{upn})."""

    id: str
    user_principal_name: str
    display_name: str
    given_name: str
    surname: str
    account_enabled: bool
    user_type: str
    synced: bool
    licenses: tuple[AssignedLicense, ...]
    on_premises: OnPremAccount | None = None  # a synced user's AD account: its SID and DN


@dataclass(frozen=True)
class UserContact:
    """Where a user reads mail and in which language (registration reminders, verification mails)."""

    id: str
    display_name: str
    mail: str | None
    other_mails: tuple[str, ...]
    preferred_language: str | None


class GraphUsers(GraphPart):
    """Reads and writes of one user object (reset, registration, notifications, enablement, expiration)."""

    RESET_USER_SELECT: ClassVar[list[str]] = [
        "id", "userPrincipalName", "displayName", "givenName", "surname", "accountEnabled", "userType",
        "onPremisesSyncEnabled", "assignedLicenses", "onPremisesSecurityIdentifier", "onPremisesDistinguishedName",
    ]
    DIRECTORY_USER_SELECT: ClassVar[list[str]] = ["id", "accountEnabled", "userType", "displayName", "userPrincipalName"]

    async def reset_user(self, username: str) -> ResetUser | None:
        """GET /users/{userPrincipalName}: the facts a reset decides on, or None when no user has that name."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=self.RESET_USER_SELECT)
        config = RequestConfiguration(query_parameters=query)
        # 400: a name Graph cannot even parse as an id or UPN
        user = await self._found(lambda: self._graph.call(
            lambda: self._sdk.users.by_user_id(username).get(request_configuration=config)), missing=(400, 404))
        if user is None or not user.id:
            return None
        return ResetUser(
            id=user.id, user_principal_name=user.user_principal_name or username,
            display_name=user.display_name or "", given_name=user.given_name or "", surname=user.surname or "",
            account_enabled=bool(user.account_enabled), user_type=user.user_type or "Member",
            synced=bool(user.on_premises_sync_enabled),
            licenses=tuple(AssignedLicense(sku_id=str(a.sku_id or ""),
                                           disabled_plans=frozenset(str(p) for p in a.disabled_plans or ()))
                           for a in user.assigned_licenses or ()),
            on_premises=OnPremAccount(user.on_premises_security_identifier,
                                      user.on_premises_distinguished_name or "")
            if user.on_premises_sync_enabled and user.on_premises_security_identifier else None,
        )

    async def directory_user(self, user_id: str) -> DirectoryUser | None:
        """GET /users/{id}?$select=id,accountEnabled,userType; None when the directory has no such user."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=self.DIRECTORY_USER_SELECT)
        user = await self._found(lambda: self._graph.call(lambda: self._sdk.users.by_user_id(user_id).get(
            request_configuration=RequestConfiguration(query_parameters=query))))
        if user is None or user.id is None:
            return None
        return DirectoryUser(id=user.id, account_enabled=user.account_enabled is True, user_type=user.user_type,
                             display_name=user.display_name or "", user_principal_name=user.user_principal_name or "")

    async def usage_location(self, user_id: str) -> str | None:
        """GET /users/{id}?$select=usageLocation: the two-letter country where the user uses services, or None."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "usageLocation"])
        user = await self._graph.call(lambda: self._sdk.users.by_user_id(user_id).get(
            request_configuration=RequestConfiguration(query_parameters=query)))
        location = user.usage_location if user is not None else None
        return location.upper() if location and len(location) == 2 and location.isalpha() else None

    async def user_contact(self, user_id: str) -> UserContact:
        """GET /users/{id}: where and in which language the user reads mail (GraphError 404 if no such user)."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "displayName", "mail", "otherMails", "preferredLanguage"]
        )
        config = RequestConfiguration(query_parameters=query)
        user = await self._graph.call(lambda: self._sdk.users.by_user_id(user_id).get(request_configuration=config))
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound")
        return UserContact(
            id=user.id or user_id, display_name=user.display_name or "", mail=user.mail,
            other_mails=tuple(user.other_mails or ()), preferred_language=user.preferred_language,
        )

    async def directory_roles(self, user_id: str) -> list[str]:
        """GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole: the display names of the user's roles.

        The cast is an advanced query (aad-advanced-queries): `ConsistencyLevel: eventual` and `$count=true` go
        with every page, or Graph may answer without the cast and count groups as roles."""
        builder = self._sdk.users.by_user_id(user_id).transitive_member_of.graph_directory_role
        first = f"{self._graph.base_url}/users/{quote(user_id, safe='@')}/transitiveMemberOf/" \
                "microsoft.graph.directoryRole?$select=id,displayName&$count=true"

        def page(link: str) -> RequestInformation:
            return advanced_query(builder.with_url(counted_link(link)).to_get_request_information())

        return [str(r.get("displayName") or r.get("id") or "") async for roles in self._graph.pages(page(first), page)
                for r in roles]

    async def user_password_policies(self, user_id: str) -> str | None:
        """A user's `passwordPolicies` (GraphError 404 when there is no such user)."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "passwordPolicies"])
        config = RequestConfiguration(query_parameters=query)
        user = await self._graph.call(lambda: self._sdk.users.by_user_id(user_id).get(request_configuration=config))
        return user.password_policies if user else None

    async def set_user_password_policies(self, user_id: str, password_policies: str) -> None:
        """PATCH /users/{id} `passwordPolicies` (the whole combined value; User.ReadUpdate.All, user-update).

        The body is written as plain JSON holding only that property: the SDK's `User` model adds
        `@odata.type`, which the emulator refuses (real Graph accepts it).
        """
        await self._patch_user(user_id, {"passwordPolicies": password_policies})

    async def set_password(self, user_id: str, password: str) -> None:
        """PATCH /users/{id} passwordProfile (no change forced at next sign-in: the user just chose it).

        GraphError 400 when Graph refuses the password (complexity), 403 when the app lacks the role."""
        await self._patch_user(user_id, {"passwordProfile": {"password": password,
                                                             "forceChangePasswordNextSignIn": False}})

    async def _patch_user(self, user_id: str, fields: dict[str, object]) -> None:
        from msgraph.generated.models.user import User

        request = self._sdk.users.by_user_id(user_id).to_patch_request_information(User())
        request.content = json.dumps(fields).encode()
        await self._graph.send_no_content(request)

    async def revoke_sessions(self, user_id: str) -> None:
        """POST /users/{id}/revokeSignInSessions: every refresh token and session cookie stops working (B4)."""
        await self._graph.call(lambda: self._sdk.users.by_user_id(user_id).revoke_sign_in_sessions.post())
