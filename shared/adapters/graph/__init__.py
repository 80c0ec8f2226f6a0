"""The service's door to Microsoft Graph: one shared client and a small part per use case.

    client.py   GraphClient: SDK over httpx, bounded concurrency, retries (F5), error translation
    users.py    GraphUsers: one user (reset, contact, roles, password, sessions, password policies)
    groups.py   GraphGroups: who is in scope (enablement pages, membership checks, delta queries)
    tenant.py   GraphTenant: organization, subscriptions, licences, domains, Global Administrators
    directory.py GraphDirectory: groups by name and their user counts, users' names in one $batch, by UPN
    branding.py GraphBranding: the organisation's company branding (texts and logos, per language)
    reports.py  GraphReports: the userRegistrationDetails report
    mail.py     GraphMail: sendMail
    expiry.py   GraphExpiry: every user's password facts (expiry reminders), one user's reminder contact
    authentication.py  GraphAuthentication: Temporary Access Pass, the TAP policy, Entra's phone and email methods
    helpdesk.py GraphHelpdesk: callers found by name or UPN, one caller's facts

`GraphGateway` is the composition root's convenience: every part over one client, as attributes (`users`,
`groups`, `tenant`, `reports`, `mail`, `expiry`) and, through inheritance, under the old method names. Services depend
on a Protocol of the few methods they call, so a part can be handed over on its own.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from msgraph import GraphServiceClient

from shared.adapters.graph.authentication import EntraContact, GraphAuthentication, IssuedPass
from shared.adapters.graph.branding import GraphBranding
from shared.adapters.graph.client import CALL_DEADLINE_TIMEOUTS, GRAPH_SCOPE, RETRY, RETRY_STATUSES, GraphClient
from shared.adapters.graph.directory import GraphDirectory
from shared.adapters.graph.expiry import ExpiryContact, ExpiryPage, GraphExpiry
from shared.adapters.graph.groups import GraphGroups
from shared.adapters.graph.helpdesk import FoundUser, GraphHelpdesk, HelpdeskUser, UserPage
from shared.adapters.graph.mail import GraphMail
from shared.adapters.graph.reports import GraphReports
from shared.adapters.graph.tenant import GraphTenant, Organization
from shared.adapters.graph.users import GraphUsers, ResetUser, UserContact
from shared.config import Settings

__all__ = [
    "CALL_DEADLINE_TIMEOUTS", "GRAPH_SCOPE", "RETRY", "RETRY_STATUSES", "EntraContact", "ExpiryContact",
    "ExpiryPage", "FoundUser", "GraphAuthentication", "GraphBranding", "GraphClient", "GraphDirectory", "GraphExpiry",
    "GraphGateway", "GraphGroups", "GraphHelpdesk", "GraphMail", "GraphReports", "GraphTenant", "GraphUsers",
    "HelpdeskUser", "IssuedPass", "Organization", "ResetUser", "UserContact", "UserPage",
]


class GraphGateway(GraphUsers, GraphGroups, GraphTenant, GraphReports, GraphMail, GraphExpiry, GraphAuthentication,
                   GraphDirectory, GraphBranding, GraphHelpdesk):
    """Every Graph part over one client: `gateway.users.reset_user(...)` or, as before, `gateway.reset_user(...)`."""

    def __init__(self, graph: GraphClient) -> None:
        super().__init__(graph)
        self.client = graph
        self.users = GraphUsers(graph)
        self.groups = GraphGroups(graph)
        self.tenant = GraphTenant(graph)
        self.reports = GraphReports(graph)
        self.mail = GraphMail(graph)
        self.expiry = GraphExpiry(graph)
        self.authentication = GraphAuthentication(graph)
        self.directory = GraphDirectory(graph)
        self.branding = GraphBranding(graph)
        self.helpdesk = GraphHelpdesk(graph)

    @classmethod
    def create(cls, settings: Settings, credential: AsyncTokenCredential) -> GraphGateway:
        return cls(GraphClient.create(settings, credential))

    @property
    def sdk(self) -> GraphServiceClient:
        return self._graph.sdk

    async def close(self) -> None:
        await self._graph.close()
