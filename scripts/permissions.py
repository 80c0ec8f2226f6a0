"""What the service may do in the directory: the Graph application permissions and directory roles it needs.

Exactly the table of ../shared/design/contracts.md section 2 and nothing broader; scripts/grant_permissions.py
grants these, docs/deploy.md explains them, and tests check that nothing else is ever granted.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph, the same in every tenant


@dataclass(frozen=True)
class Permission:
    name: str
    why: str


SERVICE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("Organization.Read.All", "tenant id, name and verified domains (mails, banned-password context "
                                        "words); subscriptions, to tell a paid tenant from a trial"),
    Permission("User.Read.All", "users in scope, /users/delta for the re-sync, one user for a reset, licences"),
    Permission("GroupMember.Read.All", "members of the Selected group (nested), and checkMemberGroups for one user"),
    Permission("RoleManagement.Read.Directory", "whether a user holds an admin role (two methods, no questions)"),
    Permission("AuditLog.Read.All", "Entra's own registration report beside the compliance sweep (P1/P2 only)"),
    Permission("User-PasswordProfile.ReadWrite.All", "set the new password of a cloud user (the reset itself)"),
    Permission("User.RevokeSessions.All", "end the user's sign-in sessions after a reset"),
    Permission("User.ReadUpdate.All", "set or clear one user's 'password never expires' (passwordPolicies)"),
    Permission("Domain.ReadWrite.All", "read and set the organisation's password expiration per domain"),
    Permission("Mail.Send", "send codes, notices and reminders from SSPR_MAIL_SENDER; scope it to that mailbox "
                            "with an Exchange application access policy"),
)
SERVICE_PERMISSION_NAMES = frozenset(p.name for p in SERVICE_PERMISSIONS)

# Granted only with the switch that turns the policy's feature on (scripts/grant_permissions.py flags).
ACCESS_PASS_PERMISSIONS: tuple[Permission, ...] = (
    Permission("UserAuthMethod-TAP.ReadWrite.All", "make a Temporary Access Pass for a user a reset verified "
                                                   "(policy temporaryAccessPass; flag --temporary-access-pass)"),
    Permission("Policy.Read.All", "read the tenant's Temporary Access Pass policy (enabled, lifetime bounds, one-time "
                                  "only, targets) before making a pass (flag --temporary-access-pass)"),
)
ENTRA_METHODS_PERMISSIONS: tuple[Permission, ...] = (
    Permission("UserAuthenticationMethod.Read.All", "read the phone and email methods users registered in Entra, "
                                                    "so they count here (policy entraMethods.count; flag "
                                                    "--entra-methods)"),
)
OPTIONAL_PERMISSION_NAMES = frozenset(p.name for p in (*ACCESS_PASS_PERMISSIONS, *ENTRA_METHODS_PERMISSIONS))


@dataclass(frozen=True)
class DirectoryRole:
    name: str
    template_id: str  # the role definition id, the same in every tenant
    why: str


USER_ADMINISTRATOR = DirectoryRole(
    "User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Graph lets an app reset passwords only with a directory role; this one covers users without admin roles")
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = DirectoryRole(
    "Privileged Authentication Administrator", "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "only with --admin-resets: needed to reset the password of a user who holds any admin role")

# Given to the API app's own service principal by scripts/register_hook.py: Entra's authentication events
# service needs it to call the sign-in hook; it reads and writes no directory data.
HOOK_PAYLOAD_PERMISSION = "CustomAuthenticationExtension.Receive.Payload"
