"""Scope re-sync: keep the Enablement table current between enablement runs by following Graph's `/users/delta`.

A timer calls `sync()`. It works on the scope of the latest enablement run when that run has completed and the
policy still names its scope; otherwise it skips the tick (a run is queued or running, or failed and must be
redone, or a saved scope has not started its run yet). One round:

    first tick after a run   full enumeration of `/users/delta` up to its deltaLink (the "baseline"): the run has
                             just written these users, so nothing is applied; only the deltaLink is kept
    later ticks              the deltaLink returns only users changed since: each is decided alone with the
                             run's rules (shared/domain/scope_sync.py; Selected asks Graph `checkMemberGroups` for
                             that user, at most CHECK_CONCURRENCY at once) and its row created, replaced or
                             deleted under the ETag read, stamped with the run's generation, so a run that
                             starts meanwhile always wins its rows
    Graph 410                the delta token is gone (syncStateNotFound): a full enumeration again, this time
                             applied ("resync"; Selected reads the group's members once instead of asking per user)

The next link is stored only after its page is applied (a crash re-reads and re-applies that page; applying is
idempotent), and under the state row's ETag, so two overlapping ticks cannot both move it. A new completed run
(a scope change) starts the state over. Work per tick is bounded by MAX_USERS_PER_TICK; the rest is the next
tick's. A tick that changed rows writes one summary audit event.

A Selected scope also follows the group's membership, which real Graph's `/users/delta` does not report, through
`/groups/delta?$filter=id eq '<group>' or id eq '<nested>'..&$select=members` (state row ("delta", "groups"), same
phases, before the users' round in each tick):

    baseline                 full rounds of the group's members until the groups followed are closed under
                             nesting (a nested group found is added to the filter and the round starts over, up
                             to MAX_GROUPS_FOLLOWED ids; deeper ones are only seen by the next enablement run)
    changes                  a user added to or removed from any followed group is decided alone (the transitive
                             check above, so a user still in another nested group stays); a group added or removed
                             changes the nesting: the users' state is set to a full enumeration applied with the
                             group's transitive members read once ("resync", this same tick), and the groups
                             followed are read again from a new baseline

Known gap: changes between the run's own Graph read and the baseline's deltaLink (minutes: until the first tick)
are not seen by the baseline; they are picked up when the user changes again or by the next run. A user deleted
from the directory leaves its groups without a `/groups/delta` entry: `/users/delta` reports the deletion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from shared.adapters.audit_store import AuditStore
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.etag_retry import LostRace
from shared.adapters.policy_store import PolicyStore
from shared.adapters.sync_store import GROUPS_KEY, Phase, SyncState, SyncStore
from shared.domain.audit import SYSTEM, Activity, AuditEvent, AuditService
from shared.domain.enablement import DirectoryPage, DirectoryUser, Run
from shared.domain.policy import Scope
from shared.domain.runs import RunState
from shared.domain.scope_sync import (
    MAX_GROUPS_FOLLOWED,
    Change,
    DeltaPage,
    GroupDeltaPage,
    change_of,
    desired_row,
    needs_membership_check,
    nested_groups,
    nesting_changed,
)
from shared.errors import GraphError

log = logging.getLogger("sspr.scope_sync")

CHECK_CONCURRENCY = 8  # users decided at once (each may be one Graph call and one or two table calls)
MAX_USERS_PER_TICK = 20_000


class ScopeSyncDirectory(Protocol):
    """What the scope re-sync reads of the directory: the delta of users and groups, and single users."""

    async def users_delta_page(self, cursor: str | None) -> DeltaPage: ...

    async def check_member_groups(self, user_id: str, group_ids: list[str]) -> set[str]: ...

    async def enablement_page(self, group_id: str | None, cursor: str | None, with_count: bool) -> DirectoryPage: ...

    async def groups_delta_page(self, group_ids: list[str], cursor: str | None) -> GroupDeltaPage: ...

    async def directory_user(self, user_id: str) -> DirectoryUser | None: ...


class GroupSyncOvertaken(Exception):
    """Another tick moved a delta state on meanwhile: this one stops, that one carries on."""


@dataclass(frozen=True)
class SyncOutcome:
    """What one tick did: skipped (and why), or the pages read and rows changed."""

    skipped: str | None = None
    run_id: str | None = None
    pages: int = 0
    users: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    restarted: bool = False
    delta_link_reached: bool = False

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.removed


@dataclass(frozen=True)
class ScopeSyncService:
    state: SyncStore
    enablement: EnablementStore
    policy: PolicyStore
    directory: ScopeSyncDirectory
    audit: AuditStore
    clock: Callable[[], datetime]
    max_users: int = MAX_USERS_PER_TICK

    async def sync(self) -> SyncOutcome:
        run, reason = await self._current_run()
        if run is None:
            log.info("scope sync skipped: %s", reason)
            return SyncOutcome(skipped=reason)
        outcome = SyncOutcome(run_id=run.id)
        if run.scope is Scope.SELECTED:
            try:
                outcome = await self._sync_group(run, outcome)
            except GroupSyncOvertaken:
                return replace(outcome, skipped="another scope sync moved the delta state on meanwhile")
        stored = await self.state.get()
        state = stored if stored is not None and stored.run_id == run.id else \
            SyncState(run.id, None, Phase.BASELINE, etag=stored.etag if stored else None)
        members: set[str] | None = None  # the group's members, read once per tick for an applied full enumeration
        while outcome.users < self.max_users:
            try:
                page = await self.directory.users_delta_page(state.link)
            except GraphError as error:
                if error.status != 410 or outcome.restarted:
                    raise
                log.warning("scope sync: Graph lost the delta state (%s); enumerating again", error.code)
                state = replace(state, link=None, phase=Phase.RESYNC)
                outcome = replace(outcome, restarted=True)
                continue
            if state.phase is not Phase.BASELINE:
                if state.phase is Phase.RESYNC and run.scope is Scope.SELECTED and members is None:
                    members = await self._group_members(run)
                counts = await self._apply(page, run, members if state.phase is Phase.RESYNC else None)
                outcome = replace(outcome, added=outcome.added + counts[Change.ADDED],
                                  updated=outcome.updated + counts[Change.UPDATED],
                                  removed=outcome.removed + counts[Change.REMOVED])
            outcome = replace(outcome, pages=outcome.pages + 1, users=outcome.users + len(page.users) + len(page.removed))
            advanced, done = await self._advance(state, page, outcome)
            if advanced is None:
                return replace(outcome, skipped="another scope sync moved the delta state on meanwhile")
            state = advanced
            if done:
                outcome = replace(outcome, delta_link_reached=True)
                break
        if outcome.changed:
            await self._record(run, outcome)
        log.info("scope sync: %s", outcome)
        return outcome

    async def _sync_group(self, run: Run, outcome: SyncOutcome) -> SyncOutcome:
        """Follow the Selected group's membership (module docstring): one round of `/groups/delta` pages."""
        if run.group_id is None:  # a Selected run always names its group: nothing to follow otherwise
            return outcome
        group = run.group_id.lower()
        stored = await self.state.get(GROUPS_KEY)
        state = stored if stored is not None and stored.run_id == run.id else \
            SyncState(run.id, None, Phase.BASELINE, groups=(group,), etag=stored.etag if stored else None)
        found: set[str] = set()  # nested groups a baseline round lists
        while True:
            try:
                page = await self.directory.groups_delta_page(list(state.groups), state.link)
            except GraphError as error:
                if error.status != 410:
                    raise
                log.warning("scope sync: Graph lost the group delta state (%s); following the group again", error.code)
                page = None
            if page is None or (state.phase is Phase.CHANGES and nesting_changed(page.changes)):
                # The nesting changed (or the delta state is gone): every user is decided again this tick, from a
                # full enumeration with the transitive members; the groups followed are read again from scratch.
                await self._restart_users(run)
                state = await self._save_group_state(replace(state, link=None, phase=Phase.BASELINE,
                                                              groups=(group,)), state.etag)
                found = set()
                outcome = replace(outcome, restarted=True)
                continue
            if state.phase is Phase.BASELINE:
                found |= nested_groups(page.changes)
            else:
                users = {c.member_id for c in page.changes if not c.is_group}
                counts = await self._apply_members(sorted(users), run)
                outcome = replace(outcome, added=outcome.added + counts[Change.ADDED],
                                  updated=outcome.updated + counts[Change.UPDATED],
                                  removed=outcome.removed + counts[Change.REMOVED],
                                  users=outcome.users + len(users))
            if page.next_link is None and page.delta_link is None:
                raise GraphError(502, "delta_page_without_links")
            if page.next_link is None and state.phase is Phase.BASELINE:
                wider = tuple(dict.fromkeys([*state.groups, *sorted(found)]))[:MAX_GROUPS_FOLLOWED]
                if wider != state.groups:  # nested groups not followed yet: a full round over all of them
                    state = await self._save_group_state(replace(state, link=None, groups=wider), state.etag)
                    found = set()
                    continue
            done = page.next_link is None
            state = await self._save_group_state(
                replace(state, link=page.next_link or page.delta_link,
                        phase=Phase.CHANGES if done else state.phase,
                        synced_at=self.clock() if done else state.synced_at), state.etag)
            if done:
                return outcome

    async def _save_group_state(self, state: SyncState, etag: str | None) -> SyncState:
        try:
            return await self.state.save(state, etag, GROUPS_KEY)
        except LostRace:
            raise GroupSyncOvertaken from None

    async def _restart_users(self, run: Run) -> None:
        """Set the users' state to a full, applied enumeration (RESYNC) from scratch."""
        stored = await self.state.get()
        base = stored if stored is not None and stored.run_id == run.id else SyncState(run.id, None, Phase.RESYNC)
        try:
            await self.state.save(replace(base, link=None, phase=Phase.RESYNC), stored.etag if stored else None)
        except LostRace:
            raise GroupSyncOvertaken from None

    async def _apply_members(self, user_ids: list[str], run: Run) -> dict[Change, int]:
        """Decide each user whose direct membership changed in a followed group (the user read from Graph)."""
        slots = asyncio.Semaphore(CHECK_CONCURRENCY)
        counts = dict.fromkeys(Change, 0)

        async def one(user_id: str) -> None:
            async with slots:
                user = await self.directory.directory_user(user_id)
                counts[await self._apply_user(user, user_id, run, None)] += 1

        await asyncio.gather(*(one(u) for u in user_ids))
        return counts

    async def _current_run(self) -> tuple[Run | None, str]:
        lock = await self.enablement.read_lock()
        if lock.run_id is None:
            return None, "no enablement run yet"
        found = await self.enablement.get_run(lock.run_id)
        if found is None:
            return None, f"enablement run {lock.run_id} is being started"
        run = found[0]
        if run.state is not RunState.COMPLETED:
            return None, f"the latest enablement run {run.id} is {run.state.value}"
        if run.scope is Scope.NONE:
            return None, "SSPR is enabled for nobody"
        policy, _ = await self.policy.get()
        if (policy.scope, policy.group_id, policy.include_guests) != \
                (run.scope, run.group_id, run.include_guests):
            return None, "the policy's scope has no completed enablement run yet"
        return run, ""

    async def _advance(self, state: SyncState, page: DeltaPage, outcome: SyncOutcome) -> tuple[SyncState | None, bool]:
        """Store the link after `page` (its changes are applied); None when another tick moved the state on."""
        done = page.next_link is None
        if page.next_link is None and page.delta_link is None:
            raise GraphError(502, "delta_page_without_links")
        now = self.clock()
        new = replace(state, link=page.next_link or page.delta_link,
                      phase=Phase.CHANGES if done else state.phase, synced_at=now if done else state.synced_at)
        if outcome.changed:
            new = replace(new, changed_at=now, added=outcome.added, updated=outcome.updated, removed=outcome.removed)
        try:
            return await self.state.save(new, state.etag), done
        except LostRace:
            return None, done

    async def _apply(self, page: DeltaPage, run: Run, members: set[str] | None) -> dict[Change, int]:
        """Decide and write every user of the page; counts of what changed. `members`: the group's member ids
        when known (a full enumeration), else Graph is asked per user."""
        slots = asyncio.Semaphore(CHECK_CONCURRENCY)
        counts = dict.fromkeys(Change, 0)

        async def one(user: DirectoryUser | None, user_id: str) -> None:
            async with slots:
                change = await self._apply_user(user, user_id, run, members)
                counts[change] += 1

        await asyncio.gather(*(one(u, u.id) for u in page.users), *(one(None, uid) for uid in page.removed))
        return counts

    async def _apply_user(self, user: DirectoryUser | None, user_id: str, run: Run, members: set[str] | None) -> Change:
        stored = await self.enablement.user_row(user_id)
        current, etag = stored if stored is not None else (None, None)
        desired = None
        if user is not None:
            is_member: bool | None = None
            if needs_membership_check(user, run) and run.group_id is not None:
                if members is not None:
                    is_member = user.id.lower() in members
                else:
                    is_member = run.group_id in await self.directory.check_member_groups(user.id, [run.group_id])
            desired = desired_row(user, run, is_member)
        change = change_of(current, desired)
        if change is Change.NONE:
            return change
        if current is not None and current.generation > run.generation:
            return Change.NONE  # a newer run wrote this row: it is that run's to decide
        if desired is None:  # removed: so there is a row, read with its ETag
            written = etag is not None and await self.enablement.delete_user_if_unchanged(user_id, etag)
        else:
            written = await self.enablement.put_user_if_unchanged(desired, etag)
        return change if written else Change.NONE  # lost to a writer that read later than we did

    async def _group_members(self, run: Run) -> set[str]:
        members: set[str] = set()
        cursor: str | None = None
        while True:
            page = await self.directory.enablement_page(run.group_id, cursor, with_count=False)
            members.update(u.id.lower() for u in page.users)
            if page.next_link is None:
                return members
            cursor = page.next_link

    async def _record(self, run: Run, outcome: SyncOutcome) -> None:
        await self.audit.write(AuditEvent(
            time=self.clock(), activity=Activity.SCOPE_SYNCED, service=AuditService.SSPR_ADMIN, actor=SYSTEM,
            flow_id=run.id,
            details={"scope": run.scope.value, "groupId": run.group_id, "added": outcome.added,
                     "updated": outcome.updated, "removed": outcome.removed, "usersExamined": outcome.users,
                     "restarted": outcome.restarted},
        ))
