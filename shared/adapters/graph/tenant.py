"""The tenant as a whole: organization, subscriptions and licences, verified domains and their password
expiration, and who its Global Administrators are.

Request builders are imported in the methods: only the admin endpoints pay for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.organization.organization_request_builder import OrganizationRequestBuilder

from shared.adapters.graph.client import GraphPart
from shared.adapters.graph.directory import GraphDirectory, licensing
from shared.domain.eligibility import ServicePlan, SubscribedSku, Subscription, UserLicensing
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.errors import GraphError


@dataclass(frozen=True)
class Organization:
    id: str
    display_name: str
    verified_domains: tuple[str, ...]


class GraphTenant(GraphPart):
    """Tenant-wide reads and the domain writes (eligibility, password expiration, admin notices, warm-up)."""

    GLOBAL_ADMINISTRATOR_TEMPLATE: ClassVar[str] = "62e90394-69f5-4237-9190-012177145e10"

    async def organization(self) -> Organization:
        """GET /organization: the tenant's id, name and verified domains."""
        query = OrganizationRequestBuilder.OrganizationRequestBuilderGetQueryParameters(
            select=["id", "displayName", "verifiedDomains"]
        )
        config = RequestConfiguration(query_parameters=query)
        page = await self._graph.call(lambda: self._sdk.organization.get(request_configuration=config))
        if page is None or not page.value:
            raise GraphError(404, "Request_ResourceNotFound")
        org = page.value[0]
        domains = tuple(d.name for d in (org.verified_domains or []) if d.name)
        return Organization(id=org.id or "", display_name=org.display_name or "", verified_domains=domains)

    @staticmethod
    def load_sdk_models() -> None:
        """Pay the SDK's lazy imports (some 1,200 model modules: most of a second) by parsing a canned /organization
        answer as a typed read does. It sends nothing and touches no client, so a thread can run it while the event
        loop serves; a request that needs a module still being imported waits for that import, no longer."""
        from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
        from msgraph.generated.models.organization_collection_response import OrganizationCollectionResponse

        canned = b'{"value": [{"id": "warm-up", "verifiedDomains": [{"name": "warm-up"}]}]}'
        JsonParseNodeFactory().get_root_parse_node("application/json", canned).get_object_value(
            OrganizationCollectionResponse)

    async def reachable(self) -> None:
        """GET /organization?$select=id read as plain JSON: Graph answers and takes our token. The health probe
        and the warm-up use it: a first typed read imports some 1,200 SDK model modules (most of a second on a new
        instance), which neither needs."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.GET)
        info.url = f"{self._graph.base_url}/organization?$select=id"
        await self._graph.get_json(info)

    async def subscriptions(self) -> list[Subscription]:
        """GET /directory/subscriptions: each commercial subscription, trial or paid, and its status."""
        page = await self._graph.call(lambda: self._sdk.directory.subscriptions.get())
        return [
            Subscription(sku_id=str(s.sku_id or ""), sku_part_number=s.sku_part_number or "",
                         is_trial=bool(s.is_trial), status=s.status or "")
            for s in (page.value if page and page.value else [])
        ]

    async def subscribed_skus(self) -> list[SubscribedSku]:
        """GET /subscribedSkus: the SKUs the tenant holds and the service plans inside each."""
        page = await self._graph.call(lambda: self._sdk.subscribed_skus.get())
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
        """GET /users with only what eligibility needs, one page at a time (no per-user licenseDetails calls),
        parsed as raw JSON (no model parsing per user)."""
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=GraphDirectory.LICENSING_SELECT, top=page_size
        )
        users_at = self._sdk.users
        first = users_at.to_get_request_information(RequestConfiguration(query_parameters=query))
        async for users in self._graph.pages(first, lambda link: users_at.with_url(link).to_get_request_information()):
            yield [licensing(u) for u in users]

    async def verified_domains(self) -> list[VerifiedDomain]:
        """GET /domains: the verified domains and each one's password expiration policy."""
        from msgraph.generated.domains.domains_request_builder import DomainsRequestBuilder

        query = DomainsRequestBuilder.DomainsRequestBuilderGetQueryParameters(select=[
            "id", "isVerified", "isDefault", "authenticationType", "passwordValidityPeriodInDays",
            "passwordNotificationWindowInDays",
        ])
        config = RequestConfiguration(query_parameters=query)
        page = await self._graph.call(lambda: self._sdk.domains.get(request_configuration=config))
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
        await self._graph.call(lambda: self._sdk.domains.by_domain_id(expiration.domain).patch(body))

    async def global_administrator_mails(self) -> list[str]:
        """The mail addresses of the tenant's Global Administrators (told when an administrator reset)."""
        # The SDK has no builder for a role's members by template id: the URL is written out, sent raw.
        url = (f"{self._graph.base_url}/directoryRoles(roleTemplateId='{self.GLOBAL_ADMINISTRATOR_TEMPLATE}')"
               "/members?$select=id,mail")
        info = self._sdk.directory_roles.with_url(url).to_get_request_information()
        members: Any = (await self._graph.get_json(info)).get("value") or []
        return [m["mail"] for m in members if isinstance(m, dict) and isinstance(m.get("mail"), str) and m["mail"]]
