"""Graph v1.0 routes a deployment needs (scripts/grant_permissions.py and scripts/register_hook.py).

Service principals and their app role assignments (application permissions), directory role assignments
(unifiedRoleAssignment), the API app's roles and identifier URIs, custom authentication extensions and
authentication event listeners. They are registered on graph.py's router, so the same token checks, fault
rules, counters and permission checks apply. An app role assignment on Microsoft Graph is the app's
``graph_permissions`` entry that its tokens carry as ``roles``; a directory role assignment is a member of the
tenant's directory role.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from .errors import GraphError
from .graph import READ_ROLES, GraphRequest, GraphResult, collection, entity, json_object, paged, route
from .tenant import App, DirectoryRole, Tenant, iso, utc_now

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SP_ID = "c0ffee00-5e1f-4ea5-b0a7-0000000004ff"
# Names the emulator's ids (app role ids of Microsoft Graph, assignment ids): stable across runs, not real ids.
ID_NAMESPACE = uuid.UUID("3c1f7a52-9d0e-4b8a-a6f1-2e5d7c9b0a41")

# Application permissions (app roles) Microsoft Graph's service principal offers here: the service's own, the
# deployer's, and broader ones a careless grant might pick, so tests can tell them apart.
GRAPH_APP_ROLES = (
    "Organization.Read.All", "Organization.ReadWrite.All", "User.Read.All", "User.ReadUpdate.All",
    "User.ReadWrite.All",
    "GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory", "AuditLog.Read.All", "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All", "Domain.Read.All", "Domain.ReadWrite.All", "Mail.Send", "Directory.Read.All",
    "Directory.ReadWrite.All", "Application.Read.All", "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All", "CustomAuthenticationExtension.Read.All",
    "CustomAuthenticationExtension.ReadWrite.All", "CustomAuthenticationExtension.Receive.Payload",
    "EventListener.Read.All", "EventListener.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthenticationMethod.Read.All", "UserAuthMethod-TAP.ReadWrite.All", "Policy.Read.All",
)

READ_APPS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                       "Directory.ReadWrite.All"})
WRITE_APPS = frozenset({"Application.ReadWrite.All"})
READ_APP_ROLE_ASSIGNMENTS = READ_APPS | {"AppRoleAssignment.ReadWrite.All"}
WRITE_APP_ROLE_ASSIGNMENTS = frozenset({"AppRoleAssignment.ReadWrite.All"})
WRITE_ROLES = frozenset({"RoleManagement.ReadWrite.Directory"})
READ_EXTENSIONS = frozenset({"CustomAuthenticationExtension.Read.All", "CustomAuthenticationExtension.ReadWrite.All"})
WRITE_EXTENSIONS = frozenset({"CustomAuthenticationExtension.ReadWrite.All"})
READ_LISTENERS = frozenset({"EventListener.Read.All", "EventListener.ReadWrite.All"})
WRITE_LISTENERS = frozenset({"EventListener.ReadWrite.All"})

EXTENSION_TYPE = "#microsoft.graph.onTokenIssuanceStartCustomExtension"
LISTENER_TYPE = "#microsoft.graph.onTokenIssuanceStartListener"
HANDLER_TYPE = "#microsoft.graph.onTokenIssuanceStartCustomExtensionHandler"
MAX_EXTENSIONS = 100  # Entra's limit of custom extension policies
# Graph documents no default page size for app role assignments, custom extensions and event listeners, only
# that a client follows @odata.nextLink (https://learn.microsoft.com/graph/paging): small pages here, so a
# script that reads only the first page is caught.
ADMIN_PAGE_SIZE = 25
TIMEOUT_RANGE_MS = (200, 2000)  # contracts.md section 3
MAX_RETRIES = 1
CREATED = "2026-01-05T03:00:00Z"
_APP_ID = r"\(appId='?(?P<appId>[^')]+)'?\)"


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "|".join(parts)))


def graph_app_role_id(permission: str) -> str:
    return stable_id("graph-app-role", permission)


def bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def not_found(kind: str, key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects are not "
                      f"present. ({kind})")


# ---- service principals --------------------------------------------------------------------------------


def graph_app_roles() -> list[dict[str, Any]]:
    return [{"id": graph_app_role_id(name), "value": name, "displayName": name, "isEnabled": True,
             "allowedMemberTypes": ["Application"], "description": f"Allows the app {name} without a signed-in user.",
             "origin": "Application"} for name in GRAPH_APP_ROLES]


def app_roles_of(app: App) -> list[dict[str, Any]]:
    return [{"allowedMemberTypes": ["User"], "description": "", "isEnabled": True, "origin": "Application", **r}
            for r in app.app_roles]


def graph_service_principal() -> dict[str, Any]:
    return {"id": GRAPH_SP_ID, "appId": GRAPH_APP_ID, "displayName": "Microsoft Graph",
            "servicePrincipalType": "Application", "accountEnabled": True, "appRoles": graph_app_roles()}


def service_principal_view(app: App) -> dict[str, Any]:
    return {"id": app.service_principal_id, "appId": app.app_id, "displayName": app.display_name,
            "servicePrincipalType": "Application", "accountEnabled": True, "appRoles": app_roles_of(app)}


def service_principal(tenant: Tenant, sp_id: str) -> dict[str, Any]:
    """Microsoft Graph's service principal, or one of the tenant's apps'."""
    if sp_id.lower() == GRAPH_SP_ID:
        return graph_service_principal()
    app = tenant.app_for_service_principal(sp_id.lower())
    if app is None:
        raise not_found("servicePrincipal", sp_id)
    return service_principal_view(app)


@route("GET", "/servicePrincipals(appId=)", f"/servicePrincipals{_APP_ID}", READ_APPS)
async def get_service_principal_by_app_id(req: GraphRequest) -> GraphResult:
    app_id = req.params["appId"].lower()
    if app_id == GRAPH_APP_ID:
        return entity(req, "servicePrincipals", graph_service_principal())
    app = req.tenant.apps.get(app_id)
    if app is None:
        raise not_found("servicePrincipal", app_id)
    return entity(req, "servicePrincipals", service_principal_view(app))


@route("GET", "/servicePrincipals/{id}", r"/servicePrincipals/(?P<id>[0-9a-fA-F-]{36})", READ_APPS)
async def get_service_principal(req: GraphRequest) -> GraphResult:
    return entity(req, "servicePrincipals", service_principal(req.tenant, req.params["id"]))


# ---- app role assignments (application permissions) -----------------------------------------------------


def assignment(principal: App, resource: dict[str, Any], role: dict[str, Any]) -> dict[str, Any]:
    return {"id": stable_id("assignment", principal.service_principal_id, resource["id"], role["id"]),
            "appRoleId": role["id"], "createdDateTime": CREATED, "deletedDateTime": None,
            "principalDisplayName": principal.display_name, "principalId": principal.service_principal_id,
            "principalType": "ServicePrincipal", "resourceDisplayName": resource["displayName"],
            "resourceId": resource["id"]}


def assignments_of(tenant: Tenant, principal: App) -> list[dict[str, Any]]:
    graph = graph_service_principal()
    roles = {r["value"]: r for r in graph["appRoles"]}
    found = [assignment(principal, graph, roles[name]) for name in principal.graph_permissions if name in roles]
    for resource_app_id, values in principal.api_permissions.items():
        resource_app = tenant.apps.get(resource_app_id.lower())
        if resource_app is None:
            continue
        resource = service_principal_view(resource_app)
        by_value = {r["value"]: r for r in resource["appRoles"]}
        found.extend(assignment(principal, resource, by_value[v]) for v in values if v in by_value)
    return found


def principal_app(req: GraphRequest) -> App:
    app = req.tenant.app_for_service_principal(req.params["id"].lower())
    if app is None:
        raise not_found("servicePrincipal", req.params["id"])
    return app


@route("GET", "/servicePrincipals/{id}/appRoleAssignments", r"/servicePrincipals/(?P<id>[^/]+)/appRoleAssignments",
       READ_APP_ROLE_ASSIGNMENTS)
async def list_app_role_assignments(req: GraphRequest) -> GraphResult:
    app = principal_app(req)
    return paged(req, assignments_of(req.tenant, app),
                 f"servicePrincipals('{app.service_principal_id}')/appRoleAssignments", dict,
                 default_size=ADMIN_PAGE_SIZE)


@route("POST", "/servicePrincipals/{id}/appRoleAssignments", r"/servicePrincipals/(?P<id>[^/]+)/appRoleAssignments",
       WRITE_APP_ROLE_ASSIGNMENTS)
async def grant_app_role(req: GraphRequest) -> GraphResult:
    app = principal_app(req)
    body = json_object(req)
    if str(body.get("principalId", "")).lower() != app.service_principal_id:
        raise bad_request("principalId must be the service principal in the request URL.")
    resource = service_principal(req.tenant, str(body.get("resourceId", "")))
    role = next((r for r in resource["appRoles"] if r["id"] == str(body.get("appRoleId", "")).lower()), None)
    if role is None or not role["isEnabled"]:
        raise bad_request("Permission being assigned was not found on application.")
    if any(a["resourceId"] == resource["id"] and a["appRoleId"] == role["id"] for a in assignments_of(req.tenant, app)):
        raise bad_request("Permission being assigned already exists on the object")
    if resource["id"] == GRAPH_SP_ID:
        app.graph_permissions.append(role["value"])
    else:
        app.api_permissions.setdefault(resource["appId"], []).append(role["value"])
    return GraphResult(201, {"@odata.context": f"{req.base}/$metadata#servicePrincipals('{app.service_principal_id}')"
                                               "/appRoleAssignments/$entity", **assignment(app, resource, role)})


# ---- directory role assignments (unifiedRoleAssignment) ---------------------------------------------------


def role_assignment(role: DirectoryRole, principal_id: str) -> dict[str, Any]:
    return {"id": stable_id("role-assignment", role.role_template_id, principal_id),
            "principalId": principal_id, "roleDefinitionId": role.role_template_id, "directoryScopeId": "/",
            "appScopeId": None, "condition": None}


_ROLE_FILTER = re.compile(r"^\s*(principalId|roleDefinitionId)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def role_assignment_filter(raw: str | None) -> dict[str, str]:
    """`principalId eq '...'` and/or `roleDefinitionId eq '...'` joined by `and`, the filters Graph supports."""
    wanted: dict[str, str] = {}
    if not raw:
        return wanted
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _ROLE_FILTER.match(clause)
        if match is None:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.")
        wanted[match.group(1).lower()] = match.group(2).lower()
    return wanted


@route("GET", "/roleManagement/directory/roleAssignments", r"/roleManagement/directory/roleAssignments", READ_ROLES)
async def list_role_assignments(req: GraphRequest) -> GraphResult:
    wanted = role_assignment_filter(req.query.get("filter"))
    value = [role_assignment(role, member) for role in req.tenant.roles.values() for member in role.members
             if wanted.get("principalid", member) == member
             and wanted.get("roledefinitionid", role.role_template_id) == role.role_template_id]
    return collection(req, "roleManagement/directory/roleAssignments", value)


@route("POST", "/roleManagement/directory/roleAssignments", r"/roleManagement/directory/roleAssignments", WRITE_ROLES)
async def create_role_assignment(req: GraphRequest) -> GraphResult:
    body = json_object(req)
    tenant = req.tenant
    principal_id = str(body.get("principalId", "")).lower()
    template_id = str(body.get("roleDefinitionId", "")).lower()
    if body.get("directoryScopeId") != "/":
        raise bad_request("Only the tenant-wide directory scope '/' is emulated.")
    role = next((r for r in tenant.roles.values() if r.role_template_id == template_id), None)
    if role is None:
        raise not_found("unifiedRoleDefinition", template_id)
    app = tenant.app_for_service_principal(principal_id)
    if app is None and principal_id not in tenant.users and principal_id not in tenant.groups:
        raise not_found("directoryObject", principal_id)
    if principal_id in role.members:
        raise bad_request("A conflicting object with one or more of the specified property values is present in the "
                          "directory.")
    role.members.append(principal_id)
    if app is not None:
        app.directory_roles.append(role.display_name)
    tenant.membership_version += 1
    return GraphResult(201, {"@odata.context": f"{req.base}/$metadata#roleManagement/directory/roleAssignments/$entity",
                             **role_assignment(role, principal_id)})


# ---- applications: app roles and identifier URIs ------------------------------------------------------------


def application_view(app: App) -> dict[str, Any]:
    return {"id": stable_id("application", app.app_id), "appId": app.app_id, "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg", "identifierUris": list(app.identifier_uris),
            "appRoles": app_roles_of(app)}


def find_app(req: GraphRequest) -> App:
    app = req.tenant.apps.get(req.params["appId"].lower())
    if app is None:
        raise not_found("application", req.params["appId"])
    return app


@route("GET", "/applications(appId=)", f"/applications{_APP_ID}", READ_APPS)
async def get_application(req: GraphRequest) -> GraphResult:
    return entity(req, "applications", application_view(find_app(req)))


def checked_app_roles(current: list[dict[str, Any]], proposed: Any) -> list[dict[str, Any]]:
    """Graph's rules: unique ids and values, and an enabled role is disabled before it is changed or removed."""
    if not isinstance(proposed, list) or not all(isinstance(r, dict) for r in proposed):
        raise bad_request("appRoles must be a list of appRole objects.")
    roles = [{"isEnabled": True, **r} for r in proposed]
    for role in roles:
        if not role.get("id") or not role.get("value") or not role.get("allowedMemberTypes"):
            raise bad_request("An appRole needs id, value and allowedMemberTypes.")
        role["id"] = str(role["id"]).lower()
    if len({r["id"] for r in roles}) != len(roles) or len({r["value"] for r in roles}) != len(roles):
        raise bad_request("App role ids and values must be unique.")
    by_id = {r["id"]: r for r in roles}
    for old in current:
        new = by_id.get(old["id"])
        changed = new is None or any(new.get(k) != old.get(k) for k in ("value", "allowedMemberTypes"))
        if old.get("isEnabled", True) and changed:
            raise GraphError(400, "CannotDeleteOrUpdateEnabledEntitlement",
                             "Property appRoles is invalid: an enabled app role cannot be removed or changed; "
                             "disable it first.")
    return roles


@route("PATCH", "/applications(appId=)", f"/applications{_APP_ID}", WRITE_APPS)
async def patch_application(req: GraphRequest) -> GraphResult:
    app = find_app(req)
    body = json_object(req)
    unknown = set(body) - {"appRoles", "identifierUris", "@odata.type"}
    if unknown:
        raise bad_request(f"Only appRoles and identifierUris are emulated, not {sorted(unknown)}.")
    if "identifierUris" in body:
        uris = body["identifierUris"]
        if not isinstance(uris, list) or not all(isinstance(u, str) and u.startswith("api://") for u in uris):
            raise bad_request("identifierUris must be api:// URIs.")
        app.identifier_uris = list(uris)
    if "appRoles" in body:
        app.app_roles = [{k: v for k, v in r.items() if k != "origin"}
                         for r in checked_app_roles(app_roles_of(app), body["appRoles"])]
    return GraphResult(204)


# ---- custom authentication extensions (OnTokenIssuanceStart) ---------------------------------------------


def checked_extension(body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    merged = {**(current or {}), **{k: v for k, v in body.items() if k != "id"}}
    if merged.get("@odata.type") != EXTENSION_TYPE:
        raise bad_request(f"@odata.type must be {EXTENSION_TYPE} (the only type emulated).")
    target = (merged.get("endpointConfiguration") or {}).get("targetUrl", "")
    if urlsplit(str(target)).scheme != "https":
        raise bad_request("endpointConfiguration.targetUrl must be an https URL.")
    auth = merged.get("authenticationConfiguration") or {}
    if auth.get("@odata.type") != "#microsoft.graph.azureAdTokenAuthentication" or not auth.get("resourceId"):
        raise bad_request("authenticationConfiguration must be azureAdTokenAuthentication with a resourceId.")
    client = merged.get("clientConfiguration") or {}
    timeout, retries = client.get("timeoutInMilliseconds", 1000), client.get("maximumRetries", 1)
    if not isinstance(timeout, int) or not TIMEOUT_RANGE_MS[0] <= timeout <= TIMEOUT_RANGE_MS[1]:
        raise bad_request(f"timeoutInMilliseconds must be {TIMEOUT_RANGE_MS[0]}-{TIMEOUT_RANGE_MS[1]}.")
    if not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise bad_request(f"maximumRetries must be 0-{MAX_RETRIES}.")
    claims = merged.get("claimsForTokenConfiguration") or []
    if not isinstance(claims, list) or not all(isinstance(c, dict) and c.get("claimIdInApiResponse") for c in claims):
        raise bad_request("claimsForTokenConfiguration must list {claimIdInApiResponse} objects.")
    merged.setdefault("behaviorOnError", None)
    return merged


@route("GET", "/identity/customAuthenticationExtensions", r"/identity/customAuthenticationExtensions",
       READ_EXTENSIONS)
async def list_extensions(req: GraphRequest) -> GraphResult:
    return paged(req, list(req.tenant.custom_extensions.values()), "identity/customAuthenticationExtensions", dict,
                 default_size=ADMIN_PAGE_SIZE)


@route("GET", "/identity/customAuthenticationExtensions/{id}", r"/identity/customAuthenticationExtensions/(?P<id>[^/]+)",
       READ_EXTENSIONS)
async def get_extension(req: GraphRequest) -> GraphResult:
    found = req.tenant.custom_extensions.get(req.params["id"].lower())
    if found is None:
        raise not_found("customAuthenticationExtension", req.params["id"])
    return entity(req, "identity/customAuthenticationExtensions", found)


@route("POST", "/identity/customAuthenticationExtensions", r"/identity/customAuthenticationExtensions",
       WRITE_EXTENSIONS)
async def create_extension(req: GraphRequest) -> GraphResult:
    store = req.tenant.custom_extensions
    if len(store) >= MAX_EXTENSIONS:
        raise bad_request(f"A tenant has at most {MAX_EXTENSIONS} custom extension policies.")
    extension = {"id": str(uuid.uuid4()), **checked_extension(json_object(req))}
    store[extension["id"]] = extension
    return GraphResult(201, {"@odata.context": f"{req.base}/$metadata#identity/customAuthenticationExtensions/$entity",
                             **extension})


@route("PATCH", "/identity/customAuthenticationExtensions/{id}",
       r"/identity/customAuthenticationExtensions/(?P<id>[^/]+)", WRITE_EXTENSIONS)
async def update_extension(req: GraphRequest) -> GraphResult:
    store = req.tenant.custom_extensions
    current = store.get(req.params["id"].lower())
    if current is None:
        raise not_found("customAuthenticationExtension", req.params["id"])
    store[current["id"]] = {"id": current["id"], **checked_extension(json_object(req), current)}
    return GraphResult(204)


# ---- authentication event listeners (onTokenIssuanceStartListener) ---------------------------------------


def checked_listener(tenant: Tenant, body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    merged = {**(current or {}), **{k: v for k, v in body.items() if k != "id"}}
    if merged.get("@odata.type") != LISTENER_TYPE:
        raise bad_request(f"@odata.type must be {LISTENER_TYPE} (the only type emulated).")
    handler = merged.get("handler") or {}
    extension_id = str((handler.get("customExtension") or {}).get("id", "")).lower()
    if handler.get("@odata.type") != HANDLER_TYPE or extension_id not in tenant.custom_extensions:
        raise bad_request("handler must be an onTokenIssuanceStartCustomExtensionHandler naming an existing "
                          "customExtension id.")
    merged["handler"] = {"@odata.type": HANDLER_TYPE, "configuration": handler.get("configuration"),
                         "customExtension": {"id": extension_id}}
    included = ((merged.get("conditions") or {}).get("applications") or {}).get("includeApplications")
    if not isinstance(included, list) or not included:
        raise bad_request("conditions.applications.includeApplications must name at least one application.")
    for item in included:
        app_id = str(item.get("appId", "")).lower() if isinstance(item, dict) else ""
        if app_id not in tenant.apps:
            raise bad_request(f"Application '{app_id}' was not found in the tenant.")
    merged["conditions"] = {"applications": {"includeAllApplications": False, "includeApplications": [
        {"appId": str(i["appId"]).lower()} for i in included]}}
    return merged


@route("GET", "/identity/authenticationEventListeners", r"/identity/authenticationEventListeners", READ_LISTENERS)
async def list_listeners(req: GraphRequest) -> GraphResult:
    return paged(req, list(req.tenant.event_listeners.values()), "identity/authenticationEventListeners", dict,
                 default_size=ADMIN_PAGE_SIZE)


@route("POST", "/identity/authenticationEventListeners", r"/identity/authenticationEventListeners", WRITE_LISTENERS)
async def create_listener(req: GraphRequest) -> GraphResult:
    listener = {"id": str(uuid.uuid4()), "displayName": None, "createdDateTime": iso(utc_now()),
                **checked_listener(req.tenant, json_object(req))}
    req.tenant.event_listeners[listener["id"]] = listener
    return GraphResult(201, {"@odata.context": f"{req.base}/$metadata#identity/authenticationEventListeners/$entity",
                             **listener})


@route("PATCH", "/identity/authenticationEventListeners/{id}", r"/identity/authenticationEventListeners/(?P<id>[^/]+)",
       WRITE_LISTENERS)
async def update_listener(req: GraphRequest) -> GraphResult:
    store = req.tenant.event_listeners
    current = store.get(req.params["id"].lower())
    if current is None:
        raise not_found("authenticationEventListener", req.params["id"])
    store[current["id"]] = {"id": current["id"], **checked_listener(req.tenant, json_object(req), current)}
    return GraphResult(204)
