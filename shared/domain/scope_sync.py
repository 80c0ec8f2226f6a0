"""The scope re-sync's rules: which changed directory users belong in the enablement scope, and what to write.

Between enablement runs the directory moves: users are created, disabled, deleted, join or leave the scope's
group. The re-sync follows Graph's `/users/delta` and decides for each changed user alone, with the rules an
enablement run applies to everyone (shared/domain/enablement.py), so a synced table equals a fresh run's:

    All       enabled users, guests only when the run includes them
    Selected  the same, and a transitive member of the run's group (asked of Graph per changed user)
    removed   a user deleted from the directory (`@removed`) is out, whatever the scope

Real Graph's `/users/delta` does not report group membership, so a Selected scope also follows
`/groups/delta?$filter=id eq '<group>' or id eq '<nested>'..&$select=members` over the group and every group nested
in it (their direct members arrive as `members@delta`, removals with `@removed`):

    a user added to or removed from any of them   decided alone, as above (the transitive check, so a user
                                                  removed from one group but still in another nested one stays)
    a group added to or removed from any of them  the nesting changed: every user is decided again from a full
                                                  enumeration with the group's transitive members read once, and
                                                  the groups followed are re-read
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from shared.domain.enablement import DirectoryUser, EnabledUser, Run, in_scope
from shared.domain.policy import Scope


@dataclass(frozen=True)
class DeltaPage:
    """One page of `/users/delta`: changed users, removed user ids, and either the next page or the delta link."""

    users: list[DirectoryUser]
    removed: list[str]
    next_link: str | None
    delta_link: str | None


MAX_GROUPS_FOLLOWED = 50  # ids one /groups/delta $filter may name


@dataclass(frozen=True)
class MemberChange:
    """One entry of a group's `members@delta`: a direct member (user or group) added, or removed."""

    group_id: str
    member_id: str
    is_group: bool
    removed: bool


@dataclass(frozen=True)
class GroupDeltaPage:
    """One page of `/groups/delta` for the groups followed: membership entries and the next page or delta link."""

    changes: list[MemberChange]
    next_link: str | None
    delta_link: str | None


def nested_groups(changes: list[MemberChange]) -> set[str]:
    """The groups that are members of the groups followed, as a full round lists them."""
    return {c.member_id.lower() for c in changes if c.is_group and not c.removed}


def nesting_changed(changes: list[MemberChange]) -> bool:
    """A group joined or left a followed group: the transitive membership must be read again in full."""
    return any(c.is_group for c in changes)


class Change(StrEnum):
    ADDED = "added"
    UPDATED = "updated"  # in scope before and after, but the row changes (e.g. became a guest)
    REMOVED = "removed"
    NONE = "none"


def needs_membership_check(user: DirectoryUser, run: Run) -> bool:
    """Ask Graph about group membership only for a Selected scope and a user the other rules let in."""
    return run.scope is Scope.SELECTED and in_scope(user, run.include_guests)


def desired_row(user: DirectoryUser, run: Run, is_member: bool | None) -> EnabledUser | None:
    """The row the user should have under the run's scope (None: none). `is_member` is the group check's answer,
    needed for Selected only."""
    if run.scope is Scope.NONE or not in_scope(user, run.include_guests):
        return None
    if run.scope is Scope.SELECTED and not is_member:
        return None
    return EnabledUser(user.id.lower(), user.user_type or "Member", run.scope, run.group_id, run.generation,
                       user.display_name, user.user_principal_name)


def change_of(current: EnabledUser | None, desired: EnabledUser | None) -> Change:
    """What applying `desired` over `current` does. The generation is the run's stamp, not a fact of the user: a
    row that differs only there is left as it is."""
    if current is None:
        return Change.NONE if desired is None else Change.ADDED
    if desired is None:
        return Change.REMOVED
    return Change.NONE if replace(current, generation=desired.generation) == desired else Change.UPDATED
