"""The one place registration reads and changes a user's security info summary, and saves a verified method.

Every registration flow (codes, authenticator app, security questions, removal, reconfirmation) goes through
`SecurityInfoService`, so they share one policy source, one status rule and one way of saving:

- The policy is read as saved on every call (`CurrentPolicy`): registration is rare, and a method an admin just
  turned off must not stay registrable for the 30 s the sign-in hook's cache (PolicyCache) may lag.
- Whether the user is an administrator (security.md A12: two methods, never questions) is asked of the
  directory at every decision (`current`), never trusted from the summary row: a user given a directory role
  after registering is judged as an admin at once, and the row's flag, which the sign-in hook reads, is
  corrected when it differs.
- Every change is one ETag'd write of the summary (with its method rows), re-read and re-applied when another
  request wrote first (shared/adapters/etag_retry.py).

Audit (Entra's names): "User registered security info" when a method is saved, and "User registered all required
security info" when that completes the required set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from shared.adapters.etag_retry import retry_lost_races
from shared.adapters.policy_store import PolicyStore
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import Refusal
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary, registration_status
from shared.errors import DependencyUnavailable, GraphError, PreconditionFailed
from shared.services.registration.answers import StatusInfo
from shared.services.registration.ports import AdminDirectory, AuditWriter, ResetStanding, SecurityInfoRows
from shared.services.registration.user import User, registration_event

log = logging.getLogger("sspr.registration")
WORK_DOMAINS_TTL = timedelta(minutes=10)

class PolicySource(Protocol):
    async def get(self) -> Policy: ...


class EntraReader(Protocol):
    async def refresh(self, user_id: str) -> list[RegisteredMethod]: ...


@dataclass(frozen=True)
class CurrentPolicy:
    """The policy as saved, read on every call (registration's one policy source)."""

    store: PolicyStore

    async def get(self) -> Policy:
        policy, _ = await self.store.get()
        return policy


Change = Callable[[SecurityInfoSummary], SecurityInfoSummary]
# (summary, method rows) -> (new summary, methods to put, methods to delete)
Decision = Callable[[SecurityInfoSummary, list[RegisteredMethod]],
                    tuple[SecurityInfoSummary, list[RegisteredMethod], list[Method]]]


class SecurityInfoService:
    def __init__(self, store: SecurityInfoRows, graph: AdminDirectory, policy: PolicySource, audit: AuditWriter,
                 clock: Clock, standing: ResetStanding, entra: EntraReader | None = None) -> None:
        self._store = store
        self._graph = graph
        self._policy = policy
        self._audit = audit
        self._clock = clock
        self._domains: tuple[tuple[str, ...], datetime] | None = None
        self._entra = entra
        self._standing = standing

    async def standing(self, user_id: str, policy: Policy) -> Refusal | None:
        """What keeps the user from resetting here whatever they register (the reset's rules); None: nothing."""
        return await self._standing.standing(user_id, policy)

    async def entra_methods(self, user_id: str) -> list[RegisteredMethod]:
        """The methods the user registered in Entra, read now (policy entraMethods.count; else none)."""
        return await self._entra.refresh(user_id) if self._entra is not None else []

    async def policy(self) -> Policy:
        return await self._policy.get()

    async def work_domains(self) -> tuple[str, ...]:
        """The organisation's verified domains (an alternate email must be outside them), read at most every
        WORK_DOMAINS_TTL."""
        now = self._clock()
        if self._domains is None or self._domains[1] <= now:
            organization = await self._graph.organization()
            self._domains = (tuple(getattr(organization, "verified_domains", ()) or ()), now + WORK_DOMAINS_TTL)
        return self._domains[0]

    async def usage_location(self, user_id: str) -> str | None:
        """The user's usage location (a two-letter country), the phone country a form offers first; None when
        the directory has none or cannot say right now (the form then goes by the page's language)."""
        try:
            return await self._graph.usage_location(user_id)
        except (GraphError, DependencyUnavailable):
            return None

    async def is_admin(self, user_id: str) -> bool:
        """Whether the directory gives the user any directory role now (Graph, never the stored flag)."""
        return bool(await self._graph.directory_roles(user_id))

    async def methods(self, user_id: str) -> list[RegisteredMethod]:
        return await self._store.methods(user_id)

    async def current(self, user_id: str) -> SecurityInfoSummary:
        """The user's summary with `is_admin` as the directory says now; a stored row whose flag differs is
        corrected (so the sign-in hook judges the user by the right rule too). A user without a row gets none."""
        is_admin = await self.is_admin(user_id)

        async def attempt() -> SecurityInfoSummary:
            summary = await self._store.summary(user_id)
            if summary.etag is None or summary.is_admin == is_admin:
                return replace(summary, is_admin=is_admin)
            log.info("user %s %s a directory role since the summary was saved: flag corrected", user_id,
                     "gained" if is_admin else "lost")
            return await self._store.save(replace(summary, is_admin=is_admin))

        return await retry_lost_races(attempt, f"security info of {user_id}", lost=PreconditionFailed)

    async def change(self, user_id: str, change: Change, put: list[RegisteredMethod] | None = None,
                     delete: list[Method] | None = None) -> tuple[SecurityInfoSummary, SecurityInfoSummary]:
        """Apply `change` to the summary read (with the directory's admin flag) and save it with the method rows
        to `put` and `delete`, as one ETag'd write, re-applied when another request wrote first. `change` may
        raise to refuse. Returns (before, after) of the write that was stored."""
        is_admin = await self.is_admin(user_id)

        async def attempt() -> tuple[SecurityInfoSummary, SecurityInfoSummary]:
            before = replace(await self._store.summary(user_id), is_admin=is_admin)
            return before, await self._store.save(change(before), put=put, delete=delete)

        return await retry_lost_races(attempt, f"security info of {user_id}", lost=PreconditionFailed)

    async def change_methods(self, user_id: str, decide: Decision) -> tuple[SecurityInfoSummary, SecurityInfoSummary]:
        """As `change`, where what to put and delete is decided on the method rows read in the same attempt: the
        summary's ETag guards both, so two parallel changes of one method row never lose one another."""
        is_admin = await self.is_admin(user_id)

        async def attempt() -> tuple[SecurityInfoSummary, SecurityInfoSummary]:
            before = replace(await self._store.summary(user_id), is_admin=is_admin)
            after, put, delete = decide(before, await self._store.methods(user_id))
            return before, await self._store.save(after, put=put, delete=delete)

        return await retry_lost_races(attempt, f"security info of {user_id}", lost=PreconditionFailed)

    async def audit_saved(self, user: User, kind: Method, before: SecurityInfoSummary, saved: SecurityInfoSummary,
                          session: str | None, client_ip: str | None) -> StatusInfo:
        """Audit a saved method (and the required set, when this completed it); the user's status after."""
        policy = await self.policy()
        now = self._clock()
        status = registration_status(saved, policy, now)
        was_registered = registration_status(before, policy, now).registered
        await self._audit.write(registration_event(user, Activity.REGISTERED_INFO, kind, Outcome.SUCCESS,
                                                   "verified", session, client_ip, now))
        if status.registered and not was_registered:
            await self._audit.write(registration_event(user, Activity.REGISTERED_ALL_INFO, None, Outcome.SUCCESS,
                                                       "registered", session, client_ip, now))
        return self.status(saved, policy)

    async def save_method(self, user: User, method: RegisteredMethod, session: str | None,
                          client_ip: str | None) -> StatusInfo:
        """Save a verified method (replacing one of its kind) and audit it; the user's status after."""
        policy = await self.policy()
        before, saved = await self.change(user.id, lambda s: s.with_method(method.kind, method.registered_at),
                                          put=[method])
        now = self._clock()
        status = registration_status(saved, policy, now)
        was_registered = registration_status(before, policy, now).registered
        await self._audit.write(registration_event(user, Activity.REGISTERED_INFO, method.kind, Outcome.SUCCESS,
                                                   "verified", session, client_ip, now))
        if status.registered and not was_registered:
            await self._audit.write(registration_event(user, Activity.REGISTERED_ALL_INFO, None, Outcome.SUCCESS,
                                                       "registered", session, client_ip, now))
        return self.status(saved, policy)

    def status(self, summary: SecurityInfoSummary, policy: Policy) -> StatusInfo:
        status = registration_status(summary, policy, self._clock())
        return StatusInfo(registered=status.registered, requiredCount=status.required_count,
                          usableMethods=sorted(status.usable_methods), reconfirmDueAt=status.reconfirm_due_at,
                          reconfirmDue=status.reconfirm_due)
