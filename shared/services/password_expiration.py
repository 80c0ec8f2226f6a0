"""Password expiration: read and change each verified domain's policy, and one user's "never expires", via Graph.

Entra has no organisation-wide expiration object in Graph: the admin center's setting is written to every
verified domain (`PATCH /domains/{id}`). This service takes a list of domains, so "org-wide" is every domain
that GET returns, and a tenant that wants different rules per domain can have them. Each change is audited
with the old and new values; a change that fails half-way is audited as a failure naming what was applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shared.adapters.audit_store import AuditStore
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService, Outcome
from shared.domain.password_expiration import (
    DomainExpiration,
    VerifiedDomain,
    change_errors,
    never_expires,
    with_never_expires,
)
from shared.errors import FieldError, GraphError, InvalidRequest, NotFound, SsprError

if TYPE_CHECKING:
    from shared.adapters.graph import GraphGateway  # the Graph SDK: the composition root builds it on first use


@dataclass(frozen=True)
class UserPasswordExpiry:
    user_id: str
    never_expires: bool
    password_policies: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.user_id, "neverExpires": self.never_expires, "passwordPolicies": self.password_policies}


def domains_document(domains: Sequence[VerifiedDomain]) -> dict[str, object]:
    return {
        "domains": [
            {"id": d.name, "isDefault": d.is_default, "authenticationType": d.authentication_type,
             **d.expiration.as_dict()}
            for d in domains
        ]
    }


def _user_object_id(user_id: str) -> str:
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        raise InvalidRequest([FieldError.of("id", "id.user", "must be the user's object id (a GUID)")]) from None


@dataclass(frozen=True)
class PasswordExpirationService:
    graph: GraphGateway
    audit: AuditStore
    clock: Callable[[], datetime]

    async def organisation_policy(self) -> list[VerifiedDomain]:
        return await self.graph.verified_domains()

    async def update_organisation_policy(
        self, changes: Sequence[DomainExpiration], actor: Actor, client_ip: str | None
    ) -> list[VerifiedDomain]:
        """Validate every change against the tenant's verified domains, then PATCH the ones that differ."""
        current = {d.name.lower(): d for d in await self.graph.verified_domains()}
        errors = change_errors(changes, current)
        if errors:
            raise InvalidRequest(errors)
        applied: list[dict[str, object]] = []
        try:
            for change in changes:
                domain = current[change.domain.lower()]
                target = DomainExpiration(domain.name, change.validity_days, change.notification_days)
                if target == domain.expiration:
                    continue
                await self.graph.set_domain_expiration(target)
                applied.append({"id": domain.name, "old": domain.expiration.as_dict(), "new": target.as_dict()})
        except SsprError as error:
            await self._record(Activity.PASSWORD_EXPIRATION_UPDATED, actor, client_ip, {"domains": applied},
                               outcome=Outcome.FAILURE, reason=type(error).__name__)
            raise
        if applied:
            await self._record(Activity.PASSWORD_EXPIRATION_UPDATED, actor, client_ip, {"domains": applied})
        return await self.graph.verified_domains()

    async def set_never_expires(
        self, user_id: str, enabled: bool, actor: Actor, client_ip: str | None
    ) -> UserPasswordExpiry:
        """Turn DisablePasswordExpiration on or off for one user, keeping any other passwordPolicies values."""
        object_id = _user_object_id(user_id)
        try:
            old = await self.graph.user_password_policies(object_id)
        except GraphError as error:
            if error.status == 404:
                raise NotFound(f"user {object_id} not found") from None
            raise
        new = with_never_expires(old, enabled)
        if never_expires(old) != enabled:
            await self.graph.set_user_password_policies(object_id, new)
            await self._record(
                Activity.PASSWORD_NEVER_EXPIRES_UPDATED, actor, client_ip,
                {"old": {"neverExpires": never_expires(old), "passwordPolicies": old or "None"},
                 "new": {"neverExpires": enabled, "passwordPolicies": new}},
                target_user_id=object_id,
            )
        return UserPasswordExpiry(object_id, enabled, new)

    async def _record(self, activity: Activity, actor: Actor, client_ip: str | None, details: dict[str, object],
                      outcome: Outcome = Outcome.SUCCESS, reason: str | None = None,
                      target_user_id: str | None = None) -> None:
        await self.audit.write(AuditEvent(
            time=self.clock(), activity=activity, service=AuditService.SSPR_ADMIN, actor=actor, outcome=outcome,
            target_user_id=target_user_id, client_ip=client_ip, reason=reason, details=details,
        ))
