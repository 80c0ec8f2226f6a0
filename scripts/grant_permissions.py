"""Grant the service's identity what it needs in the directory, and nothing more (idempotent, `--dry-run`).

    python -m scripts.grant_permissions --tenant-id <tenant> --principal-id <object id> [--admin-resets]
        [--temporary-access-pass] [--entra-methods] [--dry-run]

`--principal-id` is the object id of the service principal the Function App calls Graph as: the managed
identity's (`principalId` output of infra/main.bicep). The script assigns the Microsoft Graph application
permissions of scripts/permissions.py (contracts.md section 2) and the directory role User Administrator, plus
Privileged Authentication Administrator with `--admin-resets`. The permissions of two policy switches come only with
their flags: `--temporary-access-pass` (policy temporaryAccessPass) and `--entra-methods` (policy
entraMethods.count). It never removes anything; a permission or role
the service does not need is named in a note so an admin can remove it.
"""

from __future__ import annotations

import argparse
from uuid import UUID

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)

from scripts.graph_session import Report, ScriptFailure, add_connection_arguments, call, graph_client, guid, run
from scripts.permissions import (
    ACCESS_PASS_PERMISSIONS,
    ENTRA_METHODS_PERMISSIONS,
    GRAPH_APP_ID,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    SERVICE_PERMISSIONS,
    USER_ADMINISTRATOR,
    DirectoryRole,
    Permission,
)

# Delegated scopes the signed-in admin consents to (device-code sign-in); the admin also needs the directory
# role Privileged Role Administrator (or Global Administrator) to grant application permissions and roles.
DELEGATED_SCOPES = ("Application.Read.All", "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.grant_permissions", description=__doc__.splitlines()[0])
    add_connection_arguments(parser)
    parser.add_argument("--principal-id", type=guid, required=True,
                        help="object id of the service principal the Function App uses for Graph (its managed "
                             "identity: the principalId output of infra/main.bicep)")
    parser.add_argument("--admin-resets", action="store_true",
                        help="also assign Privileged Authentication Administrator, so users who hold admin roles "
                             "can reset too (see docs/deploy.md for the trade-off)")
    parser.add_argument("--temporary-access-pass", action="store_true",
                        help="also grant what a reset ending with a Temporary Access Pass needs (policy "
                             "temporaryAccessPass): UserAuthMethod-TAP.ReadWrite.All and Policy.Read.All")
    parser.add_argument("--entra-methods", action="store_true",
                        help="also grant UserAuthenticationMethod.Read.All, so phone and email methods registered in "
                             "Entra count (policy entraMethods.count)")
    return parser.parse_args(argv)


def wanted_permissions(args: argparse.Namespace) -> tuple[Permission, ...]:
    """The contract's permissions, plus those of the policy switches the flags turn on."""
    return (*SERVICE_PERMISSIONS, *(ACCESS_PASS_PERMISSIONS if args.temporary_access_pass else ()),
            *(ENTRA_METHODS_PERMISSIONS if args.entra_methods else ()))


async def grant_graph_permissions(client: GraphServiceClient, principal: ServicePrincipal, report: Report,
                                  permissions: tuple[Permission, ...] = SERVICE_PERMISSIONS) -> None:
    graph = await call("reading Microsoft Graph's service principal",
                       client.service_principals_with_app_id(GRAPH_APP_ID).get())
    if graph is None or graph.id is None:
        raise ScriptFailure("Microsoft Graph's service principal was not found in the tenant")
    roles_by_name = {r.value: r for r in graph.app_roles or [] if r.value and r.id}
    names_by_id = {str(r.id): name for name, r in roles_by_name.items()}
    assignments = client.service_principals.by_service_principal_id(str(principal.id)).app_role_assignments
    held: set[str] = set()
    link: str | None = None
    while True:  # every page of the principal's assignments
        page = await call("reading the app role assignments",
                          assignments.with_url(link).get() if link else assignments.get())
        held |= {names_by_id.get(str(a.app_role_id), str(a.app_role_id)) for a in (page.value if page else None) or []
                 if str(a.resource_id) == graph.id}
        link = page.odata_next_link if page else None
        if not link:
            break
    print("Microsoft Graph application permissions:")
    for permission in permissions:
        role = roles_by_name.get(permission.name)
        if role is None:
            raise ScriptFailure(f"Microsoft Graph offers no application permission named {permission.name}")
        if permission.name in held:
            report.unchanged(f"{permission.name} (already granted)")
            continue
        if report.change("grant", f"{permission.name}: {permission.why}"):
            body = AppRoleAssignment(principal_id=UUID(str(principal.id)), resource_id=UUID(graph.id),
                                     app_role_id=role.id)
            await call(f"granting {permission.name}", assignments.post(body))
    for name in sorted(held - {p.name for p in permissions}):
        report.note(f"{name} is granted but the service does not need it: remove it (Enterprise applications > "
                    f"{principal.display_name} > Permissions)")


async def assign_directory_roles(client: GraphServiceClient, principal_id: str, wanted: list[DirectoryRole],
                                 report: Report) -> None:
    query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
        filter=f"principalId eq '{principal_id}'")  # principal_id is a validated GUID
    page = await call("reading directory role assignments", client.role_management.directory.role_assignments
                      .get(request_configuration=RequestConfiguration(query_parameters=query)))
    held = {a.role_definition_id for a in (page.value if page else None) or [] if a.directory_scope_id == "/"}
    print("Directory roles:")
    for role in wanted:
        if role.template_id in held:
            report.unchanged(f"{role.name} (already assigned)")
            continue
        if report.change("assign", f"{role.name}: {role.why}"):
            body = UnifiedRoleAssignment(principal_id=principal_id, role_definition_id=role.template_id,
                                         directory_scope_id="/")
            await call(f"assigning {role.name}",
                       client.role_management.directory.role_assignments.post(body))
    privileged = PRIVILEGED_AUTHENTICATION_ADMINISTRATOR
    if privileged not in wanted and privileged.template_id in held:
        report.note(f"{privileged.name} is assigned although --admin-resets was not given: the service can reset "
                    "administrators' passwords; remove the role if that is not intended")


async def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    report = Report(args.dry_run)
    client = graph_client(args, DELEGATED_SCOPES)
    principal = await call(f"reading service principal {args.principal_id}",
                           client.service_principals.by_service_principal_id(args.principal_id).get())
    if principal is None or principal.id is None:
        raise ScriptFailure(f"service principal {args.principal_id} was not found")
    print(f"Service principal: {principal.display_name} ({principal.id}, app id {principal.app_id})"
          + ("  [dry run: nothing will be changed]" if args.dry_run else ""))
    await grant_graph_permissions(client, principal, report, wanted_permissions(args))
    wanted = [USER_ADMINISTRATOR] + ([PRIVILEGED_AUTHENTICATION_ADMINISTRATOR] if args.admin_resets else [])
    await assign_directory_roles(client, args.principal_id, wanted, report)
    print("Mail.Send lets the app send as any mailbox until Exchange limits it. Limit it to the sender's mailbox:")
    print("  New-ApplicationAccessPolicy -AppId " + (principal.app_id or "<app id>")
          + " -PolicyScopeGroupId <mail-enabled security group holding SSPR_MAIL_SENDER> -AccessRight RestrictAccess"
            " -Description 'SSPR sends only as its own mailbox'")
    print(report.summary())


if __name__ == "__main__":
    run(main)
