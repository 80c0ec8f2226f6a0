"""Who is calling, and what the admin app roles allow (security.md D1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.domain.audit import Actor

ADMIN_ROLE = "SSPR.Admin"
READER_ROLE = "SSPR.Reader"
HELPDESK_ROLE = "SSPR.Helpdesk"


class Access(StrEnum):
    """What an endpoint needs: READ is granted by SSPR.Reader or SSPR.Admin, WRITE only by SSPR.Admin, HELPDESK
    (verifying callers and acting for them) only by SSPR.Helpdesk: administering the policy and helping a caller
    are separate duties (security.md D8)."""

    READ = "read"
    WRITE = "write"
    HELPDESK = "helpdesk"


ROLES_GRANTING = {Access.READ: frozenset({READER_ROLE, ADMIN_ROLE}), Access.WRITE: frozenset({ADMIN_ROLE}),
                  Access.HELPDESK: frozenset({HELPDESK_ROLE})}


@dataclass(frozen=True)
class Principal:
    """The caller proven by a validated Entra access token."""

    object_id: str
    tenant_id: str
    app_id: str  # the client application (azp / appid)
    roles: frozenset[str]
    scopes: frozenset[str]
    upn: str | None = None
    name: str | None = None

    @property
    def is_app(self) -> bool:
        """An app-only token (client credentials) carries no delegated scopes."""
        return not self.scopes

    def may(self, access: Access) -> bool:
        return bool(self.roles & ROLES_GRANTING[access])

    def actor(self) -> Actor:
        if self.is_app:
            return Actor(id=self.object_id, display=self.app_id, kind="app")
        return Actor(id=self.object_id, display=self.upn or self.name or "", kind="user")
