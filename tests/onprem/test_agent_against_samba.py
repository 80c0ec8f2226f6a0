"""The agent against a real Samba AD DC and Azurite: resets, refusals with AD's rule, unlock without a reset,
scope, expiry, redelivery, several agents, DC failover (security.md H2-H5)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from onprem_agent.directory import POLICY_HINTS_OID, map_ldap_result
from shared.domain.onprem_jobs import JOBS_QUEUE, JobKind, JobResult, Verdict
from tests.onprem.conftest import ELSEWHERE_OU, Domain, Site, quoted

NEW = "N3w!Passw0rd-2026"


def test_a_reset_lets_the_new_password_bind_and_not_the_old_and_logs_neither(
        site: Site, domain: Domain, caplog: pytest.LogCaptureFixture) -> None:
    dn, sid, old = domain.make_user()
    job = site.job(JobKind.RESET, sid, NEW)
    site.send(job)
    with caplog.at_level(logging.DEBUG):
        [result] = site.poll_once()
    assert result.job_id == job.job_id and result.verdict is Verdict.APPLIED, result
    assert result.state is not None and not result.state.locked and result.state.password_expires_at is not None
    assert domain.binds(dn, NEW) and not domain.binds(dn, old)
    assert job.password is not None
    assert NEW not in caplog.text and job.password.box not in caplog.text
    assert site.ledger_row(job.job_id)["state"] == "done"


def test_must_change_at_next_logon_sets_pwdlastset_to_zero(site: Site, domain: Domain) -> None:
    dn, sid, _ = domain.make_user()
    site.send(site.job(JobKind.RESET, sid, NEW, must_change=True))
    [result] = site.poll_once()
    assert result.verdict is Verdict.APPLIED
    assert domain.attribute(dn, "pwdLastSet") == 0


def test_a_weak_password_is_refused_with_ads_rule_and_nothing_changes(site: Site, domain: Domain) -> None:
    dn, sid, old = domain.make_user()
    for weak, verdict in (("abc", Verdict.REFUSED_COMPLEXITY), ("alllowercase", Verdict.REFUSED_COMPLEXITY)):
        site.send(site.job(JobKind.RESET, sid, weak))
        [result] = site.poll_once()
        assert result.verdict is verdict, result
        assert result.rule and weak not in result.rule
    assert domain.binds(dn, old)


def test_samba_has_no_policy_hints_control_and_its_history_refusal_maps_to_the_history_rule(
        domain: Domain) -> None:
    """Samba 4.17 advertises neither 1.2.840.113556.1.4.2239 nor 2066 and ignores history on an admin reset;
    its history refusal comes on a user's own change, whose real answer the agent maps to the history rule."""
    admin = domain.connect()
    controls = {c[0] for c in admin.server.info.supported_controls}
    assert POLICY_HINTS_OID not in controls
    dn, _, old = domain.make_user()
    me = domain.connect(dn, old)
    me.modify(dn, {"unicodePwd": [("MODIFY_DELETE", [quoted(old)]), ("MODIFY_ADD", [quoted(NEW)])]})
    assert me.result["result"] == 0, me.result
    me = domain.connect(dn, NEW)
    me.modify(dn, {"unicodePwd": [("MODIFY_DELETE", [quoted(NEW)]), ("MODIFY_ADD", [quoted(old)])]})
    outcome = map_ldap_result(me.result)
    assert outcome.verdict is Verdict.REFUSED_HISTORY, me.result


def test_a_user_outside_the_configured_ous_or_unknown_is_refused(site: Site, domain: Domain) -> None:
    dn, sid, old = domain.make_user(ELSEWHERE_OU)
    site.send(site.job(JobKind.RESET, sid, NEW))
    unknown = sid.rsplit("-", 1)[0] + "-999999"
    site.send(site.job(JobKind.UNLOCK, unknown))
    verdicts = {r.verdict for r in site.poll_once()}
    assert verdicts == {Verdict.NOT_IN_SCOPE, Verdict.NOT_FOUND}
    assert domain.binds(dn, old)


def test_a_locked_out_user_is_unlocked_without_a_reset_and_binds_again(site: Site, domain: Domain) -> None:
    dn, sid, password = domain.make_user()
    for _ in range(4):
        assert not domain.binds(dn, "Wr0ng!Guess")
    assert not domain.binds(dn, password)  # locked out: even the right password fails
    site.send(site.job(JobKind.READ_STATE, sid))
    [state] = site.poll_once()
    assert state.state is not None and state.state.locked
    before = domain.attribute(dn, "pwdLastSet")
    site.send(site.job(JobKind.UNLOCK, sid))
    [result] = site.poll_once()
    assert result.verdict is Verdict.APPLIED and result.state is not None and not result.state.locked
    assert domain.binds(dn, password)
    assert domain.attribute(dn, "pwdLastSet") == before  # no reset happened


def test_an_expired_job_never_applies(site: Site, domain: Domain) -> None:
    dn, sid, old = domain.make_user()
    site.send(site.job(JobKind.RESET, sid, NEW, ttl=-1))
    [result] = site.poll_once()
    assert result.verdict is Verdict.EXPIRED
    assert domain.binds(dn, old) and not domain.binds(dn, NEW)


def test_a_redelivered_job_applies_once_and_returns_its_first_result(site: Site, domain: Domain) -> None:
    dn, sid, _ = domain.make_user()
    job = site.job(JobKind.RESET, sid, NEW)
    site.send(job)
    [first] = site.poll_once()
    stamp = domain.attribute(dn, "pwdLastSet")
    site.send(job)  # the queue delivers it again (at-least-once)
    [again] = site.poll_once("agent-2")
    assert again == first
    assert domain.attribute(dn, "pwdLastSet") == stamp


def test_two_agents_on_one_queue_apply_each_job_exactly_once(site: Site, domain: Domain) -> None:
    users = [domain.make_user() for _ in range(4)]
    jobs = [site.job(JobKind.RESET, sid, NEW) for _, sid, _ in users]
    for job in jobs * 2:  # every job delivered twice, so both agents race for each
        site.send(job)
    agents = [site.agent("agent-a"), site.agent("agent-b")]
    stop = threading.Event()
    threads = [threading.Thread(target=a.run, args=(stop, 4, 0.1, 60.0)) for a in agents]
    for t in threads:
        t.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while datetime.now(UTC) < deadline:
            jobs_left = site.queue(JOBS_QUEUE).get_queue_properties().approximate_message_count
            if jobs_left == 0 and all(site.ledger_row(j.job_id).get("state") == "done" for j in jobs):
                break
            stop.wait(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert sum(a.counts.applied for a in agents) == len(jobs)
    assert all(site.ledger_row(j.job_id)["claims"] == 1 for j in jobs)
    assert all(domain.binds(dn, NEW) for dn, _, _ in users)


def test_an_unreachable_first_dc_fails_over_to_the_next(site: Site, domain: Domain) -> None:
    from devtools.processes import free_port

    dn, sid, _ = domain.make_user()
    agent = site.agent(servers=[f"127.0.0.1:{free_port()}", f"127.0.0.1:{domain.dc.ldaps_port}"])
    site.send(site.job(JobKind.RESET, sid, NEW))
    with ThreadPoolExecutor(1) as pool:
        agent.poll_once(pool, 1)
    assert domain.binds(dn, NEW)
    beat = agent.heartbeat()
    assert beat.dcs_reached == [f"127.0.0.1:{domain.dc.ldaps_port}"] and beat.dcs_configured == 2
    assert beat.jobs_applied == 1 and not beat.policy_hints


def test_a_dc_certificate_from_another_ca_is_refused_and_nothing_applies(site: Site, domain: Domain) -> None:
    from devtools.samba_dc import _write_certificates
    from onprem_agent.__main__ import build

    _write_certificates(site.folder / "other-ca")
    dn, sid, old = domain.make_user()
    config = site.config()
    other = config.model_copy(update={"directory": config.directory.model_copy(
        update={"ca_file": site.folder / "other-ca" / "ca.pem"})})
    agent = build(other)
    site.send(site.job(JobKind.RESET, sid, NEW))
    with ThreadPoolExecutor(1) as pool:
        agent.poll_once(pool, 1)
    [result] = [JobResult.model_validate_json(r) for r in site.results()]
    assert result.verdict is Verdict.FAILED and result.rule == "no domain controller answered"
    assert domain.binds(dn, old) and not domain.binds(dn, NEW)


def test_a_job_the_service_cancelled_never_applies(site: Site, domain: Domain) -> None:
    from azure.data.tables import TableServiceClient

    from shared.domain.onprem_jobs import LEDGER_TABLE

    dn, sid, old = domain.make_user()
    job = site.job(JobKind.RESET, sid, NEW)
    tables = TableServiceClient.from_connection_string(site.connection_string)
    table = tables.create_table_if_not_exists(LEDGER_TABLE.format(prefix=site.prefix))
    table.create_entity({"PartitionKey": job.job_id, "RowKey": "job", "state": "cancelled"})
    site.send(job)
    [result] = site.poll_once()
    assert result.verdict is Verdict.CANCELLED
    assert domain.binds(dn, old) and not domain.binds(dn, NEW)


def test_a_plain_ldap_url_is_refused_by_the_config(site: Site) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="LDAPS only"):
        site.config(servers=["ldap://127.0.0.1:389"])


def test_the_service_account_may_reset_and_unlock_in_its_ou_and_nothing_else(domain: Domain) -> None:
    """The delegation docs/onprem.md grants holds: the agent's account changes the password, lockoutTime and
    pwdLastSet of users under OU=Staff, and AD refuses it any other attribute there and any password elsewhere."""
    from devtools.onprem_site import SERVICE_DN, SERVICE_PASSWORD

    staff, elsewhere = domain.make_user(), domain.make_user(ELSEWHERE_OU)
    agent = domain.connect(SERVICE_DN, SERVICE_PASSWORD)
    agent.modify(staff.dn, {"unicodePwd": [("MODIFY_REPLACE", [quoted(NEW)])]})
    assert agent.result["result"] == 0, agent.result
    agent.modify(staff.dn, {"lockoutTime": [("MODIFY_REPLACE", [b"0"])]})
    assert agent.result["result"] == 0, agent.result
    for dn, change in ((staff.dn, {"description": [("MODIFY_REPLACE", [b"taken over"])]}),
                       (staff.dn, {"userAccountControl": [("MODIFY_REPLACE", [b"66048"])]}),
                       (elsewhere.dn, {"unicodePwd": [("MODIFY_REPLACE", [quoted(NEW)])]})):
        agent.modify(dn, change)
        assert agent.result["result"] == 50, (dn, change, agent.result)  # insufficientAccessRights
    assert domain.binds(elsewhere.dn, elsewhere.password)
