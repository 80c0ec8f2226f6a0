"""Enablement rules without I/O: who is in scope, where a row lives, when a run blocks, how progress reads."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.enablement import (
    PARTITION_BUCKETS,
    DirectoryUser,
    EnabledIdIndex,
    EnablementMessage,
    Run,
    RunState,
    Scope,
    enabled_users,
    in_scope,
    is_enabled,
    partition_for,
    progress,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBER = DirectoryUser(str(uuid.uuid4()), True, "Member")


def run(**changes: object) -> Run:
    base = Run(id=str(uuid.uuid4()), scope=Scope.ALL, group_id=None, include_guests=False, generation=3,
               requested_by="admin", created_at=T0, updated_at=T0)
    return Run(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_only_enabled_members_are_in_scope_and_guests_only_when_included() -> None:
    guest = DirectoryUser(str(uuid.uuid4()), True, "Guest")
    disabled = DirectoryUser(str(uuid.uuid4()), False, "Member")
    legacy = DirectoryUser(str(uuid.uuid4()), True, None)
    assert in_scope(MEMBER, include_guests=False) and in_scope(legacy, include_guests=False)
    assert not in_scope(guest, include_guests=False) and in_scope(guest, include_guests=True)
    assert not in_scope(disabled, include_guests=True)


def test_a_user_id_that_is_not_a_guid_never_becomes_a_row() -> None:
    assert not in_scope(DirectoryUser("../evil#", True, "Member"), include_guests=True)


def test_rows_are_stamped_with_the_runs_generation_and_lower_cased_ids() -> None:
    upper = DirectoryUser(MEMBER.id.upper(), True, "Member")
    (row,) = enabled_users([upper], run(generation=7))
    assert row.user_id == MEMBER.id.lower() and row.generation == 7 and row.scope is Scope.ALL


def test_the_partition_of_a_user_is_stable_case_insensitive_and_spreads_evenly() -> None:
    assert partition_for(MEMBER.id) == partition_for(MEMBER.id.upper())
    counts = Counter(partition_for(str(uuid.uuid4())) for _ in range(16_000))
    assert len(counts) == PARTITION_BUCKETS
    assert min(counts.values()) > 800 and max(counts.values()) < 1200
    sequential = Counter(partition_for(f"c0ffee00-5e1f-4ea5-b0a7-{i:012d}") for i in range(1600))
    assert len(sequential) == PARTITION_BUCKETS  # emulator-style sequential ids spread too


def test_is_enabled_is_true_only_for_a_row_of_an_enabling_scope() -> None:
    assert is_enabled({"scope": "all"}) and is_enabled({"scope": "selected"})
    assert not is_enabled(None) and not is_enabled({"scope": "none"}) and not is_enabled({})


def test_a_running_run_blocks_a_new_request_until_it_stalls() -> None:
    running = run(state=RunState.RUNNING, updated_at=T0)
    assert running.blocks_new_request(T0 + timedelta(minutes=14))
    assert not running.blocks_new_request(T0 + timedelta(minutes=16))
    assert not run(state=RunState.COMPLETED).blocks_new_request(T0)
    assert not run(state=RunState.FAILED).blocks_new_request(T0)


def test_pages_complete_only_when_every_page_is_checkpointed_whatever_the_order() -> None:
    r = run(state=RunState.RUNNING, started_at=T0)
    r = r.after_page(999, 900, 16, last=True, page_index=2, total=2500, now=T0)  # last page first
    assert not r.pages_complete and r.page_count == 3
    r = r.after_page(999, 950, 16, last=False, page_index=1, total=None, now=T0)
    r = r.after_page(502, 480, 16, last=False, page_index=0, total=2500, now=T0)
    assert r.pages_complete and r.users_processed == 2500 and r.in_scope == 2330 and r.users_total == 2500


def test_the_last_sweep_completes_the_run_and_added_counts_only_new_users() -> None:
    r = run(state=RunState.RUNNING, started_at=T0, in_scope=100, users_processed=120, previous_rows=90, page_count=1,
            pages_done=1)
    for _ in range(PARTITION_BUCKETS - 1):
        r = r.after_sweep(1, 1, T0)
        assert r.state is RunState.RUNNING and r.added is None
    r = r.after_sweep(4, 1, T0 + timedelta(seconds=10))
    assert r.state is RunState.COMPLETED and r.removed == 19
    assert r.added == 100 - (90 - 19)  # 71 rows stayed, so 29 are new


def test_progress_shows_percent_rate_eta_and_phase_and_never_100_before_completion() -> None:
    r = run(state=RunState.RUNNING, started_at=T0, users_total=1000, users_processed=400)
    p = progress(r, T0 + timedelta(seconds=4))
    assert (p.percent, p.rate, p.eta_seconds, p.phase) == (36.0, 100.0, 6.0, "checking")  # checking is 90%
    done_pages = progress(run(state=RunState.RUNNING, started_at=T0, users_total=1000, users_processed=1000),
                          T0 + timedelta(seconds=1))
    assert done_pages.percent == 90.0
    sweeping = [progress(run(state=RunState.RUNNING, started_at=T0, users_total=1000, users_processed=1000,
                             pages_done=1, page_count=1, sweeps_done=n), T0 + timedelta(seconds=2))
                for n in (0, 8, 16)]
    assert [s.phase for s in sweeping] == ["finishing"] * 3
    assert [s.percent for s in sweeping] == [90.0, 95.0, 99.9]  # moving while it tidies up, 100 only when done
    unknown = progress(run(state=RunState.RUNNING, started_at=T0, users_processed=10), T0 + timedelta(seconds=1))
    assert unknown.percent is None and unknown.eta_seconds is None and unknown.rate == 10.0


def test_errors_are_kept_bounded() -> None:
    r = run()
    for i in range(50):
        r = r.with_error(f"note {i}")
    assert len(r.errors) == 20 and r.errors[-1] == "note 49"


@pytest.mark.parametrize("body", [
    '{"runId":"not-a-guid","step":"page","index":0}',
    '{"runId":"c0ffee00-5e1f-4ea5-b0a7-000000000001","step":"page","index":"0"}',
    '{"runId":"c0ffee00-5e1f-4ea5-b0a7-000000000001","step":"delete","index":0}',
    '{"runId":"c0ffee00-5e1f-4ea5-b0a7-000000000001","step":"page","index":0,"cursor":"http://evil"}',
    '{"runId":"c0ffee00-5e1f-4ea5-b0a7-000000000001","step":"page","index":-1}',
])
def test_a_shard_message_carries_ids_only_and_anything_else_is_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        EnablementMessage.model_validate_json(body)


def test_the_id_index_finds_every_row_id_in_any_case_and_nothing_else_even_when_rows_arrive_unsorted() -> None:
    ids = [str(uuid.UUID(int=random.Random(n).getrandbits(128))) for n in range(500)]
    ids += [f"c0ffee00-5e1f-4ea5-b0a7-{n:012x}" for n in range(0x1000, 0x1100)]  # equal upper halves
    index = EnabledIdIndex()
    for user_id in ids[::-1]:  # out of order: freeze sorts
        index.add(partition_for(user_id), user_id)
    index.add("00", "not-a-guid")
    index.freeze()
    assert len(index) == len(ids)
    assert all(i in index and i.upper() in index for i in ids)
    assert "c0ffee00-5e1f-4ea5-b0a7-000000000fff" not in index
    assert str(uuid.UUID(int=random.Random(999).getrandbits(128))) not in index
    assert "not-a-guid" not in index and None not in index
