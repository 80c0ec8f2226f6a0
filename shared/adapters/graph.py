"""The service's one door to Microsoft Graph: msgraph-sdk over httpx, bounded, retried, errors translated.

The SDK's retry middleware retries 429/503/504 honouring `Retry-After` (security.md F5); a semaphore bounds
concurrent calls per process so scale-out stays inside the tenant's Graph quota (G4). SDK errors become
`GraphError` / `GraphUnavailable` (shared/errors.py) so no Graph error body ever reaches a response.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.organization.organization_request_builder import OrganizationRequestBuilder
from msgraph_core import GraphClientFactory

from shared.config import Settings
from shared.domain.eligibility import AssignedLicense, ServicePlan, SubscribedSku, Subscription, UserLicensing
from shared.domain.enablement import DirectoryPage, DirectoryUser
from shared.domain.ids import is_guid
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.domain.scope_sync import DeltaPage, GroupDeltaPage, MemberChange
from shared.errors import GraphError, GraphUnavailable

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRY = RetryHandlerOption(delay=0.5, max_retries=5, should_retry=True)
# F5: throttling and every transient 5xx are retried (the SDK's default leaves out 500 and 502).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# However many Retry-After waits Graph asks for, one call gives up after this many request timeouts: a user's
# request must not hang for the SDK's worst case (5 waits of up to 180 s); queue work is redelivered instead.
CALL_DEADLINE_TIMEOUTS = 6

T = TypeVar("T")


@dataclass(frozen=True)
class Organization:
    id: str
    display_name: str
    verified_domains: tuple[str, ...]


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


@dataclass(frozen=True)
class UserContact:
    """Where a user reads mail and in which language (registration reminders, verification mails)."""

    id: str
    display_name: str
    mail: str | None
    other_mails: tuple[str, ...]
    preferred_language: str | None


class GraphGateway:
    """Typed Graph calls the services need; each goes through `_call` (bound, translated)."""

    def __init__(self, client: GraphServiceClient, http: httpx.AsyncClient, max_concurrency: int,
                 call_deadline_seconds: float = 60.0) -> None:
        self._client = client
        self._http = http
        self._slots = asyncio.Semaphore(max_concurrency)
        self._deadline = call_deadline_seconds

    @classmethod
    def create(cls, settings: Settings, credential: AsyncTokenCredential) -> GraphGateway:
        host = urlsplit(settings.graph_base_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
        timeout = httpx.Timeout(settings.graph_timeout_seconds, connect=min(5.0, settings.graph_timeout_seconds))
        middleware = KiotaClientFactory.get_default_middleware({RETRY.get_key(): RETRY})
        for handler in middleware:
            if isinstance(handler, RetryHandler):
                handler.retry_on_status_codes = set(RETRY_STATUSES)
        http = GraphClientFactory.create_with_custom_middleware(middleware, client=httpx.AsyncClient(timeout=timeout))
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = settings.graph_base_url
        return cls(GraphServiceClient(request_adapter=adapter), http, settings.graph_max_concurrency,
                   call_deadline_seconds=settings.graph_timeout_seconds * CALL_DEADLINE_TIMEOUTS)

    @property
    def sdk(self) -> GraphServiceClient:
        return self._client

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            try:
                async with asyncio.timeout(self._deadline):
                    return await operation()
            except TimeoutError:
                raise GraphUnavailable(f"Graph did not answer within {self._deadline:.0f} s") from None
            except APIError as exc:
                status = exc.response_status_code or 0
                error = getattr(exc, "error", None)
                code = getattr(error, "code", None) or "unknown"
                if status == 429 or status >= 500:
                    raise GraphUnavailable(f"Graph answered {status} {code} after retries") from None
                raise GraphError(status, code) from None
            except (httpx.HTTPError, ClientAuthenticationError) as exc:
                raise GraphUnavailable(f"Graph unreachable: {type(exc).__name__}") from None

    async def organization(self) -> Organization:
        """GET /organization: the tenant's id, name and verified domains."""
        query = OrganizationRequestBuilder.OrganizationRequestBuilderGetQueryParameters(
            select=["id", "displayName", "verifiedDomains"]
        )
        config = RequestConfiguration(query_parameters=query)
        page = await self._call(lambda: self._client.organization.get(request_configuration=config))
        if page is None or not page.value:
            raise GraphError(404, "Request_ResourceNotFound")
        org = page.value[0]
        domains = tuple(d.name for d in (org.verified_domains or []) if d.name)
        return Organization(id=org.id or "", display_name=org.display_name or "", verified_domains=domains)

    # ---- tenant eligibility and password expiration ------------------------------------------------------
    # Request builders are imported in the methods: only the admin endpoints pay for them.

    async def subscriptions(self) -> list[Subscription]:
        """GET /directory/subscriptions: each commercial subscription, trial or paid, and its status."""
        page = await self._call(lambda: self._client.directory.subscriptions.get())
        return [
            Subscription(sku_id=str(s.sku_id or ""), sku_part_number=s.sku_part_number or "",
                         is_trial=bool(s.is_trial), status=s.status or "")
            for s in (page.value if page and page.value else [])
        ]

    async def subscribed_skus(self) -> list[SubscribedSku]:
        """GET /subscribedSkus: the SKUs the tenant holds and the service plans inside each."""
        page = await self._call(lambda: self._client.subscribed_skus.get())
        skus: list[SubscribedSku] = []
        for sku in page.value if page and page.value else []:
            plans = tuple(
                ServicePlan(plan_id=str(p.service_plan_id or ""), name=p.service_plan_name or "",
                            provisioning_status=p.provisioning_status or "")
                for p in sku.service_plans or []
            )
            units = sku.prepaid_units.enabled if sku.prepaid_units and sku.prepaid_units.enabled else 0
            skus.append(SubscribedSku(sku_id=str(sku.sku_id or ""), sku_part_number=sku.sku_part_number or "",
                                      capability_status=sku.capability_status or "", enabled_units=units,
                                      service_plans=plans))
        return skus

    async def user_licensing_pages(self, page_size: int = 999) -> AsyncIterator[list[UserLicensing]]:
        """GET /users with only what eligibility needs, one page at a time (no per-user licenseDetails calls).

        Sent through the SDK's adapter (auth, retries, errors) but parsed with `json`: the SDK's model parsing
        costs milliseconds per user, minutes for a 100,000-user tenant.
        """
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "accountEnabled", "userType", "onPremisesSyncEnabled", "assignedLicenses"], top=page_size
        )
        request = self._client.users.to_get_request_information(RequestConfiguration(query_parameters=query))
        adapter = self._client.request_adapter
        errors: dict[str, Any] = {"XXX": ODataError}
        while True:
            send = functools.partial(adapter.send_primitive_async, request, "bytes", errors)
            raw: Any = await self._call(send)
            page = json.loads(raw or b"{}")
            yield [
                UserLicensing(
                    id=str(u.get("id") or ""),
                    account_enabled=u.get("accountEnabled") is True,
                    user_type=str(u.get("userType") or "Member"),
                    synced=u.get("onPremisesSyncEnabled") is True,
                    licenses=tuple(
                        AssignedLicense(str(a.get("skuId") or ""), frozenset(str(p) for p in a.get("disabledPlans") or []))
                        for a in u.get("assignedLicenses") or []
                    ),
                )
                for u in page.get("value") or []
            ]
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            request = self._client.users.with_url(next_link).to_get_request_information()

    async def verified_domains(self) -> list[VerifiedDomain]:
        """GET /domains: the verified domains and each one's password expiration policy."""
        from msgraph.generated.domains.domains_request_builder import DomainsRequestBuilder

        query = DomainsRequestBuilder.DomainsRequestBuilderGetQueryParameters(select=[
            "id", "isVerified", "isDefault", "authenticationType", "passwordValidityPeriodInDays",
            "passwordNotificationWindowInDays",
        ])
        config = RequestConfiguration(query_parameters=query)
        page = await self._call(lambda: self._client.domains.get(request_configuration=config))
        return [
            VerifiedDomain(
                name=d.id or "",
                is_default=bool(d.is_default),
                authentication_type=d.authentication_type or "",
                expiration=DomainExpiration.from_graph(
                    d.id or "", d.password_validity_period_in_days, d.password_notification_window_in_days
                ),
            )
            for d in (page.value if page and page.value else [])
            if d.is_verified and d.id
        ]

    async def set_domain_expiration(self, expiration: DomainExpiration) -> None:
        """PATCH /domains/{id} with the validity period (2147483647 = never) and the notification window."""
        from msgraph.generated.models.domain import Domain

        body = Domain(
            password_validity_period_in_days=expiration.graph_validity,
            password_notification_window_in_days=expiration.notification_days,
        )
        await self._call(lambda: self._client.domains.by_domain_id(expiration.domain).patch(body))

    async def user_password_policies(self, user_id: str) -> str | None:
        """A user's `passwordPolicies` (GraphError 404 when there is no such user)."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "passwordPolicies"])
        config = RequestConfiguration(query_parameters=query)
        user = await self._call(lambda: self._client.users.by_user_id(user_id).get(request_configuration=config))
        return user.password_policies if user else None

    async def set_user_password_policies(self, user_id: str, password_policies: str) -> None:
        """PATCH /users/{id} `passwordPolicies` (the whole combined value).

        The body is written as plain JSON holding only that property: the SDK's `User` model adds
        `@odata.type`, which the emulator refuses (real Graph accepts it).
        """
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.models.user import User

        request = self._client.users.by_user_id(user_id).to_patch_request_information(User())
        request.content = json.dumps({"passwordPolicies": password_policies}).encode()
        errors: dict[str, Any] = {"XXX": ODataError}
        adapter = self._client.request_adapter
        await self._call(functools.partial(adapter.send_no_response_content_async, request, errors))

    # ---- enablement: the users in a run's scope, one page at a time --------------------------------------
    # Pages are requested with the SDK's request builders and sent through its request adapter (same auth,
    # retry on 429/503/504 with Retry-After, base URL), but read as raw JSON: the SDK's model parsing costs
    # about 4 ms per user (msgraph-sdk 1.65), minutes of CPU for a tenant of 100,000.

    ENABLEMENT_SELECT: ClassVar[list[str]] = ["id", "accountEnabled", "userType"]

    async def group_exists(self, group_id: str) -> bool:
        """GET /groups/{id}?$select=id: False when the directory has no such group (never was, or deleted)."""
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id"])
        config = RequestConfiguration(query_parameters=query)
        try:
            group = await self._call(
                lambda: self._client.groups.by_group_id(group_id).get(request_configuration=config)
            )
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return group is not None

    async def enablement_page(self, group_id: str | None, cursor: str | None, with_count: bool) -> DirectoryPage:
        """One page of `/users` (group_id None) or `/groups/{id}/transitiveMembers/microsoft.graph.user`.

        `cursor` is a nextLink this gateway returned earlier (None: the first page, 999 users, $count when asked).
        """
        from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
            GraphUserRequestBuilder,
        )
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        builder: Any
        params: Any
        if group_id is None:
            builder = self._client.users
            params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
        else:
            builder = self._client.groups.by_group_id(group_id).transitive_members.graph_user
            params = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters
        if cursor is not None:
            base = str(self._client.request_adapter.base_url).rstrip("/") + "/"
            if not cursor.startswith(base):
                raise GraphError(400, "cursor_outside_graph")  # a tampered checkpoint never leaves Graph
            info = builder.with_url(cursor).to_get_request_information()
        else:
            config = RequestConfiguration(
                query_parameters=params(select=self.ENABLEMENT_SELECT, top=999, count=True if with_count else None)
            )
            if with_count:
                config.headers.add("ConsistencyLevel", "eventual")  # $count on directory objects needs it
            info = builder.to_get_request_information(config)
        send: Any = self._client.request_adapter.send_primitive_async
        raw = await self._call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
        users = [
            DirectoryUser(id=str(u["id"]), account_enabled=u.get("accountEnabled") is True, user_type=u.get("userType"))
            for u in body.get("value") or []
            if isinstance(u, dict) and isinstance(u.get("id"), str)
        ]
        count = body.get("@odata.count")
        return DirectoryPage(users, body.get("@odata.nextLink"), count if isinstance(count, int) else None)

    # ---- scope re-sync: changed users (/users/delta) and a user's group membership ------------------------
    # Delta pages are raw JSON through the request adapter, like enablement pages; the stored links are followed
    # with `with_url` and refused when they point outside the Graph base URL (a tampered row never leaves Graph).

    async def users_delta_page(self, cursor: str | None) -> DeltaPage:
        """GET /users/delta (cursor None: a full enumeration from scratch) or the stored nextLink / deltaLink.

        GraphError 410 when Graph no longer knows the delta token (syncStateNotFound): restart without one.
        """
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

        builder = self._client.users.delta
        if cursor is not None:
            base = str(self._client.request_adapter.base_url).rstrip("/") + "/"
            if not cursor.startswith(base):
                raise GraphError(400, "cursor_outside_graph")
            info = builder.with_url(cursor).to_get_request_information()
        else:
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=self.ENABLEMENT_SELECT)
            config = RequestConfiguration(query_parameters=params)
            config.headers.add("Prefer", "odata.maxpagesize=999")
            info = builder.to_get_request_information(config)
        send: Any = self._client.request_adapter.send_primitive_async
        raw = await self._call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
        users: list[DirectoryUser] = []
        removed: list[str] = []
        for u in body.get("value") or []:
            if not isinstance(u, dict) or not isinstance(u.get("id"), str):
                continue
            if "@removed" in u:
                removed.append(u["id"])
            else:
                users.append(DirectoryUser(id=u["id"], account_enabled=u.get("accountEnabled") is True,
                                           user_type=u.get("userType")))
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        return DeltaPage(users, removed, next_link if isinstance(next_link, str) else None,
                         delta_link if isinstance(delta_link, str) else None)

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]:
        """POST /users/{id}/checkMemberGroups (transitive, up to 20 ids): the ids the user is a member of.
        A user deleted meanwhile is a member of none."""
        from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
            CheckMemberGroupsPostRequestBody,
        )

        body = CheckMemberGroupsPostRequestBody(group_ids=group_ids)
        try:
            result = await self._call(
                lambda: self._client.users.by_user_id(user_id).check_member_groups.post(body)
            )
        except GraphError as error:
            if error.status == 404:
                return set()
            raise
        return {g.lower() for g in (result.value if result and result.value else [])}

    # ---- compliance / scope re-sync: a Selected group's membership changes (/groups/delta) -----------------
    # Real Graph's /users/delta does not report membership; /groups/delta on the group and its nested groups does
    # (members@delta, removals with @removed). Raw JSON through the request adapter, like the users' delta.

    async def groups_delta_page(self, group_ids: list[str], cursor: str | None) -> GroupDeltaPage:
        """GET /groups/delta?$filter=id eq '<id>' or ..&$select=members (cursor None: a full round from scratch)
        or the stored nextLink / deltaLink. GraphError 410 when Graph no longer knows the delta token."""
        from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        builder = self._client.groups.delta
        if cursor is not None:
            base = str(self._client.request_adapter.base_url).rstrip("/") + "/"
            if not cursor.startswith(base):
                raise GraphError(400, "cursor_outside_graph")
            info = builder.with_url(cursor).to_get_request_information()
        else:
            if not group_ids or not all(is_guid(g) for g in group_ids):  # ids are filter text: GUIDs only (D6)
                raise GraphError(400, "group_ids_not_guids")
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                filter=" or ".join(f"id eq '{g.lower()}'" for g in group_ids), select=["id", "members"])
            info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        send: Any = self._client.request_adapter.send_primitive_async
        raw = await self._call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
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

    async def directory_user(self, user_id: str) -> DirectoryUser | None:
        """GET /users/{id}?$select=id,accountEnabled,userType; None when the directory has no such user."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=self.ENABLEMENT_SELECT)
        try:
            user = await self._call(lambda: self._client.users.by_user_id(user_id).get(
                request_configuration=RequestConfiguration(query_parameters=query)))
        except GraphError as error:
            if error.status == 404:
                return None
            raise
        if user is None or user.id is None:
            return None
        return DirectoryUser(id=user.id, account_enabled=user.account_enabled is True, user_type=user.user_type)

    # ---- registration and notifications: mail, directory roles, a user's contact info --------------------

    async def send_mail(self, sender: str, to: list[str], subject: str, html: str) -> None:
        """POST /users/{sender}/sendMail (HTML body), not saved to Sent Items."""
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        message = Message(
            subject=subject,
            body=ItemBody(content_type=BodyType.Html, content=html),
            to_recipients=[Recipient(email_address=EmailAddress(address=address)) for address in to],
        )
        body = SendMailPostRequestBody(message=message, save_to_sent_items=False)
        await self._call(lambda: self._client.users.by_user_id(sender).send_mail.post(body))

    async def directory_roles(self, user_id: str) -> list[str]:
        """GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole: the display names of the user's roles."""
        page = await self._call(
            lambda: self._client.users.by_user_id(user_id).transitive_member_of.graph_directory_role.get()
        )
        return [r.display_name or r.id or "" for r in (page.value if page and page.value else [])]

    async def user_contact(self, user_id: str) -> UserContact:
        """GET /users/{id}: where and in which language the user reads mail (GraphError 404 if no such user)."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "displayName", "mail", "otherMails", "preferredLanguage"]
        )
        config = RequestConfiguration(query_parameters=query)
        user = await self._call(lambda: self._client.users.by_user_id(user_id).get(request_configuration=config))
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound")
        return UserContact(
            id=user.id or user_id, display_name=user.display_name or "", mail=user.mail,
            other_mails=tuple(user.other_mails or ()), preferred_language=user.preferred_language,
        )

    # ---- compliance: Entra's own registration report (userRegistrationDetails), one page at a time ---------
    # Raw JSON through the SDK's request adapter, as for enablement pages: 999 users a page, no model parsing.
    # The reports API allows 5 requests / 10 s per app: the caller paces the pages; a 429 is retried here.

    REGISTRATION_DETAILS_SELECT: ClassVar[list[str]] = [
        "id", "isSsprRegistered", "isSsprEnabled", "isSsprCapable", "methodsRegistered",
    ]

    async def user_registration_details_page(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """GET /reports/authenticationMethods/userRegistrationDetails?$top=999 (or the nextLink `cursor`): the
        page's user entries as JSON objects and the next page's link. GraphError 403 without Entra ID P1/P2."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (
            UserRegistrationDetailsRequestBuilder,
        )

        builder = self._client.reports.authentication_methods.user_registration_details
        if cursor is not None:
            base = str(self._client.request_adapter.base_url).rstrip("/") + "/"
            if not cursor.startswith(base):
                raise GraphError(400, "cursor_outside_graph")  # a tampered checkpoint never leaves Graph
            info = builder.with_url(cursor).to_get_request_information()
        else:
            params = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
                select=self.REGISTRATION_DETAILS_SELECT, top=999
            )
            info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        send: Any = self._client.request_adapter.send_primitive_async
        raw = await self._call(lambda: send(info, "bytes", {"XXX": ODataError}))
        body = json.loads(raw or b"{}")
        entries = [u for u in body.get("value") or [] if isinstance(u, dict) and isinstance(u.get("id"), str)]
        next_link = body.get("@odata.nextLink")
        return entries, next_link if isinstance(next_link, str) else None

    # ---- reset: who a username is, a new password, the end of their sessions, whom to tell -------------------
    # The password goes as plain JSON written here (never through a model, never logged) so it reaches Graph
    # byte-exact (security.md B3); the SDK's retry handler resends the same bytes on 429/503/504.

    RESET_USER_SELECT: ClassVar[list[str]] = [
        "id", "userPrincipalName", "displayName", "givenName", "surname", "accountEnabled", "userType",
        "onPremisesSyncEnabled", "assignedLicenses",
    ]
    GLOBAL_ADMINISTRATOR_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"

    async def reset_user(self, username: str) -> ResetUser | None:
        """GET /users/{userPrincipalName}: the facts a reset decides on, or None when no user has that name."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=self.RESET_USER_SELECT)
        config = RequestConfiguration(query_parameters=query)
        try:
            user = await self._call(lambda: self._client.users.by_user_id(username).get(request_configuration=config))
        except GraphError as error:
            if error.status in (400, 404):  # 400: a name Graph cannot even parse as an id or UPN
                return None
            raise
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
        )

    async def set_password(self, user_id: str, password: str) -> None:
        """PATCH /users/{id} passwordProfile (no change forced at next sign-in: the user just chose it).

        GraphError 400 when Graph refuses the password (complexity), 403 when the app lacks the role."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.models.user import User

        request = self._client.users.by_user_id(user_id).to_patch_request_information(User())
        request.content = json.dumps(
            {"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False}}
        ).encode()
        errors: dict[str, Any] = {"XXX": ODataError}
        adapter = self._client.request_adapter
        await self._call(functools.partial(adapter.send_no_response_content_async, request, errors))

    async def revoke_sessions(self, user_id: str) -> None:
        """POST /users/{id}/revokeSignInSessions: every refresh token and session cookie stops working (B4)."""
        await self._call(lambda: self._client.users.by_user_id(user_id).revoke_sign_in_sessions.post())

    async def global_administrator_mails(self) -> list[str]:
        """The mail addresses of the tenant's Global Administrators (told when an administrator reset)."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        # The SDK has no builder for a role's members by template id: the URL is written out, sent raw.
        base = str(self._client.request_adapter.base_url).rstrip("/")
        url = f"{base}/directoryRoles(roleTemplateId='{self.GLOBAL_ADMINISTRATOR_TEMPLATE}')/members?$select=id,mail"
        info = self._client.directory_roles.with_url(url).to_get_request_information()
        send: Any = self._client.request_adapter.send_primitive_async
        raw = await self._call(lambda: send(info, "bytes", {"XXX": ODataError}))
        members = json.loads(raw or b"{}").get("value") or []
        return [m["mail"] for m in members if isinstance(m, dict) and isinstance(m.get("mail"), str) and m["mail"]]

    async def warm_up(self) -> None:
        """Pay the SDK's lazy imports (request builders, models, serializers) now, not in a user's request."""
        try:
            await self.organization()
        except (GraphError, GraphUnavailable):
            pass  # warming is best effort; health reports reachability

    async def close(self) -> None:
        await self._http.aclose()
