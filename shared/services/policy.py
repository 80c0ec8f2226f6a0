"""Reading and changing the SSPR policy: optimistic concurrency, an audit event per change, a cache for hot paths.

Audit choice: a change is audited after it is saved, with only the changed settings' old and new values. A save
that fails (stale ETag, storage down, invalid body) changed nothing, so it writes no event: the audit log records
changes, and a storage outage would fail the audit write too. If the save succeeds but the audit write then
fails, the change stands (the admin is told it was saved, which is true) and the change is logged at ERROR with
the same details, so the log carries it until an operator notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.adapters.audit_store import AuditStore
from shared.adapters.policy_store import PolicyStore
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService
from shared.domain.policy import Policy, changed_settings
from shared.errors import PreconditionRequired, SsprError

log = logging.getLogger("sspr.policy")

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VersionedPolicy:
    policy: Policy
    etag: str


class PolicyService:
    def __init__(self, store: PolicyStore, audit: AuditStore, clock: Clock = _utc_now) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def read_policy(self) -> VersionedPolicy:
        policy, etag = await self._store.get()
        return VersionedPolicy(policy, etag)

    async def update_policy(self, new: Policy, if_match: str, actor: Actor, client_ip: str | None) -> VersionedPolicy:
        """Replace the policy if `if_match` is the current ETag (412 otherwise); audit what changed."""
        if if_match.strip() == "*":
            # "*" would overwrite whatever another admin saved in the meantime: the point of If-Match is lost.
            raise PreconditionRequired("If-Match * refused for the policy")
        current = await self.read_policy()
        old_values, new_values = changed_settings(current.policy, new)
        if not new_values and if_match.strip() == current.etag:
            return current  # nothing to change: no new version, nothing to audit
        etag = await self._store.replace(new, if_match, updated_by=actor.id)
        # Diff against what the store replaced: equal to `current` unless a 412 would have been raised.
        event = AuditEvent(
            time=self._clock(),
            activity=Activity.POLICY_UPDATED,
            service=AuditService.SSPR_ADMIN,
            actor=actor,
            client_ip=client_ip,
            details={"version": _version(etag), "old": old_values, "new": new_values},
        )
        try:
            await self._audit.write(event)
        except SsprError:
            log.error("policy saved as version %s but its audit event was not written: %s", etag, event.details)
        return VersionedPolicy(new, etag)


def _version(etag: str) -> int | str:
    text = etag.strip('"')
    return int(text) if text.isdigit() else text


class PolicyCache:
    """The policy as hot paths (the sign-in hook) read it: from storage at most once per `ttl` per process.

    A change reaches every instance within `ttl`. When storage fails, the last policy read is served for up to
    `max_stale` (the sign-in hook must not fail a sign-in for our outage, security.md F7); after that the error
    surfaces and the caller degrades.
    """

    def __init__(self, store: PolicyStore, clock: Clock = _utc_now, ttl: timedelta = timedelta(seconds=30),
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
