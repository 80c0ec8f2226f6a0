"""The /_emulator control API (dev only, no auth): health, faults, outbox, tenant mutations, keys, tokens, stats."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from pydantic import ValidationError

from .errors import GraphError
from .faults import FaultConfig
from .graph import FIELD_SLOTS, apply_user_fields
from .identity import base_claims
from .identity_keys import SigningKey
from .state import STATE, EmulatorState
from .tenant import USER_PROPERTIES, Group, OnPrem, Tenant, User, iso, new_object_id, utc_now


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not valid JSON"}),
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return body


def state_of(request: web.Request) -> EmulatorState:
    return request.app[STATE]


# ---- health, stats, reset --------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response({"status": "ok", "tenantId": state.tenant.id, "users": len(state.tenant.users),
                              "baseUrl": state.origin(request)})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(state_of(request).stats.snapshot())


async def clear_stats(request: web.Request) -> web.Response:
    state_of(request).stats.clear()
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    state = state_of(request)
    state.reset()
    return web.json_response({"status": "reset", "users": len(state.tenant.users)})


async def force_resync(request: web.Request) -> web.Response:
    """Every delta token issued so far answers 410 Gone with Location, as when Graph forces a resync
    (delta-query-overview); a /_emulator/reset instead makes them expired (400 syncStateNotFound)."""
    state_of(request).tenant.force_resync()
    return web.Response(status=204)


# ---- faults ----------------------------------------------------------------------------------------------


async def put_faults(request: web.Request) -> web.Response:
    try:
        config = FaultConfig.model_validate(await read_json(request))
    except ValidationError as err:
        return problem(400, err.json(include_url=False))
    state_of(request).faults.configure(config)
    return await get_faults(request)


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": [r.model_dump() for r in state_of(request).faults.rules]})


async def delete_faults(request: web.Request) -> web.Response:
    state_of(request).faults.clear()
    return web.Response(status=204)


# ---- outbox ----------------------------------------------------------------------------------------------


async def get_outbox(request: web.Request) -> web.Response:
    """Newest first; `?to=<address or number>` keeps only what went there (benchmarks poll one recipient)."""
    messages = state_of(request).outbox.newest_first()
    to = request.query.get("to")
    if to:
        messages = [m for m in messages if to in m.get("to", [])]
    return web.json_response({"value": messages})


async def delete_outbox(request: web.Request) -> web.Response:
    state_of(request).outbox.clear()
    return web.Response(status=204)


async def post_sms(request: web.Request) -> web.Response:
    """{"to": "+46701234567", "body": "...", "channel": "sms" | "voice"}: what a phone would receive."""
    body = await read_json(request)
    to, text, channel = body.get("to"), body.get("body"), body.get("channel", "sms")
    if not isinstance(to, str) or not to.startswith("+") or not to[1:].isdigit() or not 8 <= len(to) <= 16:
        return problem(400, "to must be an E.164 number such as +46701234567")
    if not isinstance(text, str) or not text:
        return problem(400, "body must be a non-empty string")
    if channel not in ("sms", "voice"):
        return problem(400, "channel must be sms or voice")
    return web.json_response(state_of(request).outbox.add_phone(to, text, channel), status=202)


# ---- tenant mutations ------------------------------------------------------------------------------------


async def patch_subscriptions(request: web.Request) -> web.Response:
    """{"isTrial": bool, "status": "Enabled|Warning|Suspended|LockedOut|Deleted", "skuPartNumber": only this one}"""
    body = await read_json(request)
    tenant = state_of(request).tenant
    targets = [s for s in tenant.subscriptions
               if body.get("skuPartNumber") in (None, s.sku_part_number)]
    if not targets:
        return problem(404, "no subscription matches skuPartNumber")
    if "isTrial" in body and not isinstance(body["isTrial"], bool):
        return problem(400, "isTrial must be a boolean")
    if "status" in body and body["status"] not in ("Enabled", "Warning", "Suspended", "LockedOut", "Deleted"):
        return problem(400, "status must be Enabled, Warning, Suspended, LockedOut or Deleted")
    for sub in targets:
        sub.is_trial = body.get("isTrial", sub.is_trial)
        sub.status = body.get("status", sub.status)
    return web.json_response({"value": [{"id": s.id, "skuPartNumber": s.sku_part_number, "isTrial": s.is_trial,
                                         "status": s.status} for s in tenant.subscriptions],
                              "premium": tenant.premium()})


def user_view(tenant: Tenant, user: User) -> dict[str, Any]:
    """Everything the emulator knows about a user (but the password), for tests."""
    view = {name: user.graph_property(name) for name in sorted(USER_PROPERTIES) if name != "passwordProfile"}
    view.update({
        "licenses": [tenant.skus_by_id[s].sku_part_number for s in user.sku_ids],
        "directoryRoles": [r.display_name for r in tenant.roles_of(user.id)],
        "groups": sorted(tenant.groups_of(user.id)),
        "appRoles": {app: tenant.app_roles_of_user(user.id, app) for app in tenant.apps
                     if tenant.app_roles_of_user(user.id, app)},
        "forceChangePasswordNextSignIn": bool(user.force_change),
        "changeSequence": user.seq,
    })
    return view


def apply_control_fields(tenant: Tenant, user: User, body: dict[str, Any]) -> None:
    """Graph-writable fields plus the ones only the control API may set."""
    body = dict(body)
    if "password" in body:
        user.password = str(body.pop("password"))
        user.password_changed = iso(utc_now())
    if "lastPasswordChangeDateTime" in body:  # read-only in Graph: tests set a password's age here
        user.password_changed = _instant(body.pop("lastPasswordChangeDateTime"))
    if "forceChangePasswordNextSignIn" in body:
        user.force_change = bool(body.pop("forceChangePasswordNextSignIn"))
    if "userType" in body:
        if body["userType"] not in ("Member", "Guest"):
            raise GraphError(400, "Request_BadRequest", "userType must be Member or Guest")
        user.user_type = body.pop("userType")
    if "licenses" in body:
        try:
            user.sku_ids = tuple(tenant.skus[name].sku_id for name in body.pop("licenses"))
        except KeyError as err:
            raise GraphError(400, "Request_BadRequest", f"unknown skuPartNumber {err}") from None
    if "onPremisesSyncEnabled" in body:
        synced = bool(body.pop("onPremisesSyncEnabled"))
        sam = str(body.pop("onPremisesSamAccountName", user.upn.split("@")[0][:20]))
        user.on_prem = _on_prem(user, sam) if synced else None
    if "onPremisesSecurityIdentifier" in body or "onPremisesDistinguishedName" in body:
        # What the sync carries from a real AD (tests join an emulated user to a real Samba account this way).
        if user.on_prem is None:
            raise GraphError(400, "Request_BadRequest", "set onPremisesSyncEnabled first: only synced users have these")
        sam, sid, immutable, domain, dn, synced_at = user.on_prem
        user.on_prem = (sam, str(body.pop("onPremisesSecurityIdentifier", sid)), immutable, domain,
                        str(body.pop("onPremisesDistinguishedName", dn)), synced_at)
    if "roles" in body:
        names = body.pop("roles")
        for role in tenant.roles.values():
            if user.id in role.members:
                role.members.remove(user.id)
        for name in names:
            try:
                tenant.role_by_name(name).members.append(user.id)
            except KeyError:
                raise GraphError(400, "Request_BadRequest", f"unknown directory role {name!r}") from None
        tenant.membership_version += 1
    if "appRoles" in body:
        tenant.user_app_roles[user.id] = {k: list(v) for k, v in body.pop("appRoles").items()}
    if "userPrincipalName" in body:
        upn = str(body.pop("userPrincipalName"))
        if upn.lower() != user.upn.lower() and tenant.find_user(upn) is not None:
            raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                                                        "userPrincipalName already exists.")
        tenant.rename_upn(user, upn)
    unknown = set(body) - set(FIELD_SLOTS)
    if unknown:
        raise GraphError(400, "Request_BadRequest", f"unsupported properties: {sorted(unknown)}")
    apply_user_fields(tenant, user, body)


def _instant(value: Any) -> str:
    """An ISO 8601 instant as Graph shows it (UTC, `Z`); user.md: lastPasswordChangeDateTime "is always in UTC"."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise GraphError(400, "Request_BadRequest", "lastPasswordChangeDateTime must be an ISO 8601 instant") from None
    return iso(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)) or ""


def _on_prem(user: User, sam: str) -> OnPrem:
    number = int(user.id.replace("-", "")[-6:], 16)
    return (sam, f"S-1-5-21-1004336348-1177238915-682003330-{number}", f"{sam}-immutable==",
            "corp.contoso.example", f"CN={user.given_name or sam},OU=Staff,DC=corp,DC=contoso,DC=example",
            iso(utc_now()) or "")


async def create_user(request: web.Request) -> web.Response:
    tenant = state_of(request).tenant
    body = await read_json(request)
    upn = body.get("userPrincipalName")
    if not isinstance(upn, str) or "@" not in upn:
        return problem(400, "userPrincipalName is required")
    if tenant.find_user(upn) is not None:
        return problem(409, f"a user with userPrincipalName {upn} already exists")
    user_id = str(body.pop("id", None) or new_object_id()).lower()
    if user_id in tenant.users:
        return problem(409, f"a user with id {user_id} already exists")
    user = User(id=user_id, upn=upn, account_enabled=True, user_type="Member", created=iso(utc_now()),
                password_policies="None", usage_location="SE", password_changed=iso(utc_now()))
    body.pop("userPrincipalName")
    try:
        apply_control_fields(tenant, user, body)
    except GraphError as err:
        return problem(err.status, err.message)
    tenant.create_user(user)
    return web.json_response(user_view(tenant, user), status=201)


def _user_or_404(request: web.Request) -> User:
    user = state_of(request).tenant.find_user(request.match_info["id"])
    if user is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such user"}), content_type="application/json")
    return user


async def get_user(request: web.Request) -> web.Response:
    return web.json_response(user_view(state_of(request).tenant, _user_or_404(request)))


async def patch_user(request: web.Request) -> web.Response:
    tenant = state_of(request).tenant
    user = _user_or_404(request)
    try:
        apply_control_fields(tenant, user, await read_json(request))
    except GraphError as err:
        return problem(err.status, err.message)
    tenant.touch(user)
    return web.json_response(user_view(tenant, user))


async def delete_user(request: web.Request) -> web.Response:
    state_of(request).tenant.delete_user(_user_or_404(request))
    return web.Response(status=204)


def _member(request: web.Request) -> tuple[Tenant, Group, str]:
    tenant = state_of(request).tenant
    group = tenant.groups.get(request.match_info["gid"].lower())
    if group is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such group"}), content_type="application/json")
    ref = request.match_info["member"]
    if ref.lower() in tenant.groups:
        return tenant, group, ref.lower()
    user = tenant.find_user(ref)
    if user is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such user or group"}), content_type="application/json")
    return tenant, group, user.id


def _touch_members(tenant: Tenant, member_id: str) -> None:
    """A membership change shows up in /users/delta for every user it affects."""
    affected = [member_id] if member_id in tenant.users else tenant.flattened_members(member_id)[0]
    for uid in affected:
        if uid in tenant.users:
            tenant.touch(tenant.users[uid])


async def put_member(request: web.Request) -> web.Response:
    tenant, group, member_id = _member(request)
    if member_id == group.id:
        return problem(400, "a group cannot contain itself")
    tenant.add_member(group, member_id)
    _touch_members(tenant, member_id)
    return web.Response(status=204)


async def create_group(request: web.Request) -> web.Response:
    """{"displayName": ..., "description": ..., "id": optional, "members": [user ids, UPNs or group ids]}"""
    tenant = state_of(request).tenant
    body = await read_json(request)
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        return problem(400, "displayName is required")
    group_id = str(body.get("id") or new_object_id()).lower()
    if group_id in tenant.groups:
        return problem(409, f"a group with id {group_id} already exists")
    group = Group(group_id, name, str(body.get("description") or ""))
    tenant.groups[group_id] = group
    for ref in body.get("members") or []:
        member = tenant.groups.get(str(ref).lower()) or tenant.find_user(str(ref))
        if member is None:
            return problem(404, f"no such user or group {ref}")
        tenant.add_member(group, member.id)
    return web.json_response(group.to_graph(), status=201)


async def put_branding(request: web.Request) -> web.Response:
    """The company branding, replaced whole: {"default": {...}, "localizations": {"sv-SE": {...}}}; images as
    {"base64": ..., "contentType": "image/png"}. {} removes it (the tenant then has no branding)."""
    tenant = state_of(request).tenant
    try:
        tenant.set_branding(await read_json(request))
    except (KeyError, TypeError, ValueError) as err:
        return problem(400, f"invalid branding: {err}")
    return web.json_response({"default": "default" in tenant.branding,
                              "localizations": sorted(tenant.branding.get("localizations", {}))})


async def delete_member(request: web.Request) -> web.Response:
    tenant, group, member_id = _member(request)
    if not tenant.remove_member(group, member_id):
        return problem(404, "not a direct member")
    _touch_members(tenant, member_id)
    return web.Response(status=204)


async def patch_app(request: web.Request) -> web.Response:
    """Change what an app may do: {"graphPermissions": [...], "directoryRoles": [...], "apiPermissions": {...}}."""
    tenant = state_of(request).tenant
    app = tenant.apps.get(request.match_info["appId"].lower())
    if app is None:
        return problem(404, "no such app")
    body = await read_json(request)
    if "graphPermissions" in body:
        app.graph_permissions = list(body["graphPermissions"])
    if "apiPermissions" in body:
        app.api_permissions = {k: list(v) for k, v in body["apiPermissions"].items()}
    if "directoryRoles" in body:
        for role in tenant.roles.values():
            if app.service_principal_id in role.members:
                role.members.remove(app.service_principal_id)
        for name in body["directoryRoles"]:
            try:
                tenant.role_by_name(name).members.append(app.service_principal_id)
            except KeyError:
                return problem(400, f"unknown directory role {name!r}")
        app.directory_roles = list(body["directoryRoles"])
        tenant.membership_version += 1
    return web.json_response({"appId": app.app_id, "graphPermissions": app.graph_permissions,
                              "apiPermissions": app.api_permissions, "directoryRoles": app.directory_roles})


# ---- keys and tokens -------------------------------------------------------------------------------------


async def rotate_keys(request: web.Request) -> web.Response:
    keys = state_of(request).keys
    key = keys.rotate()
    return web.json_response({"kid": key.kid, "kids": [k.kid for k in keys.keys]})


async def custom_token(request: web.Request) -> web.Response:
    """{"claims": {...}, "expiresIn": -60, "signWith": "current" | "unknown-key" | "none", "header": {...}}

    Starts from the emulator's base claims (iss, iat, nbf, exp, tid, ver, uti); ``claims`` override them and a
    ``null`` value removes a claim. Handy for expired, tampered, wrong-issuer or wrong-audience tokens.
    """
    state = state_of(request)
    body = await read_json(request)
    expires_in = body.get("expiresIn", 3600)
    if not isinstance(expires_in, int):
        return problem(400, "expiresIn must be an integer (seconds, may be negative)")
    claims = base_claims(state.issuer(request), state.tenant.id)
    claims["exp"] = int(time.time()) + expires_in
    for name, value in (body.get("claims") or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    sign_with = body.get("signWith", "current")
    extra_header = body.get("header") or {}
    if sign_with == "current":
        key = state.keys.current
        token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, **extra_header})
        kid: str | None = key.kid
    elif sign_with == "unknown-key":
        stranger = SigningKey.generate()
        token = jwt.encode(claims, stranger.private_key, algorithm="RS256",
                           headers={"kid": stranger.kid, **extra_header})
        kid = stranger.kid
    elif sign_with == "none":
        token = jwt.encode(claims, None, algorithm="none", headers=extra_header)
        kid = None
    else:
        return problem(400, "signWith must be current, unknown-key or none")
    return web.json_response({"access_token": token, "kid": kid, "claims": claims})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_emulator/health", health)
    r.add_get("/_emulator/stats", stats)
    r.add_delete("/_emulator/stats", clear_stats)
    r.add_post("/_emulator/reset", reset)
    r.add_post("/_emulator/delta/resync", force_resync)
    r.add_get("/_emulator/faults", get_faults)
    r.add_put("/_emulator/faults", put_faults)
    r.add_delete("/_emulator/faults", delete_faults)
    r.add_get("/_emulator/outbox", get_outbox)
    r.add_delete("/_emulator/outbox", delete_outbox)
    r.add_post("/_emulator/sms", post_sms)
    r.add_patch("/_emulator/subscriptions", patch_subscriptions)
    r.add_post("/_emulator/users", create_user)
    r.add_get("/_emulator/users/{id}", get_user)
    r.add_patch("/_emulator/users/{id}", patch_user)
    r.add_delete("/_emulator/users/{id}", delete_user)
    r.add_post("/_emulator/groups", create_group)
    r.add_put("/_emulator/branding", put_branding)
    r.add_put("/_emulator/groups/{gid}/members/{member}", put_member)
    r.add_delete("/_emulator/groups/{gid}/members/{member}", delete_member)
    r.add_patch("/_emulator/apps/{appId}", patch_app)
    r.add_post("/_emulator/keys/rotate", rotate_keys)
    r.add_post("/_emulator/tokens", custom_token)
