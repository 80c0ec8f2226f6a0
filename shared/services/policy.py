"""Reading and changing the SSPR policy: optimistic concurrency, an audit event per change, a cache for hot paths.

Audit choice: a change is audited after it is saved, with only the changed settings' old and new values. A save
that fails (stale ETag, storage down, invalid body) changed nothing, so it writes no event: the audit log records
changes, and a storage outage would fail the audit write too. If the save succeeds but the audit write then
fails, the change stands (the admin is told it was saved, which is true) and the change is logged at ERROR with
the same details, so the log carries it until an operator notices.

The policy is the one source of truth of who SSPR is enabled for (`scope`, `groupId`, `includeGuests`), as in
Entra's portal where saving "SSPR enabled: None/Selected/All" applies it. So a save that changes any of the three
starts an enablement run, and an enablement request (`apply_scope`) is a policy change too: it writes scope and
group into the policy (read-modify-write under the policy's ETag, retried when someone saved meanwhile; audited
like any policy change) and runs with the policy's `includeGuests`. Order, so nothing is half applied: the
request is validated and the run slot reserved first (400 for a missing group, 409 while a run is going: nothing
saved), then the policy is saved (a failed save gives the slot back), then the run is started. Only a storage
failure after the save can leave a saved policy without its run; the error reaches the admin, the reservation
expires after a minute, and saving or requesting again starts it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.audit_store import AuditStore
from shared.adapters.policy_store import PolicyStore, version_of
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService
from shared.domain.clock import Clock, utc_now
from shared.domain.enablement import Run
from shared.domain.enablement import Scope as EnablementScope
from shared.domain.policy import Policy, Scope
from shared.domain.policy_changes import changed_settings
from shared.errors import (
    Conflict,
    FieldError,
    InvalidRequest,
    PreconditionFailed,
    PreconditionRequired,
    SsprError,
)
from shared.services.enablement import EnablementService, Reservation

log = logging.getLogger("sspr.policy")

SCOPE_SETTINGS = ("scope", "groupId", "includeGuests")  # a change of any of these re-materialises the scope
SAVE_ATTEMPTS = 10  # read-modify-write of an enablement request against concurrent policy saves


@dataclass(frozen=True)
class VersionedPolicy:
    policy: Policy
    etag: str
    run: Run | None = None  # the enablement run this save started, if it changed the scope


def scope_changed(old: Policy, new: Policy) -> bool:
    return (old.scope, old.group_id, old.include_guests) != (new.scope, new.group_id, new.include_guests)


WRITEBACK_NEEDS_KEY = ("needs the on-premises agent's public key in the app setting SSPR_ONPREM_AGENT_PUBLIC_KEY:"
                       " install the agent first (docs/onprem.md)")


@dataclass(frozen=True)
class PolicyService:
    store: PolicyStore
    audit: AuditStore
    clock: Clock = utc_now
    enablement: EnablementService | None = None  # None: saving the scope starts no run (tools, tests of the store)
    cache: PolicyCache | None = None  # this process's hot-path cache: forgotten after every save, so it applies at once
    agent_key_configured: bool = True  # SSPR_ONPREM_AGENT_PUBLIC_KEY is set: on-premises writeback can seal passwords

    async def read_policy(self) -> VersionedPolicy:
        policy, etag = await self.store.get()
        return VersionedPolicy(policy, etag)

    async def update_policy(self, new: Policy, if_match: str, actor: Actor, client_ip: str | None) -> VersionedPolicy:
        """Replace the policy if `if_match` is the current ETag (412 otherwise); audit what changed; start an
        enablement run when scope, groupId or includeGuests changed (400 / 409 decided before saving)."""
        if if_match.strip() == "*":
            # "*" would overwrite whatever another admin saved in the meantime: the point of If-Match is lost.
            raise PreconditionRequired("If-Match * refused for the policy")
        if new.on_premises.writeback and not self.agent_key_configured:
            raise InvalidRequest([FieldError.of("onPremises.writeback", "onPremises.noAgentKey", WRITEBACK_NEEDS_KEY)])
        current = await self.read_policy()
        old_values, new_values = changed_settings(current.policy, new)
        if not new_values and if_match.strip() == current.etag:
            self._invalidate()  # another process may have saved this version after our cache read
            return current  # nothing to change: no new version, nothing to audit
        expected = version_of(if_match)
        if expected is None or expected != version_of(current.etag):
            # Refused before a run slot is reserved: a stale edit must not block or start anything.
            raise PreconditionFailed(f"If-Match {if_match[:40]!r} is not the current policy version {current.etag}")
        starts_run = self.enablement is not None and scope_changed(current.policy, new)
        reservation = await self._reserve(new) if starts_run else None
        try:
            etag = await self.store.replace(new, if_match, updated_by=actor.id)
        except BaseException:
            if reservation is not None:
                await self._enablement_service().release(reservation)
            raise
        self._invalidate()
        # Diff against what the store replaced: equal to `current` unless a 412 would have been raised.
        await self._record(etag, old_values, new_values, actor, client_ip, reservation)
        run = None
        if reservation is not None:
            run = await self._enablement_service().start(reservation, new.include_guests, actor, client_ip)
        return VersionedPolicy(new, etag, run)

    async def apply_scope(self, scope: Scope, group_id: str | None, actor: Actor,
                          client_ip: str | None) -> VersionedPolicy:
        """An enablement request: write scope and group into the policy and start a run for it (guests: as the
        policy says). Retries the save when another admin saved meanwhile; 409 if the policy kept changing."""
        enablement = self._enablement_service()
        reservation = await enablement.reserve(EnablementScope(scope.value), group_id)
        try:
            saved = await self._save_scope(scope, group_id, actor, client_ip, reservation)
        except BaseException:
            await enablement.release(reservation)
            raise
        self._invalidate()
        run = await enablement.start(reservation, saved.policy.include_guests, actor, client_ip)
        return VersionedPolicy(saved.policy, saved.etag, run)

    async def _save_scope(self, scope: Scope, group_id: str | None, actor: Actor, client_ip: str | None,
                          reservation: Reservation) -> VersionedPolicy:
        for _ in range(SAVE_ATTEMPTS):
            current = await self.read_policy()
            new = Policy.model_validate({**current.policy.as_document(), "scope": scope.value, "groupId": group_id})
            old_values, new_values = changed_settings(current.policy, new)
            if not new_values:
                return current  # the policy says so already: the run re-applies it
            try:
                etag = await self.store.replace(new, current.etag, updated_by=actor.id)
            except PreconditionFailed:
                continue  # another admin saved meanwhile: apply the scope to their version
            await self._record(etag, old_values, new_values, actor, client_ip, reservation)
            return VersionedPolicy(new, etag)
        raise Conflict("the policy kept changing while the enablement request was saved",
                       detail="The policy kept changing while this request tried to save it; try again.")

    def _invalidate(self) -> None:
        """This process applies a saved policy at once; other processes within their cache's TTL."""
        if self.cache is not None:
            self.cache.invalidate()

    async def _reserve(self, new: Policy) -> Reservation:
        return await self._enablement_service().reserve(EnablementScope(new.scope.value), new.group_id)

    def _enablement_service(self) -> EnablementService:
        if self.enablement is None:
            raise RuntimeError("this PolicyService was built without enablement; scope changes cannot be applied")
        return self.enablement

    async def _record(self, etag: str, old_values: dict[str, object], new_values: dict[str, object], actor: Actor,
                      client_ip: str | None, reservation: Reservation | None) -> None:
        details: dict[str, object] = {"version": _version(etag), "old": old_values, "new": new_values}
        if reservation is not None:
            details["enablementRunId"] = reservation.run_id
        event = AuditEvent(
            time=self.clock(),
            activity=Activity.POLICY_UPDATED,
            service=AuditService.SSPR_ADMIN,
            actor=actor,
            client_ip=client_ip,
            details=details,
        )
        try:
            await self.audit.write(event)
        except SsprError:
            log.error("policy saved as version %s but its audit event was not written: %s", etag, event.details)


def _version(etag: str) -> int | str:
    text = etag.strip('"')
    return int(text) if text.isdigit() else text


class PolicyCache:
    """The policy as hot paths (the sign-in hook) read it: from storage at most once per `ttl` per process.

    A change reaches every instance within `ttl`. When storage fails, the last policy read is served for up to
    `max_stale` (the sign-in hook must not fail a sign-in for our outage, security.md F7); after that the error
    surfaces and the caller degrades.
    """

    def __init__(self, store: PolicyStore, clock: Clock = utc_now, ttl: timedelta = timedelta(seconds=30),
                 max_stale: timedelta = timedelta(minutes=5)) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._max_stale = max_stale
        self._policy: Policy | None = None
        self._read_at: datetime | None = None
        self._expired = False
        self._lock = asyncio.Lock()

    async def get(self) -> Policy:
        if self._policy is not None and self._fresh():
            return self._policy
        async with self._lock:  # one storage read refreshes for every waiting caller
            if self._policy is not None and self._fresh():
                return self._policy
            try:
                policy, _ = await self._store.get()
            except SsprError:
                if self._policy is not None and self._read_at is not None \
                        and self._clock() - self._read_at <= self._max_stale:
                    log.warning("policy read failed; serving the policy read at %s", self._read_at.isoformat())
                    return self._policy
                raise
            self._policy, self._read_at, self._expired = policy, self._clock(), False
            return policy

    def invalidate(self) -> None:
        """Forget the cached policy, so the next `get` reads storage (e.g. right after this process saved one)."""
        self._expired = True

    def _fresh(self) -> bool:
        return not self._expired and self._read_at is not None and self._clock() - self._read_at < self._ttl
