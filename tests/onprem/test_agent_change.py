"""The agent's "change" job against a real Samba AD DC: a user's own change (unicodePwd delete current + add new,
both sealed), so AD checks the current password, history and minimum age; and it works where a sign-in does not,
on a password that must be changed at the next logon (security.md H2, H4, H5)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import pytest

from shared.domain.onprem_jobs import JobKind, Verdict
from tests.onprem.conftest import Domain, Site
from tests.onprem.test_agent_takeover import _dead_claim

NEW = "Ch4nged!Passw0rd-2026"


def test_a_change_with_the_current_password_sets_the_new_one_and_logs_neither(
        site: Site, domain: Domain, caplog: pytest.LogCaptureFixture) -> None:
    dn, sid, current = domain.make_user()
    job = site.job(JobKind.CHANGE, sid, NEW, current=current)
    site.send(job)
    with caplog.at_level(logging.DEBUG):
        [result] = site.poll_once(workers=2)
    assert result.job_id == job.job_id and result.verdict is Verdict.APPLIED, result
    assert domain.binds(dn, NEW) and not domain.binds(dn, current)
    assert result.state is not None and not result.state.must_change and result.state.password_expires_at
    assert job.password is not None and job.old_password is not None
    for secret in (NEW, current, job.password.box, job.old_password.box):
        assert secret not in caplog.text


def test_a_wrong_current_password_changes_nothing_and_is_told_apart(site: Site, domain: Domain) -> None:
    dn, sid, current = domain.make_user()
    site.send(site.job(JobKind.CHANGE, sid, NEW, current="Wr0ng!Current-1"))
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.REFUSED_CURRENT_PASSWORD, result
    assert result.rule == "the current password is not the account's password"
    assert domain.binds(dn, current) and not domain.binds(dn, NEW)


def test_a_password_from_the_history_is_refused_by_ad_on_a_change(site: Site, domain: Domain) -> None:
    """Samba applies history to a user's change (not to an admin's reset: test_agent_against_samba.py)."""
    dn, sid, first = domain.make_user()
    site.send(site.job(JobKind.CHANGE, sid, NEW, current=first))
    assert [r.verdict for r in site.poll_once(workers=2)] == [Verdict.APPLIED]
    site.send(site.job(JobKind.CHANGE, sid, first, current=NEW))
    [again] = site.poll_once(workers=2)
    assert again.verdict is Verdict.REFUSED_HISTORY and "history" in again.rule and first not in again.rule
    assert domain.binds(dn, NEW) and not domain.binds(dn, first)


def test_a_weak_new_password_is_refused_with_ads_rule(site: Site, domain: Domain) -> None:
    dn, sid, current = domain.make_user()
    site.send(site.job(JobKind.CHANGE, sid, "abc", current=current))
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.REFUSED_COMPLEXITY and "too short" in result.rule
    assert domain.binds(dn, current)


def test_the_minimum_age_refuses_a_second_change_too_soon(site: Site, domain: Domain) -> None:
    """A fine-grained password policy (PSO) of one day's minimum age on this user alone: the domain's own stays 0."""
    dn, sid, current = domain.make_user()
    pso = "pso" + uuid.uuid4().hex[:8]
    domain.dc.samba_tool("domain", "passwordsettings", "pso", "create", pso, "1", "--min-pwd-age=1")
    domain.dc.samba_tool("domain", "passwordsettings", "pso", "apply", pso, dn.split(",")[0][3:])
    site.send(site.job(JobKind.CHANGE, sid, NEW, current=current))
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.REFUSED_MINIMUM_AGE, result
    assert domain.binds(dn, current) and not domain.binds(dn, NEW)


def test_a_password_that_must_be_changed_at_next_logon_is_changed_with_the_current_one(
        site: Site, domain: Domain) -> None:
    dn, sid, current = domain.make_user()
    admin = domain.connect()
    admin.modify(dn, {"pwdLastSet": [("MODIFY_REPLACE", ["0"])]})
    assert admin.result["result"] == 0
    assert not domain.binds(dn, current)  # the sign-in is refused: the password must be changed first
    site.send(site.job(JobKind.READ_STATE, sid))
    [state] = site.poll_once(workers=2)
    assert state.state is not None and state.state.must_change and state.state.password_expires_at is None
    site.send(site.job(JobKind.CHANGE, sid, NEW, current=current))
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.APPLIED and result.state is not None and not result.state.must_change
    assert domain.binds(dn, NEW)
    assert domain.attribute(dn, "pwdLastSet") != 0


def test_a_change_whose_agent_died_after_applying_it_is_not_applied_again(site: Site, domain: Domain) -> None:
    dn, sid, current = domain.make_user()
    time.sleep(1.1)
    job = site.job(JobKind.CHANGE, sid, NEW, current=current)
    _dead_claim(site, job.job_id, datetime.now(UTC))
    me = domain.connect(dn, current)  # what the dead agent did before it was killed: the change reached AD
    me.modify(dn, {"unicodePwd": [("MODIFY_DELETE", [f'"{current}"'.encode("utf-16-le")]),
                                  ("MODIFY_ADD", [f'"{NEW}"'.encode("utf-16-le")])]})
    assert me.result["result"] == 0
    site.send(job)
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.APPLIED  # not "the current password is wrong": it was this job's change
    assert domain.binds(dn, NEW) and site.ledger_row(job.job_id)["claims"] == 2


def test_swapped_boxes_of_a_change_do_not_open_and_nothing_changes(site: Site, domain: Domain) -> None:
    dn, sid, current = domain.make_user()
    job = site.job(JobKind.CHANGE, sid, NEW, current=current)
    swapped = job.model_copy(update={"password": job.old_password, "old_password": job.password})
    site.send(swapped)
    [result] = site.poll_once(workers=2)
    assert result.verdict is Verdict.UNREADABLE
    assert domain.binds(dn, current)
