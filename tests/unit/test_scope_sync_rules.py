"""The scope re-sync's rules: who a changed user is for each scope, and what writing that changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import ConfigurationError, load_settings
from shared.domain.enablement import DirectoryUser, EnabledUser, Run, Scope
from shared.domain.scope_sync import (
    Change,
    MemberChange,
    change_of,
    desired_row,
    needs_membership_check,
    nested_groups,
    nesting_changed,
)
from tests.unit.test_config import VALID

NOW = datetime(2026, 11, 25, tzinfo=UTC)
GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002001"
USER = "C0FFEE00-5E1F-4EA5-B0A7-000000001003"


def run(scope: Scope, include_guests: bool = False) -> Run:
    return Run(id="r", scope=scope, group_id=GROUP if scope is Scope.SELECTED else None, include_guests=include_guests,
               generation=7, requested_by="admin", created_at=NOW, updated_at=NOW)


def user(enabled: bool = True, user_type: str | None = "Member") -> DirectoryUser:
    return DirectoryUser(USER, enabled, user_type)


def test_all_takes_enabled_members_with_the_runs_row_shape() -> None:
    assert desired_row(user(), run(Scope.ALL), None) == EnabledUser(USER.lower(), "Member", Scope.ALL, None, 7)
    assert desired_row(user(user_type=None), run(Scope.ALL), None) == \
        EnabledUser(USER.lower(), "Member", Scope.ALL, None, 7)  # no userType: a member, as Entra treats it
    assert desired_row(user(enabled=False), run(Scope.ALL), None) is None


def test_guests_are_in_only_when_the_run_includes_them() -> None:
    assert desired_row(user(user_type="Guest"), run(Scope.ALL), None) is None
    assert desired_row(user(user_type="Guest"), run(Scope.ALL, include_guests=True), None) is not None
    assert desired_row(user(user_type="Guest"), run(Scope.SELECTED), True) is None


def test_selected_also_needs_transitive_membership_and_only_then_asks_graph() -> None:
    selected = run(Scope.SELECTED)
    assert desired_row(user(), selected, True) == EnabledUser(USER.lower(), "Member", Scope.SELECTED, GROUP, 7)
    assert desired_row(user(), selected, False) is None
    assert needs_membership_check(user(), selected)
    assert not needs_membership_check(user(enabled=False), selected)  # out anyway: no Graph call
    assert not needs_membership_check(user(user_type="Guest"), selected)
    assert not needs_membership_check(user(), run(Scope.ALL))


def test_none_takes_nobody() -> None:
    assert desired_row(user(), run(Scope.NONE), True) is None


def test_a_change_is_what_writing_the_desired_row_does_and_the_generation_alone_is_no_change() -> None:
    row = EnabledUser(USER.lower(), "Member", Scope.ALL, None, 7)
    assert change_of(None, row) is Change.ADDED
    assert change_of(row, None) is Change.REMOVED
    assert change_of(None, None) is Change.NONE
    assert change_of(EnabledUser(USER.lower(), "Member", Scope.ALL, None, 3), row) is Change.NONE
    assert change_of(EnabledUser(USER.lower(), "Guest", Scope.ALL, None, 7), row) is Change.UPDATED


@pytest.mark.parametrize("schedule", ["0 0 3 * *", "every 15 minutes", "0 0 3 * * * *"])
def test_a_maintenance_schedule_must_be_a_six_field_ncrontab(schedule: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({**VALID, "SSPR_SCOPE_SYNC_SCHEDULE": schedule})
    assert "SSPR_SCOPE_SYNC_SCHEDULE: must be a 6-field NCRONTAB" in str(error.value)
    assert load_settings(VALID).maintenance_schedule == "0 0 3 * * *"


def test_a_full_group_round_names_the_nested_groups_and_a_group_member_change_means_the_nesting_changed() -> None:
    nested = "c0ffee00-5e1f-4ea5-b0a7-000000002002"
    round_ = [MemberChange(GROUP, USER.lower(), is_group=False, removed=False),
              MemberChange(GROUP, nested.upper(), is_group=True, removed=False)]
    assert nested_groups(round_) == {nested}
    assert nesting_changed(round_)
    users_only = [MemberChange(GROUP, USER.lower(), is_group=False, removed=True)]
    assert nested_groups(users_only) == set() and not nesting_changed(users_only)
    assert nesting_changed([MemberChange(GROUP, nested, is_group=True, removed=True)])  # a nested group left
