"""The emulated directory: users, groups, roles, licences, apps, and the change log behind /users/delta.

A tenant is built from the JSON fixture plus deterministic generated users (``filler`` in the fixture, or
``--users N``). Users are slotted objects so a 100,000-user tenant stays small and fast to page.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEMO_FIXTURE = Path(__file__).with_name("fixture") / "demo_tenant.json"
BRANDING_IMAGES = ("bannerLogo", "backgroundImage", "squareLogo")

AAD_PREMIUM = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
AAD_PREMIUM_P2 = "eec0eb4f-6444-4f95-aba0-50c24d67f998"
PREMIUM_PLAN_IDS = frozenset({AAD_PREMIUM, AAD_PREMIUM_P2})

# Graph returns these user properties when a request has no $select (v1.0 default set).
DEFAULT_USER_PROPERTIES = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)
PASSWORD_POLICIES = frozenset(
    {"None", "DisablePasswordExpiration", "DisableStrongPassword", "DisablePasswordExpiration, DisableStrongPassword"}
)
# Properties a client may PATCH on a user (besides passwordProfile), and those still writable for synced users.
WRITABLE_USER_PROPERTIES = frozenset(
    {"accountEnabled", "displayName", "givenName", "surname", "mail", "mobilePhone", "otherMails",
     "preferredLanguage", "jobTitle", "department", "officeLocation", "companyName", "usageLocation",
     "businessPhones", "passwordPolicies"}
)
WRITABLE_FOR_SYNCED = frozenset({"passwordPolicies", "usageLocation"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class User:
    """One directory user. ``None`` means "not set" (Graph returns null / [] for it)."""

    __slots__ = (
        "account_enabled",
        "business_phones",
        "company_name",
        "created",
        "department",
        "display_name",
        "force_change",
        "generated_index",
        "given_name",
        "id",
        "job_title",
        "mail",
        "mobile_phone",
        "office_location",
        "on_prem",
        "other_mails",
        "password",
        "password_changed",
        "password_policies",
        "preferred_language",
        "seq",
        "sessions_valid_from",
        "sku_ids",
        "surname",
        "upn",
        "usage_location",
        "user_type",
    )

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))
        if self.other_mails is None:
            self.other_mails = ()
        if self.business_phones is None:
            self.business_phones = ()
        if self.sku_ids is None:
            self.sku_ids = ()
        if self.seq is None:
            self.seq = 0

    @property
    def synced(self) -> bool:
        return self.on_prem is not None

    def graph_property(self, name: str) -> Any:
        """The value Graph would show for one property of this user."""
        getter = USER_PROPERTY_GETTERS.get(name)
        return None if getter is None else getter(self)


# Immutable facts of a synced user's on-premises object, shared layout, kept as a tuple to save memory:
# (samAccountName, securityIdentifier, immutableId, domainName, distinguishedName, lastSyncDateTime)
OnPrem = tuple[str, str, str, str, str, str]

USER_PROPERTY_GETTERS: dict[str, Any] = {
    "id": lambda u: u.id,
    "userPrincipalName": lambda u: u.upn,
    "displayName": lambda u: u.display_name if u.display_name is not None else f"{u.given_name} {u.surname}",
    "givenName": lambda u: u.given_name,
    "surname": lambda u: u.surname,
    "mail": lambda u: u.mail,
    "otherMails": lambda u: list(u.other_mails),
    "mobilePhone": lambda u: u.mobile_phone,
    "businessPhones": lambda u: list(u.business_phones),
    "preferredLanguage": lambda u: u.preferred_language,
    "userType": lambda u: u.user_type,
    "accountEnabled": lambda u: u.account_enabled,
    "jobTitle": lambda u: u.job_title,
    "department": lambda u: u.department,
    "officeLocation": lambda u: u.office_location,
    "companyName": lambda u: u.company_name,
    "usageLocation": lambda u: u.usage_location,
    "createdDateTime": lambda u: u.created,
    "creationType": lambda u: "Invitation" if u.user_type == "Guest" else None,
    "externalUserState": lambda u: "Accepted" if u.user_type == "Guest" else None,
    "onPremisesSyncEnabled": lambda u: True if u.on_prem else None,
    "onPremisesSamAccountName": lambda u: u.on_prem[0] if u.on_prem else None,
    "onPremisesSecurityIdentifier": lambda u: u.on_prem[1] if u.on_prem else None,
    "onPremisesImmutableId": lambda u: u.on_prem[2] if u.on_prem else None,
    "onPremisesDomainName": lambda u: u.on_prem[3] if u.on_prem else None,
    "onPremisesDistinguishedName": lambda u: u.on_prem[4] if u.on_prem else None,
    "onPremisesLastSyncDateTime": lambda u: u.on_prem[5] if u.on_prem else None,
    "onPremisesUserPrincipalName": lambda u: u.upn if u.on_prem else None,
    "passwordPolicies": lambda u: u.password_policies,
    "lastPasswordChangeDateTime": lambda u: u.password_changed,
    "signInSessionsValidFromDateTime": lambda u: u.sessions_valid_from,
    "assignedLicenses": lambda u: [{"disabledPlans": [], "skuId": s} for s in u.sku_ids],
    "passwordProfile": lambda u: None,  # write-only in Graph
}
USER_PROPERTIES = frozenset(USER_PROPERTY_GETTERS)


@dataclass(slots=True)
class Group:
    id: str
    display_name: str
    description: str = ""
    members: list[str] = field(default_factory=list)  # user ids and group ids, in insertion order
    app_roles: dict[str, list[str]] = field(default_factory=dict)  # resource appId -> role values
    created: str = "2024-01-15T08:00:00Z"

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id, "displayName": self.display_name, "description": self.description,
            "createdDateTime": self.created, "groupTypes": [], "mailEnabled": False, "securityEnabled": True,
            "mailNickname": self.display_name.lower().replace(" ", "-"), "isAssignableToRole": None,
            "visibility": None,
        }


@dataclass(slots=True)
class DirectoryRole:
    id: str
    role_template_id: str
    display_name: str
    description: str
    members: list[str] = field(default_factory=list)  # user ids, group ids or service principal ids

    def to_graph(self) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.directoryRole", "id": self.id, "deletedDateTime": None,
                "description": self.description, "displayName": self.display_name,
                "roleTemplateId": self.role_template_id}


@dataclass(slots=True)
class App:
    app_id: str
    display_name: str
    service_principal_id: str
    secret: str | None
    public_client: bool = False
    app_roles: list[dict[str, Any]] = field(default_factory=list)  # [{"id","value","displayName",...}]
    scopes: list[str] = field(default_factory=list)  # delegated scopes this app exposes as an API
    graph_permissions: list[str] = field(default_factory=list)  # application permissions on Graph
    api_permissions: dict[str, list[str]] = field(default_factory=dict)  # resource appId -> app roles granted
    delegated: dict[str, list[str]] = field(default_factory=dict)  # resource -> delegated scopes consented
    directory_roles: list[str] = field(default_factory=list)  # role display names held by its SP
    identifier_uris: list[str] = field(default_factory=list)  # Application ID URIs (admin_graph.py)


@dataclass(slots=True)
class Sku:
    sku_id: str
    sku_part_number: str
    service_plans: list[dict[str, str]]  # [{"servicePlanId","servicePlanName"}]
    prepaid_units: int

    @property
    def premium(self) -> bool:
        return any(p["servicePlanId"] in PREMIUM_PLAN_IDS for p in self.service_plans)


@dataclass(slots=True)
class Subscription:
    id: str
    sku_id: str
    sku_part_number: str
    is_trial: bool
    status: str
    total_licenses: int
    created: str
    next_lifecycle: str


class Tenant:
    """All directory state plus a monotonically increasing change sequence for delta queries."""

    def __init__(self, fixture: dict[str, Any], generated_users: int | None = None, seed: int | None = None):
        self.fixture = fixture
        org = fixture["tenant"]
        self.id: str = org["id"]
        self.display_name: str = org["displayName"]
        self.organization: dict[str, Any] = org
        self.domains: dict[str, dict[str, Any]] = {d["id"]: dict(d) for d in fixture["domains"]}
        self.default_password: str = fixture["defaultPassword"]
        self.skus: dict[str, Sku] = {
            s["skuPartNumber"]: Sku(s["skuId"], s["skuPartNumber"], s["servicePlans"], s["prepaidUnits"])
            for s in fixture["skus"]
        }
        self.skus_by_id: dict[str, Sku] = {s.sku_id: s for s in self.skus.values()}
        self.subscriptions: list[Subscription] = [
            Subscription(s["id"], self.skus[s["skuPartNumber"]].sku_id, s["skuPartNumber"], s["isTrial"],
                         s["status"], s["totalLicenses"], s["createdDateTime"], s["nextLifecycleDateTime"])
            for s in fixture["subscriptions"]
        ]
        self.apps: dict[str, App] = {}
        for a in fixture["apps"]:
            self.apps[a["appId"]] = App(
                app_id=a["appId"], display_name=a["displayName"], service_principal_id=a["servicePrincipalId"],
                secret=a.get("secret"), public_client=a.get("publicClient", False),
                app_roles=a.get("appRoles", []), scopes=a.get("scopes", []),
                graph_permissions=a.get("graphPermissions", []), api_permissions=a.get("apiPermissions", {}),
                delegated=a.get("delegated", {}), directory_roles=a.get("directoryRoles", []),
                identifier_uris=a.get("identifierUris", [f"api://{a['appId']}"] if a.get("scopes") else []),
            )
        self.roles: dict[str, DirectoryRole] = {
            r["id"]: DirectoryRole(r["id"], r["roleTemplateId"], r["displayName"], r.get("description", ""))
            for r in fixture["directoryRoles"]
        }
        self.users: dict[str, User] = {}
        self.by_upn: dict[str, User] = {}
        self.user_app_roles: dict[str, dict[str, list[str]]] = {}  # user id -> resource appId -> roles
        self.groups: dict[str, Group] = {}
        from .authentication_methods import AuthenticationMethods  # it imports graph.py, which imports this

        self.auth_methods = AuthenticationMethods()  # TAP policy and passes, Entra phone and email methods
        self.epoch = uuid.uuid4().hex[:12]  # delta tokens of an earlier tenant (before a reset) are refused
        self.resync_epochs: set[str] = set()  # epochs ended by a forced resync: their tokens answer 410
        self.seq = 0
        self.changes: list[tuple[int, str]] = []  # (seq, user id), append-only, seq ascending
        self.removed: dict[str, int] = {}  # deleted user id -> seq of deletion
        # (seq, group id, member id, added): direct membership changes, as /groups/delta reports them. A member
        # removed because the user was deleted is not among them (real Graph leaves that to /users/delta).
        self.member_changes: list[tuple[int, str, str, bool]] = []
        self._order: list[User] | None = None
        self._flat_cache: dict[str, tuple[int, list[str], frozenset[str]]] = {}
        self.membership_version = 0
        # Deployment objects written by scripts/register_hook.py through admin_graph.py, by id.
        self.custom_extensions: dict[str, dict[str, Any]] = {}
        self.event_listeners: dict[str, dict[str, Any]] = {}
        # Company branding (directory_graph.py): {"default": {...}, "localizations": {"sv-SE": {...}}} and the
        # images of each, by (localization key, stream name).
        self.branding: dict[str, Any] = {}
        self.branding_images: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.set_branding(fixture.get("branding") or {}, DEMO_FIXTURE.parent)

        self._load_named_users(fixture["users"])
        filler = fixture.get("filler", {})
        count = filler.get("count", 0) if generated_users is None else generated_users
        generated = generate_users(count, filler.get("seed", 1) if seed is None else seed, self)
        for user in generated:
            self._add(user)
        self._load_groups(fixture["groups"], generated)
        self._load_role_members(fixture)
        # The initial tenant is the baseline: delta starts from sequence 0 with every user in it.
        self.changes.clear()
        for user in self.users.values():
            user.seq = 0

    # ---- loading -------------------------------------------------------------------------------------

    def set_branding(self, branding: dict[str, Any], folder: Path | None = None) -> None:
        """Replace the company branding. An image is a file name under `folder` (fixtures) or, from the control
        API, {"base64": ..., "contentType": "image/png"}."""
        self.branding, self.branding_images = {}, {}
        branding = {k: v for k, v in branding.items() if k != "_comment"}
        parts = [("0", branding.get("default")), *(branding.get("localizations") or {}).items()]
        for key, values in parts:
            if not values:
                continue
            kept = {k: v for k, v in values.items() if k not in BRANDING_IMAGES}
            for name in BRANDING_IMAGES:
                image = values.get(name)
                if image is None:
                    continue
                if isinstance(image, str) and folder is not None:
                    path = folder / image
                    data, kind = path.read_bytes(), "image/jpeg" if path.suffix == ".jpg" else "image/png"
                else:
                    data, kind = base64.b64decode(image["base64"]), str(image.get("contentType", "image/png"))
                self.branding_images[(key, name)] = (data, kind)
                kept[name] = True
            kept["_key"] = key
            if key == "0":
                self.branding["default"] = kept
            else:
                self.branding.setdefault("localizations", {})[key] = kept

    def _load_named_users(self, users: list[dict[str, Any]]) -> None:
        for u in users:
            on_prem = u.get("onPremises")
            user = User(
                id=u["id"], upn=u["userPrincipalName"], given_name=u.get("givenName"), surname=u.get("surname"),
                display_name=u.get("displayName"), mail=u.get("mail"), other_mails=tuple(u.get("otherMails", ())),
                mobile_phone=u.get("mobilePhone"), business_phones=tuple(u.get("businessPhones", ())),
                preferred_language=u.get("preferredLanguage"), user_type=u.get("userType", "Member"),
                account_enabled=u.get("accountEnabled", True), job_title=u.get("jobTitle"),
                department=u.get("department"), office_location=u.get("officeLocation"),
                company_name=u.get("companyName"), usage_location=u.get("usageLocation", "SE"),
                created=u.get("createdDateTime", "2023-05-02T08:00:00Z"),
                on_prem=None if on_prem is None else (
                    on_prem["samAccountName"], on_prem["securityIdentifier"], on_prem["immutableId"],
                    on_prem.get("domainName", "corp.contoso.example"), on_prem["distinguishedName"],
                    on_prem.get("lastSyncDateTime", "2026-01-05T03:00:00Z")),
                sku_ids=tuple(self.skus[p].sku_id for p in u.get("licenses", ())),
                password=u.get("password"), password_policies=u.get("passwordPolicies", "None"),
                force_change=False, password_changed=u.get("lastPasswordChangeDateTime", "2025-11-01T08:00:00Z"),
            )
            self._add(user)
            for role_name in u.get("roles", ()):
                self.role_by_name(role_name).members.append(user.id)
            if u.get("appRoles"):
                self.user_app_roles[user.id] = {k: list(v) for k, v in u["appRoles"].items()}

    def _load_groups(self, groups: list[dict[str, Any]], generated: list[User]) -> None:
        for g in groups:
            self.groups[g["id"]] = Group(g["id"], g["displayName"], g.get("description", ""),
                                         app_roles=g.get("appRoles", {}))
        for g in groups:
            group = self.groups[g["id"]]
            for ref in g.get("members", ()):
                group.members.append(self._resolve_member(ref))
            every = g.get("generatedMembers", {}).get("every")
            if every:
                group.members.extend(u.id for u in generated if u.generated_index % every == 0)

    def _load_role_members(self, fixture: dict[str, Any]) -> None:
        for app in self.apps.values():
            for role_name in app.directory_roles:
                self.role_by_name(role_name).members.append(app.service_principal_id)

    def _resolve_member(self, ref: str) -> str:
        if ref in self.groups or ref in self.users:
            return ref
        user = self.by_upn.get(ref.lower())
        if user is None:
            raise ValueError(f"fixture member {ref!r} is neither a user nor a group")
        return user.id

    # ---- lookups -------------------------------------------------------------------------------------

    def role_by_name(self, name: str) -> DirectoryRole:
        for role in self.roles.values():
            if role.display_name == name:
                return role
        raise KeyError(name)

    def find_user(self, key: str) -> User | None:
        """By object id or userPrincipalName (case-insensitive), as Graph's /users/{id | userPrincipalName}."""
        user = self.users.get(key)
        if user is None:
            user = self.users.get(key.lower()) or self.by_upn.get(key.lower())
        return user

    def user_list(self) -> list[User]:
        """Users in a stable order (insertion order), cached until a user is added or deleted."""
        if self._order is None:
            self._order = list(self.users.values())
        return self._order

    def app_for_service_principal(self, sp_id: str) -> App | None:
        return next((a for a in self.apps.values() if a.service_principal_id == sp_id), None)

    def flattened_members(self, group_id: str) -> tuple[list[str], frozenset[str]]:
        """Transitive member ids of a group (users, groups and service principals), cycles tolerated."""
        cached = self._flat_cache.get(group_id)
        if cached and cached[0] == self.membership_version:
            return cached[1], cached[2]
        ordered: list[str] = []
        seen: set[str] = set()
        visited_groups = {group_id}
        stack = [group_id]
        while stack:
            current = self.groups[stack.pop(0)]
            for member in current.members:
                if member in self.groups:
                    if member not in visited_groups:
                        visited_groups.add(member)
                        stack.append(member)
                    if member in seen:
                        continue
                elif member in seen:
                    continue
                seen.add(member)
                ordered.append(member)
        result = (ordered, frozenset(seen))
        self._flat_cache[group_id] = (self.membership_version, *result)
        return result

    def transitive_user_members(self, group_id: str) -> list[User]:
        ordered, _ = self.flattened_members(group_id)
        return [self.users[m] for m in ordered if m in self.users]

    def groups_of(self, member_id: str) -> set[str]:
        """Ids of every group the member belongs to, directly or through nested groups."""
        return {gid for gid in self.groups if member_id in self.flattened_members(gid)[1]}

    def roles_of(self, member_id: str) -> list[DirectoryRole]:
        groups = self.groups_of(member_id)
        return [r for r in self.roles.values() if member_id in r.members or groups.intersection(r.members)]

    def is_admin(self, user_id: str) -> bool:
        return bool(self.roles_of(user_id))

    def app_roles_of_user(self, user_id: str, resource_app_id: str) -> list[str]:
        roles = list(self.user_app_roles.get(user_id, {}).get(resource_app_id, ()))
        for gid in self.groups_of(user_id):
            for role in self.groups[gid].app_roles.get(resource_app_id, ()):
                if role not in roles:
                    roles.append(role)
        return roles

    def premium(self) -> bool:
        """True when an enabled subscription includes Entra ID P1 or P2."""
        return any(s.status == "Enabled" and self.skus[s.sku_part_number].premium for s in self.subscriptions)

    def password_of(self, user: User) -> str:
        return user.password if user.password is not None else self.default_password

    # ---- changes (each one feeds /users/delta) ------------------------------------------------------

    def force_resync(self) -> None:
        """End every delta token issued so far the way Graph's forced resync does (410 Gone + Location)."""
        self.resync_epochs.add(self.epoch)
        self.epoch = uuid.uuid4().hex[:12]

    def touch(self, user: User) -> None:
        self.seq += 1
        user.seq = self.seq
        self.changes.append((self.seq, user.id))

    def _add(self, user: User) -> None:
        self.users[user.id] = user
        self.by_upn[user.upn.lower()] = user
        self._order = None

    def create_user(self, user: User) -> None:
        self._add(user)
        self.touch(user)

    def delete_user(self, user: User) -> None:
        del self.users[user.id]
        self.by_upn.pop(user.upn.lower(), None)
        self._order = None
        for container in [*self.groups.values(), *self.roles.values()]:
            if user.id in container.members:
                container.members.remove(user.id)
        self.membership_version += 1
        self.seq += 1
        self.removed[user.id] = self.seq
        self.changes.append((self.seq, user.id))

    def rename_upn(self, user: User, upn: str) -> None:
        self.by_upn.pop(user.upn.lower(), None)
        user.upn = upn
        self.by_upn[upn.lower()] = user

    def add_member(self, group: Group, member_id: str) -> None:
        if member_id not in group.members:
            group.members.append(member_id)
            self.membership_version += 1
            self._member_changed(group, member_id, added=True)

    def remove_member(self, group: Group, member_id: str) -> bool:
        if member_id not in group.members:
            return False
        group.members.remove(member_id)
        self.membership_version += 1
        self._member_changed(group, member_id, added=False)
        return True

    def _member_changed(self, group: Group, member_id: str, added: bool) -> None:
        self.seq += 1
        self.member_changes.append((self.seq, group.id, member_id, added))

    def membership_changes(self, since: int, upto: int, group_ids: set[str]) -> dict[str, dict[str, bool]]:
        """Direct members of `group_ids` added (True) or removed (False) in (since, upto], each member's last."""
        start = bisect.bisect_right(self.member_changes, (since, "\uffff"))
        end = bisect.bisect_right(self.member_changes, (upto, "\uffff"))
        changed: dict[str, dict[str, bool]] = {}
        for _, group_id, member_id, added in self.member_changes[start:end]:
            if group_id in group_ids:
                changed.setdefault(group_id, {})[member_id] = added
        return changed

    def changed_since(self, since: int, upto: int) -> list[str]:
        """User ids changed in (since, upto], each once, in order of their latest change."""
        start = bisect.bisect_right(self.changes, (since, "\uffff"))
        end = bisect.bisect_right(self.changes, (upto, "\uffff"))
        latest: dict[str, None] = {}
        for _, user_id in self.changes[start:end]:
            latest.pop(user_id, None)
            latest[user_id] = None
        return list(latest)


# ---- generated users ----------------------------------------------------------------------------------

GIVEN_NAMES = (
    "Alex", "Anna", "Bo", "Camille", "Dana", "Elin", "Erik", "Fatima", "Gustav", "Hanna", "Ibrahim", "Ingrid",
    "Jonas", "Karin", "Lars", "Leila", "Magnus", "Maja", "Nora", "Oskar", "Priya", "Rasmus", "Sara", "Tariq",
    "Ulla", "Viktor", "Wei", "Yasmin", "Zoe", "Omar", "Linnea", "Mateo",
)
SURNAMES = (
    "Andersson", "Berg", "Chen", "Dahl", "Ek", "Fischer", "Garcia", "Holm", "Ivanova", "Johansson", "Khan",
    "Lindqvist", "Martin", "Nilsson", "Okafor", "Persson", "Quist", "Rossi", "Sandberg", "Tanaka", "Ueda",
    "Virtanen", "Wallin", "Xu", "Yilmaz", "Zetterberg", "Karlsson", "Olsen",
)
DEPARTMENTS = ("Finance", "Sales", "Engineering", "Support", "HR", "Legal", "Operations", "Marketing")
GUEST_DOMAINS = ("fabrikam.example", "tailspin.example", "northwind.example")


def generate_users(count: int, seed: int, tenant: Tenant) -> list[User]:
    """``count`` users derived only from ``seed`` (same seed, same users), with a realistic mix of kinds."""
    rng = random.Random(seed)
    rand = rng.random
    bits = rng.getrandbits
    choice = rng.choice
    sku = {name: (s.sku_id,) for name, s in tenant.skus.items()}
    no_sku: tuple[str, ...] = ()
    domain = next(d for d, v in tenant.domains.items() if v.get("isDefault"))
    initial = next(d for d, v in tenant.domains.items() if v.get("isInitial"))
    created_days = [f"2024-{m:02d}-{d:02d}T09:00:00Z" for m in range(1, 13) for d in (1, 8, 15, 22)]
    users: list[User] = []
    append = users.append
    # Passwords changed over the last 120 days before the tenant was made (deterministic in the index, drawn from
    # no random number, so every other generated fact stays what it was): with a 90-day validity about a quarter
    # of the tenant has expired, and a few percent expire in any given week.
    made = utc_now().replace(microsecond=0)
    for i in range(count):
        given = choice(GIVEN_NAMES)
        surname = choice(SURNAMES)
        user_id = str(uuid.UUID(int=bits(128), version=4))
        kind = rand()
        language = "sv-SE" if rand() < 0.35 else ("en-US" if rand() < 0.9 else None)
        if kind < 0.06:  # guest
            guest_domain = choice(GUEST_DOMAINS)
            mail = f"{given.lower()}.{surname.lower()}{i}@{guest_domain}"
            upn = f"{mail.replace('@', '_')}#EXT#@{initial}"
            created = choice(created_days)  # a guest's password is its home tenant's: the date is its creation
            user = User(id=user_id, upn=upn, given_name=given, surname=surname, mail=mail, user_type="Guest",
                        account_enabled=True, preferred_language=None, created=created,
                        sku_ids=no_sku, password_policies="None", password_changed=created, generated_index=i)
        else:
            local = f"{given.lower()}.{surname.lower()}{i}"
            upn = f"{local}@{domain}"
            synced = kind > 0.78
            on_prem: OnPrem | None = None
            if synced:
                sam = f"{given[:3].lower()}{surname[:3].lower()}{i}"
                on_prem = (sam, f"S-1-5-21-1004336348-1177238915-682003330-{10000 + i}",
                           f"{bits(64):016x}==", "corp.contoso.example",
                           f"CN={given} {surname},OU=Staff,DC=corp,DC=contoso,DC=example", "2026-01-05T03:00:00Z")
            lic = rand()
            skus = sku["SPB"] if lic < 0.5 else sku["AAD_PREMIUM_P2"] if lic < 0.6 else (
                sku["O365_BUSINESS_ESSENTIALS"] if lic < 0.8 else no_sku)
            user = User(
                id=user_id, upn=upn, given_name=given, surname=surname,
                mail=upn if rand() < 0.9 else None,
                other_mails=(f"{local}@home.example",) if rand() < 0.4 else (),
                mobile_phone=f"+46 70 {bits(24) % 10_000_000:07d}" if rand() < 0.6 else None,
                preferred_language=language, user_type="Member", account_enabled=rand() > 0.05,
                department=choice(DEPARTMENTS), usage_location="SE", created=choice(created_days),
                # Entra Connect sets DisablePasswordExpiration on synced users while the tenant's
                # CloudPasswordPolicyForPasswordSyncedUsersEnabled is off, its default (how-to-connect-password-hash-
                # synchronization, "Password expiration policy").
                on_prem=on_prem, sku_ids=skus,
                password_policies="DisablePasswordExpiration" if synced else "None",
                password_changed=iso(made - timedelta(minutes=(i * 7919) % (120 * 24 * 60))), generated_index=i,
            )
        append(user)
    return users


def load_fixture(path: Path | str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or DEMO_FIXTURE).read_text(encoding="utf-8"))


def new_object_id() -> str:
    return str(uuid.uuid4())
