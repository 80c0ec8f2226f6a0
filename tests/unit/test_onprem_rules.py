"""The service's reading of the on-premises agents: who is live, whom an agent serves, what a verdict means to
the person waiting, and the job ids that lead a verdict back to its reset flow (shared/domain/onprem.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import onprem
from shared.domain.onprem import Coverage, Meaning, OnPremAccount
from shared.domain.onprem_jobs import Heartbeat, JobKind, Verdict

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
STAFF = "OU=Staff,DC=corp,DC=example"
ALICE = OnPremAccount("S-1-5-21-1-2-3-1104", f"CN=Alice Smith,OU=Finance,{STAFF}")
OUTSIDER = OnPremAccount("S-1-5-21-1-2-3-1105", "CN=Olle,OU=Contractors,DC=corp,DC=example")


def beat(ago: float = 10, dcs: tuple[str, ...] = ("dc1:636",), ous: tuple[str, ...] = (STAFF,)) -> Heartbeat:
    return Heartbeat(agent_id="a1", version="1", at=NOW - timedelta(seconds=ago), dcs_reached=list(dcs),
                     dcs_configured=1, allowed_ous=list(ous))


def test_an_agent_is_live_while_it_beats_and_reaches_a_domain_controller() -> None:
    assert onprem.is_live(beat(ago=89), NOW)
    assert not onprem.is_live(beat(ago=91), NOW)  # three missed beats of 30 s
    assert not onprem.is_live(beat(dcs=()), NOW)  # beating, but no DC answers it


@pytest.mark.parametrize(("account", "served"), [
    (ALICE, True),  # in a sub-OU of Staff
    (OnPremAccount("S-1-5-21-1-2-3-7", "cn=BOB,ou=staff,dc=CORP,dc=example"), True),  # DNs ignore case
    (OUTSIDER, False),
    (OnPremAccount("S-1-5-21-1-2-3-8", STAFF), False),  # the OU itself is not an account under it
    (OnPremAccount("S-1-5-21-1-2-3-9", "CN=Eve,OU=NotStaff,DC=corp,DC=example"), False),  # a suffix, not a subtree
    (OnPremAccount("S-1-5-21-1-2-3-10", ""), False),
])
def test_an_agent_serves_the_accounts_in_the_subtrees_of_its_ous(account: OnPremAccount, served: bool) -> None:
    assert onprem.serves(beat(), account) is served


def test_an_agent_that_does_not_say_its_ous_serves_everyone_and_refuses_what_it_must_itself() -> None:
    assert onprem.serves(beat(ous=()), OUTSIDER)


@pytest.mark.parametrize(("writeback", "beats", "account", "expected"), [
    (False, [beat()], ALICE, Coverage.WRITEBACK_OFF),
    (True, [beat()], None, Coverage.NO_SID),
    (True, [], ALICE, Coverage.NO_LIVE_AGENT),
    (True, [beat(ago=600)], ALICE, Coverage.NO_LIVE_AGENT),
    (True, [beat()], OUTSIDER, Coverage.OUTSIDE_AGENT_OUS),
    (True, [beat(ago=600, ous=()), beat()], OUTSIDER, Coverage.OUTSIDE_AGENT_OUS),  # the catch-all one is silent
    (True, [beat(ous=("OU=Contractors,DC=corp,DC=example",)), beat()], OUTSIDER, Coverage.SERVED),
    (True, [beat()], ALICE, Coverage.SERVED),
])
def test_coverage_says_why_a_synced_user_cannot_reset_here(writeback: bool, beats: list[Heartbeat],
                                                          account: OnPremAccount | None, expected: Coverage) -> None:
    assert onprem.coverage(writeback, beats, account, NOW) is expected


@pytest.mark.parametrize(("verdict", "expected"), [
    (Verdict.APPLIED, Meaning.DONE),
    (Verdict.REFUSED_COMPLEXITY, Meaning.REFUSED), (Verdict.REFUSED_HISTORY, Meaning.REFUSED),
    (Verdict.REFUSED_MINIMUM_AGE, Meaning.REFUSED), (Verdict.REFUSED_POLICY, Meaning.REFUSED),
    (Verdict.DISABLED, Meaning.NOT_HERE), (Verdict.NOT_IN_SCOPE, Meaning.NOT_HERE), (Verdict.NOT_FOUND, Meaning.NOT_HERE),
    (Verdict.EXPIRED, Meaning.NOTHING_CHANGED), (Verdict.CANCELLED, Meaning.NOTHING_CHANGED),
    (Verdict.UNREADABLE, Meaning.NOTHING_CHANGED), (Verdict.FAILED, Meaning.NOTHING_CHANGED),
])
def test_every_verdict_means_one_thing_to_the_person_waiting(verdict: Verdict, expected: Meaning) -> None:
    assert onprem.meaning(verdict) is expected


def test_a_flow_job_id_leads_back_to_its_flow_and_each_try_has_its_own() -> None:
    flow = str(uuid.uuid4())
    ids = {onprem.flow_job_id(flow, kind, n) for kind in (JobKind.RESET, JobKind.UNLOCK) for n in (1, 2, 12)}
    assert len(ids) == 6
    assert all(onprem.flow_of_job(i) == flow and 8 <= len(i) <= 64 for i in ids)
    for stranger in (str(uuid.uuid4()), "r-" + flow, "x1-" + flow, "r1-short", "r1x-" + flow, ""):
        assert onprem.flow_of_job(stranger) is None


def test_a_claimed_job_is_given_up_only_well_after_its_expiry() -> None:
    expires = NOW
    assert not onprem.gave_up(expires, NOW + onprem.RESULT_GRACE - timedelta(seconds=1))
    assert onprem.gave_up(expires, NOW + onprem.RESULT_GRACE)
