"""Graph v1.0 authentication methods: Temporary Access Pass (policy, create, list) and the phone and email methods a
user registered in Entra, each as its Learn page says; registered on graph.py's router, so the same token checks,
permission checks, fault rules (a 429 storm with Retry-After on `pathContains`) and counters apply.

- GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass
  https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
  (Policy.Read.All; the defaults of a tenant: 60 minutes default, 60 minimum, 480 maximum, reusable allowed)
- POST /users/{id}/authentication/temporaryAccessPassMethods -> 201 with the pass, shown only in this answer
  https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods
  (UserAuthenticationMethod.ReadWrite.All or UserAuthMethod-TAP.ReadWrite.All; lifetime 10-43200 minutes and
  within the policy's bounds; a multi-use pass only if the policy allows it; a new pass replaces the old one)
- GET /users/{id}/authentication/temporaryAccessPassMethods: the pass hidden (null), as on later reads
  https://learn.microsoft.com/graph/api/authentication-list-temporaryaccesspassmethods
- GET /users/{id}/authentication/phoneMethods, .../emailMethods (UserAuthenticationMethod.Read.All,
  UserAuthMethod-Phone.Read.All / UserAuthMethod-Email.Read.All); paged with @odata.nextLink like every
  collection (https://learn.microsoft.com/graph/paging): pages of PAGE_SIZE here, so a client that reads one page
  only is caught
  https://learn.microsoft.com/graph/api/authentication-list-phonemethods
  https://learn.microsoft.com/graph/api/authentication-list-emailmethods

Signing in with a pass is identity.py's `sign_in(..., allow_pass=True)` from the authorize page: the pass stands
in for the password in the browser flow (https://learn.microsoft.com/entra/identity/authentication/
howto-authentication-temporary-access-pass); a one-time pass works once.
"""

from __future__ import annotations

import hmac
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .errors import GraphError
from .graph import GraphRequest, GraphResult, collection, entity, find_user, json_object, paged, route
from .tenant import iso, utc_now

READ_POLICY = frozenset({"Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"})
WRITE_PASS = frozenset({"UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All"})
READ_PASS = WRITE_PASS | {"UserAuthenticationMethod.Read.All", "UserAuthMethod-TAP.Read.All"}
READ_PHONES = frozenset({"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All",
                         "UserAuthMethod-Phone.Read.All", "UserAuthMethod-Phone.ReadWrite.All"})
READ_EMAILS = frozenset({"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All",
                         "UserAuthMethod-Email.Read.All", "UserAuthMethod-Email.ReadWrite.All"})
PASS_BOUNDS = (10, 43200)
PAGE_SIZE = 2
PASS_ALPHABET = string.ascii_letters + string.digits + "!@#$%&*+=?"
PHONE_TYPES = ("mobile", "alternateMobile", "office")
_ID = r"(?P<id>[^/]+)"


@dataclass(slots=True)
class AccessPass:
    id: str
    secret: str
    created: datetime
    start: datetime
    lifetime_minutes: int
    usable_once: bool
    used: bool = False

    def usability(self, now: datetime) -> str:
        if self.used:
            return "OneTimeUsed"
        if now < self.start:
            return "NotYetValid"
        if now >= self.start + timedelta(minutes=self.lifetime_minutes):
            return "Expired"
        return "EnabledByPolicy"

    def view(self, now: datetime, reveal: bool = False) -> dict[str, Any]:
        reason = self.usability(now)
        return {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "id": self.id,
                "temporaryAccessPass": self.secret if reveal else None, "createdDateTime": iso(self.created),
                "startDateTime": iso(self.start), "lifetimeInMinutes": self.lifetime_minutes,
                "isUsableOnce": self.usable_once, "isUsable": reason == "EnabledByPolicy",
                "methodUsabilityReason": reason}


@dataclass(slots=True)
class AuthenticationMethods:
    """A tenant's TAP policy and its users' passes, phone and email methods (reset with the tenant)."""

    tap_policy: dict[str, Any] = field(default_factory=lambda: {
        "state": "enabled", "defaultLifetimeInMinutes": 60, "defaultLength": 8, "minimumLifetimeInMinutes": 60,
        "maximumLifetimeInMinutes": 480, "isUsableOnce": False,
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
        "excludeTargets": []})
    passes: dict[str, AccessPass] = field(default_factory=dict)  # user id -> the one pass
    phones: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    emails: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def redeem(self, user_id: str, typed: str, now: datetime) -> bool:
        """Whether `typed` is the user's usable pass; a one-time pass is used up by this."""
        found = self.passes.get(user_id)
        if found is None or found.usability(now) != "EnabledByPolicy" \
                or not hmac.compare_digest(found.secret.encode(), typed.encode()):
            return False
        if found.usable_once:
            found.used = True
        return True

    def add_phone(self, user_id: str, number: str, phone_type: str) -> dict[str, Any]:
        if phone_type not in PHONE_TYPES:
            raise GraphError(400, "badRequest", f"phoneType must be one of {', '.join(PHONE_TYPES)}")
        phones = [p for p in self.phones.get(user_id, []) if p["phoneType"] != phone_type]  # one of each type
        method = {"id": _PHONE_IDS[phone_type], "phoneNumber": number, "phoneType": phone_type,
                  "smsSignInState": "notAllowedByPolicy"}
        self.phones[user_id] = [*phones, method]
        return method

    def add_email(self, user_id: str, address: str) -> dict[str, Any]:
        method = {"id": str(uuid.uuid4()), "emailAddress": address}
        self.emails[user_id] = [method]  # Entra keeps one email method per user
        return method


# The ids Entra gives a user's phone methods, one per type (authentication-list-phonemethods).
_PHONE_IDS = {"mobile": "3179e48a-750b-4051-897c-87b9720928f7",
              "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
              "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc"}

POLICY_PATH = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass"


@route("GET", POLICY_PATH, r"/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/"
       r"temporaryAccessPass", READ_POLICY)
async def get_tap_policy(req: GraphRequest) -> GraphResult:
    policy = req.tenant.auth_methods.tap_policy
    return entity(req, "authenticationMethodConfigurations", {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass", **policy})


@route("POST", "/users/{id}/authentication/temporaryAccessPassMethods",
       rf"/users/{_ID}/authentication/temporaryAccessPassMethods", WRITE_PASS)
async def create_pass(req: GraphRequest) -> GraphResult:
    user = find_user(req)
    body = json_object(req)
    methods = req.tenant.auth_methods
    policy = methods.tap_policy
    if policy["state"] != "enabled":
        raise GraphError(400, "badRequest", "Temporary Access Pass is not enabled by the authentication methods "
                                            "policy for this user.")
    lifetime = body.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
    once = body.get("isUsableOnce", policy["isUsableOnce"])
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not isinstance(once, bool):
        raise GraphError(400, "badRequest", "Invalid value specified for lifetimeInMinutes or isUsableOnce.")
    low, high = max(PASS_BOUNDS[0], policy["minimumLifetimeInMinutes"]), \
        min(PASS_BOUNDS[1], policy["maximumLifetimeInMinutes"])
    if not low <= lifetime <= high:
        raise GraphError(400, "badRequest", f"lifetimeInMinutes must be between {low} and {high} as the "
                                            "Temporary Access Pass policy sets.")
    if policy["isUsableOnce"] and not once:
        raise GraphError(400, "badRequest", "The Temporary Access Pass policy allows one-time passes only.")
    now = utc_now()
    start = datetime.fromisoformat(body["startDateTime"].replace("Z", "+00:00")) if body.get("startDateTime") \
        else now
    secret = "".join(secrets.choice(PASS_ALPHABET) for _ in range(int(policy["defaultLength"])))
    issued = AccessPass(id=str(uuid.uuid4()), secret=secret, created=now, start=start, lifetime_minutes=lifetime,
                        usable_once=once)
    methods.passes[user.id] = issued  # a new pass replaces the previous one
    result = entity(req, f"users('{user.id}')/authentication/temporaryAccessPassMethods", issued.view(now, True))
    return GraphResult(201, result.body)


@route("GET", "/users/{id}/authentication/temporaryAccessPassMethods",
       rf"/users/{_ID}/authentication/temporaryAccessPassMethods", READ_PASS)
async def list_passes(req: GraphRequest) -> GraphResult:
    found = req.tenant.auth_methods.passes.get(find_user(req).id)
    return collection(req, "users/authentication/temporaryAccessPassMethods",
                      [found.view(utc_now())] if found else [])


@route("GET", "/users/{id}/authentication/phoneMethods", rf"/users/{_ID}/authentication/phoneMethods", READ_PHONES)
async def list_phones(req: GraphRequest) -> GraphResult:
    phones = req.tenant.auth_methods.phones.get(find_user(req).id, [])
    return paged(req, phones, "users/authentication/phoneMethods", dict, default_size=PAGE_SIZE)


@route("GET", "/users/{id}/authentication/emailMethods", rf"/users/{_ID}/authentication/emailMethods", READ_EMAILS)
async def list_emails(req: GraphRequest) -> GraphResult:
    emails = req.tenant.auth_methods.emails.get(find_user(req).id, [])
    return paged(req, emails, "users/authentication/emailMethods", dict, default_size=PAGE_SIZE)


# ---- the control API (tests and demos): the tenant's TAP policy, a user's Entra phone and email methods ------

TAP_POLICY_FIELDS = {"state": str, "defaultLifetimeInMinutes": int, "minimumLifetimeInMinutes": int,
                     "maximumLifetimeInMinutes": int, "isUsableOnce": bool, "includeTargets": list,
                     "excludeTargets": list}


async def patch_tap_policy(request: Any) -> Any:
    """PATCH /_emulator/tapPolicy with any of TAP_POLICY_FIELDS; answers the whole policy."""
    from .control import problem, read_json, state_of

    body = await read_json(request)
    policy = state_of(request).tenant.auth_methods.tap_policy
    for name, value in body.items():
        kind = TAP_POLICY_FIELDS.get(name)
        if kind is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return problem(400, f"{name} is not a TAP policy field of this type")
    policy.update(body)
    from aiohttp import web

    return web.json_response(policy)


async def post_entra_method(request: Any) -> Any:
    """POST /_emulator/users/{id}/phoneMethods {"phoneNumber", "phoneType"} or .../emailMethods {"emailAddress"}."""
    from aiohttp import web

    from .control import _user_or_404, problem, read_json, state_of

    user = _user_or_404(request)
    body = await read_json(request)
    methods = state_of(request).tenant.auth_methods
    try:
        if request.match_info["kind"] == "phoneMethods":
            added = methods.add_phone(user.id, str(body.get("phoneNumber") or ""), str(body.get("phoneType") or ""))
        else:
            added = methods.add_email(user.id, str(body.get("emailAddress") or ""))
    except GraphError as error:
        return problem(400, error.message)
    return web.json_response(added, status=201)


def add_control_routes(app: Any) -> None:
    app.router.add_patch("/_emulator/tapPolicy", patch_tap_policy)
    app.router.add_post(r"/_emulator/users/{id}/{kind:phoneMethods|emailMethods}", post_entra_method)
