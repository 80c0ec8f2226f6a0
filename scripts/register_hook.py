"""Register the sign-in hook with Entra and the API's app roles (idempotent, `--dry-run`).

    python -m scripts.register_hook --tenant-id <tenant> --api-app-id <app id> --function-host <host> \
        --app-id <app id of an app whose sign-ins are checked> [--app-id ...] [--timeout-ms 1500] [--dry-run]

On the API's app registration (SSPR_API_CLIENT_ID) it makes sure of: the app roles SSPR.Admin, SSPR.Reader and
SSPR.Helpdesk;
the Application ID URI `api://<function host>/<api app id>` that Entra asks a token for when it calls the
hook; and the Graph permission CustomAuthenticationExtension.Receive.Payload on its service principal, which
Entra requires of the API a custom authentication extension calls. Then the custom authentication extension
(OnTokenIssuanceStart: target URL, that resource id, a 1000-2000 ms timeout, 1 retry, the claims
ssprRegistrationRequired and ssprRegistrationUrl) and its listener for the chosen apps. What exists and matches
is left alone; what differs is updated; nothing is deleted.
"""

from __future__ import annotations

import argparse
import re
import uuid
from typing import Any
from uuid import UUID

from msgraph import GraphServiceClient
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.authentication_condition_application import AuthenticationConditionApplication
from msgraph.generated.models.authentication_conditions import AuthenticationConditions
from msgraph.generated.models.authentication_conditions_applications import AuthenticationConditionsApplications
from msgraph.generated.models.azure_ad_token_authentication import AzureAdTokenAuthentication
from msgraph.generated.models.custom_extension_client_configuration import CustomExtensionClientConfiguration
from msgraph.generated.models.http_request_endpoint import HttpRequestEndpoint
from msgraph.generated.models.on_token_issuance_start_custom_extension import OnTokenIssuanceStartCustomExtension
from msgraph.generated.models.on_token_issuance_start_custom_extension_handler import (
    OnTokenIssuanceStartCustomExtensionHandler,
)
from msgraph.generated.models.on_token_issuance_start_listener import OnTokenIssuanceStartListener
from msgraph.generated.models.on_token_issuance_start_return_claim import OnTokenIssuanceStartReturnClaim

from scripts.graph_session import Report, ScriptFailure, add_connection_arguments, call, graph_client, guid, run
from scripts.permissions import GRAPH_APP_ID, HOOK_PAYLOAD_PERMISSION

HOOK_ROUTE = "/api/hooks/token-issuance-start"
CLAIMS = ("ssprRegistrationRequired", "ssprRegistrationUrl")  # what functions/hooks.py answers (contracts.md 3)
APP_ROLES = (("SSPR.Admin", "SSPR administrator", "Changes the SSPR policy and runs enablement and compliance."),
             ("SSPR.Reader", "SSPR reader", "Reads the SSPR policy, progress, reports and audit."),
             ("SSPR.Helpdesk", "SSPR helpdesk agent",
              "Verifies callers through their registered methods and helps them; never sees or sets a password."))
TIMEOUT_RANGE_MS = (1000, 2000)
MAXIMUM_RETRIES = 1
DEFAULT_NAME = "SSPR registration check"
DELEGATED_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                    "CustomAuthenticationExtension.ReadWrite.All", "EventListener.ReadWrite.All")
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


def host_name(value: str) -> str:
    """argparse type: a bare DNS host name (no scheme, port or path)."""
    if not _HOST.match(value.lower()):
        raise argparse.ArgumentTypeError(f"give the Function App's host name only, e.g. sspr.azurewebsites.net: {value!r}")
    return value.lower()


def timeout_ms(value: str) -> int:
    number = int(value)
    if not TIMEOUT_RANGE_MS[0] <= number <= TIMEOUT_RANGE_MS[1]:
        raise argparse.ArgumentTypeError(f"must be {TIMEOUT_RANGE_MS[0]}-{TIMEOUT_RANGE_MS[1]} ms")
    return number


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.register_hook", description=__doc__.splitlines()[0])
    add_connection_arguments(parser)
    parser.add_argument("--api-app-id", type=guid, required=True, help="SSPR_API_CLIENT_ID: the API's app registration")
    parser.add_argument("--function-host", type=host_name, required=True,
                        help="the Function App's host name, e.g. sspr-prod.azurewebsites.net")
    parser.add_argument("--app-id", type=guid, action="append", required=True, dest="app_ids",
                        help="an app whose sign-ins ask the hook (repeat for several)")
    parser.add_argument("--timeout-ms", type=timeout_ms, default=1500,
                        help="how long Entra waits for the hook, 1000-2000 (default 1500)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"display name of the extension (default {DEFAULT_NAME!r})")
    return parser.parse_args(argv)


async def ensure_api_app(client: GraphServiceClient, args: argparse.Namespace, resource_id: str, report: Report) -> None:
    app = await call("reading the API app registration", client.applications_with_app_id(args.api_app_id).get())
    if app is None:
        raise ScriptFailure(f"no app registration with app id {args.api_app_id}")
    print(f"API app registration: {app.display_name} ({args.api_app_id})")
    uris = list(app.identifier_uris or [])
    if resource_id in uris:
        report.unchanged(f"Application ID URI {resource_id}")
    elif report.change("add", f"Application ID URI {resource_id} (the resource Entra asks a token for)"):
        await call("adding the Application ID URI", client.applications_with_app_id(args.api_app_id)
                   .patch(Application(identifier_uris=[*uris, resource_id])))
    roles = [AppRole(id=r.id, value=r.value, display_name=r.display_name, description=r.description,
                     allowed_member_types=r.allowed_member_types, is_enabled=r.is_enabled) for r in app.app_roles or []]
    changed = False
    for value, display_name, description in APP_ROLES:
        existing = next((r for r in roles if r.value == value), None)
        if existing is not None and existing.is_enabled:
            report.unchanged(f"app role {value}")
        elif existing is not None:
            changed |= report.change("enable", f"app role {value}")
            existing.is_enabled = True
        else:
            changed |= report.change("create", f"app role {value} (assign it in Enterprise applications)")
            roles.append(AppRole(id=uuid.uuid4(), value=value, display_name=display_name, description=description,
                                 allowed_member_types=["User"], is_enabled=True))
    if changed:
        await call("writing the app roles",
                   client.applications_with_app_id(args.api_app_id).patch(Application(app_roles=roles)))


async def every_page(what: str, builder: Any) -> list[Any]:
    """Every item of a Graph list, following `@odata.nextLink` to the last page (Graph pages every list)."""
    items: list[Any] = []
    link: str | None = None
    while True:
        page = await call(what, builder.with_url(link).get() if link else builder.get())
        items.extend((page.value if page else None) or [])
        link = page.odata_next_link if page else None
        if not link:
            return items


async def ensure_payload_permission(client: GraphServiceClient, api_app_id: str, report: Report) -> None:
    graph = await call("reading Microsoft Graph's service principal",
                       client.service_principals_with_app_id(GRAPH_APP_ID).get())
    api = await call("reading the API's service principal",
                     client.service_principals_with_app_id(api_app_id).get())
    if graph is None or graph.id is None or api is None or api.id is None:
        raise ScriptFailure("the API app has no service principal in this tenant: open it once in Enterprise "
                            "applications, or run `az ad sp create --id <api app id>`")
    role = next((r for r in graph.app_roles or [] if r.value == HOOK_PAYLOAD_PERMISSION), None)
    if role is None or role.id is None:
        raise ScriptFailure(f"Microsoft Graph offers no application permission named {HOOK_PAYLOAD_PERMISSION}")
    assignments = client.service_principals.by_service_principal_id(api.id).app_role_assignments
    held = {(str(a.resource_id), str(a.app_role_id))
            for a in await every_page("reading the API's app role assignments", assignments)}
    if (graph.id, str(role.id)) in held:
        report.unchanged(f"{HOOK_PAYLOAD_PERMISSION} on the API's service principal")
    elif report.change("grant", f"{HOOK_PAYLOAD_PERMISSION} on the API's service principal (Entra requires it of "
                                "a custom extension's API; no directory data)"):
        body = AppRoleAssignment(principal_id=UUID(api.id), resource_id=UUID(graph.id), app_role_id=role.id)
        await call(f"granting {HOOK_PAYLOAD_PERMISSION}", assignments.post(body))


def wanted_extension(args: argparse.Namespace, target_url: str, resource_id: str) -> OnTokenIssuanceStartCustomExtension:
    return OnTokenIssuanceStartCustomExtension(
        display_name=args.name,
        description="Tells Entra whether the signed-in user still has to register for self-service password reset.",
        endpoint_configuration=HttpRequestEndpoint(odata_type="#microsoft.graph.httpRequestEndpoint",
                                                   target_url=target_url),
        authentication_configuration=AzureAdTokenAuthentication(
            odata_type="#microsoft.graph.azureAdTokenAuthentication", resource_id=resource_id),
        client_configuration=CustomExtensionClientConfiguration(timeout_in_milliseconds=args.timeout_ms,
                                                                maximum_retries=MAXIMUM_RETRIES),
        claims_for_token_configuration=[OnTokenIssuanceStartReturnClaim(claim_id_in_api_response=c) for c in CLAIMS],
    )


def extension_differences(current: OnTokenIssuanceStartCustomExtension,
                          wanted: OnTokenIssuanceStartCustomExtension) -> list[str]:
    def facts(e: OnTokenIssuanceStartCustomExtension) -> dict[str, object]:
        endpoint, auth, client = e.endpoint_configuration, e.authentication_configuration, e.client_configuration
        return {
            "target URL": getattr(endpoint, "target_url", None),
            "resource id": getattr(auth, "resource_id", None),
            "timeout ms": getattr(client, "timeout_in_milliseconds", None),
            "retries": getattr(client, "maximum_retries", None),
            "claims": sorted(c.claim_id_in_api_response or "" for c in e.claims_for_token_configuration or []),
        }
    old, new = facts(current), facts(wanted)
    return [f"{k} {old[k]} -> {new[k]}" for k in new if old[k] != new[k]]


async def ensure_extension(client: GraphServiceClient, wanted: OnTokenIssuanceStartCustomExtension,
                           report: Report) -> str | None:
    """The extension's id (None in a dry run that would create it)."""
    extensions = client.identity.custom_authentication_extensions
    current = next((e for e in await every_page("reading custom authentication extensions", extensions)
                    if isinstance(e, OnTokenIssuanceStartCustomExtension) and e.display_name == wanted.display_name),
                   None)
    what = f"custom authentication extension '{wanted.display_name}'"
    if current is None:
        if report.change("create", f"{what} (OnTokenIssuanceStart)"):
            created = await call(f"creating the {what}", extensions.post(wanted))
            return created.id if created else None
        return None
    differences = extension_differences(current, wanted)
    if not differences:
        report.unchanged(what)
    elif report.change("update", f"{what}: {'; '.join(differences)}") and current.id:
        await call(f"updating the {what}",
                   extensions.by_custom_authentication_extension_id(str(current.id)).patch(wanted))
    return current.id


async def ensure_listener(client: GraphServiceClient, name: str, extension_id: str | None, app_ids: list[str],
                          report: Report) -> None:
    listeners = client.identity.authentication_event_listeners
    every = await every_page("reading authentication event listeners", listeners)
    listener_name = f"{name} listener"

    def ours(item: OnTokenIssuanceStartListener) -> bool:
        # Matched by name, or by the extension it calls (Graph may leave the handler's extension unexpanded).
        extension = getattr(item.handler, "custom_extension", None)
        return item.display_name == listener_name or (extension_id is not None and extension is not None
                                                      and extension.id == extension_id)

    found = [item for item in every if isinstance(item, OnTokenIssuanceStartListener)]
    current = next((item for item in found if ours(item)), None)
    wanted_apps = sorted(set(app_ids))
    conditions = AuthenticationConditions(applications=AuthenticationConditionsApplications(
        include_applications=[AuthenticationConditionApplication(app_id=a) for a in wanted_apps]))
    handler = OnTokenIssuanceStartCustomExtensionHandler(
        custom_extension=OnTokenIssuanceStartCustomExtension(id=extension_id))
    what = f"listener '{listener_name}' for apps {', '.join(wanted_apps)}"
    if current is None:
        if report.change("create", what) and extension_id:
            await call("creating the listener", listeners.post(OnTokenIssuanceStartListener(
                display_name=listener_name, conditions=conditions, handler=handler)))
        return
    applications = current.conditions.applications if current.conditions else None
    held = sorted((a.app_id or "").lower() for a in (applications.include_applications if applications else None) or [])
    current_extension = getattr(current.handler, "custom_extension", None)
    points_elsewhere = current_extension is not None and current_extension.id != extension_id
    if held == wanted_apps and not points_elsewhere:
        report.unchanged(what)
        return
    change = f"{what} (was: {', '.join(held) or 'none'})" if held != wanted_apps else f"{what} (handler)"
    if report.change("update", change) and current.id:
        await call("updating the listener", listeners.by_authentication_event_listener_id(str(current.id))
                   .patch(OnTokenIssuanceStartListener(conditions=conditions, handler=handler)))


async def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    report = Report(args.dry_run)
    client = graph_client(args, DELEGATED_SCOPES)
    target_url = f"https://{args.function_host}{HOOK_ROUTE}"
    resource_id = f"api://{args.function_host}/{args.api_app_id}"
    print(f"Hook: {target_url}, token resource {resource_id}, timeout {args.timeout_ms} ms, {MAXIMUM_RETRIES} retry"
          + ("  [dry run: nothing will be changed]" if args.dry_run else ""))
    await ensure_api_app(client, args, resource_id, report)
    await ensure_payload_permission(client, args.api_app_id, report)
    print("Entra:")
    extension_id = await ensure_extension(client, wanted_extension(args, target_url, resource_id), report)
    await ensure_listener(client, args.name, extension_id, args.app_ids, report)
    print("By hand, once: map the claims into tokens for each app (Enterprise applications > app > Single sign-on >"
          " Attributes & Claims > custom claims provider) - see docs/deploy.md.")
    print(report.summary())


if __name__ == "__main__":
    run(main)
