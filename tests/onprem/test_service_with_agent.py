"""Synced users reset and unlock through the service's API, the real agent and a real Samba AD DC (issue 16):
the verdict in the same request, AD's own refusal in plain words, unlock without a reset, an agent that is down
(nothing applies later), a slow agent (pending, then settled by the page or by the results queue alone), users
the agents do not serve, the admin's view of the agents, and no password in clear anywhere (security.md H1-H5)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from devtools.onprem_site import ELSEWHERE_OU, STAFF_OU, AdUser, AgentRunner, AgentSite, Domain
from devtools.stack import FunctionHost, GraphEmulator, emulator_running, private_stack
from shared.domain.onprem_jobs import AGENTS_TABLE
from shared.services.onprem.agents import ROSTER_TTL
from tests.integration.helpdesk_helpers import Agent, verified_caller
from tests.integration.outbox import code_sent_to, messages_to, wait_for
from tests.integration.reset_helpers import ADMIN, Member, Resetter, enable_everyone, set_policy
from tests.integration.tokens import bearer, user_token

NEW = "Lighthouse-Meadow-2026!"  # 23 characters: Entra's rules and the test domain's 14-character minimum pass
SHORT = "Meadow-2026!x"  # 13 characters: Entra's rules pass, the domain's 14-character minimum refuses it
WAIT_SECONDS = "6"  # how long a reset waits in its request for AD's verdict


@dataclass
class OnPrem:
    domain: Domain
    site: AgentSite
    api: httpx.Client
    host: FunctionHost
    emulator: GraphEmulator
    agent: AgentRunner
    people: dict[str, tuple[Member, AdUser]]

    def person(self, name: str) -> tuple[Member, AdUser]:
        return self.people[name]


def synced_member(onprem_api: httpx.Client, emulator: GraphEmulator, ad: AdUser) -> Member:
    """An Entra user synced from `ad`: the emulator reports the real account's SID and DN."""
    return Member(emulator, onprem_api, extra={"onPremisesSyncEnabled": True, "onPremisesSecurityIdentifier": ad.sid,
                                               "onPremisesDistinguishedName": ad.dn})


PEOPLE = {"ada": STAFF_OU, "weak": STAFF_OU, "locked": STAFF_OU, "stopped": STAFF_OU, "slow": STAFF_OU,
          "away": STAFF_OU, "canary": STAFF_OU, "elsewhere": ELSEWHERE_OU, "helped": STAFF_OU, "outage": STAFF_OU,
          "stuck": STAFF_OU}


@pytest.fixture(scope="module")
def onprem(domain: Domain, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnPrem]:
    site = AgentSite.create(domain, azurite.connection_string, tmp_path_factory.mktemp("site"))
    with emulator_running() as emulator, private_stack(
            site.prefix, azurite=azurite, emulator=emulator, SSPR_QUEUE_PREFIX=site.prefix,
            SSPR_ONPREM_AGENT_PUBLIC_KEY=site.public_key, SSPR_ONPREM_WAIT_SECONDS=WAIT_SECONDS,
            SSPR_ONPREM_JOB_SECONDS="30") as stack, \
            httpx.Client(base_url=f"{stack.host.base_url}/api", timeout=60) as api:
        agent = AgentRunner(site).start()
        try:
            people = {}
            for name, ou in PEOPLE.items():
                ad = domain.make_user(ou, password="Old-Password-2026!")
                member = synced_member(api, emulator, ad)
                member.register_email()
                people[name] = (member, ad)
            set_policy(api, emulator, onPremises={"writeback": True, "unlockWithoutReset": True})
            enable_everyone(api, emulator)
            yield OnPrem(domain, site, api, stack.host, emulator, agent, people)
        finally:
            agent.stop()


def verified(onprem: OnPrem, member: Member) -> tuple[Resetter, dict[str, Any]]:
    """A reset of `member` with its email proven: ready for the password (or unlock) step; and that step's answer."""
    resetter = Resetter(onprem.api)
    assert resetter.start(member.upn).status_code == 201
    sent = len(messages_to(onprem.emulator, member.alternate_email))
    assert resetter.prove("email", member.alternate_email).status_code == 202
    progress = resetter.verify("email", code_sent_to(onprem.emulator, member.alternate_email, sent + 1))
    assert progress.status_code == 200, progress.text
    return resetter, progress.json()


def settled(resetter: Resetter, answer: httpx.Response) -> httpx.Response:
    """The answer, or for a reset left pending (an agent slower than WAIT_SECONDS, as on a loaded machine) the
    verdict the page then asks for."""
    if answer.status_code != 202:
        return answer
    return wait_for("the reset's verdict", lambda: (r := resetter.get("/password")).status_code != 202 and r)


def new_mail(onprem: OnPrem, address: str, before: int) -> list[dict[str, Any]]:
    """The mails to `address` since there were `before` (the outbox lists the newest first), once there are some."""
    def arrived() -> list[dict[str, Any]] | None:
        mails = messages_to(onprem.emulator, address)
        return mails[:len(mails) - before] or None

    return list(wait_for(f"a mail to {address}", arrived))


def admin_headers(onprem: OnPrem) -> dict[str, str]:
    return bearer(user_token(onprem.emulator, ADMIN))


def audit(onprem: OnPrem, member: Member, activity: str) -> list[dict[str, Any]]:
    response = onprem.api.get("/manage/audit", params={"user": member.id, "activity": activity},
                              headers=admin_headers(onprem))
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def test_a_synced_user_resets_in_ad_the_new_password_binds_the_old_does_not_and_they_are_told(
        onprem: OnPrem) -> None:
    member, ad = onprem.person("ada")
    resetter, progress = verified(onprem, member)
    assert progress["next"] == "password" and progress["unlock"] is True
    before = len(messages_to(onprem.emulator, member.alternate_email))
    started = time.monotonic()
    done = resetter.set_password(NEW)
    assert done.status_code == 200, done.text
    assert done.json()["reset"] is True and done.json()["sessionsRevoked"] is True
    assert time.monotonic() - started < float(WAIT_SECONDS)  # AD's verdict came in the same request
    assert onprem.domain.binds(ad.dn, NEW) and not onprem.domain.binds(ad.dn, ad.password)
    mails = new_mail(onprem, member.alternate_email, before)
    assert "Your password was reset" in mails[0]["subject"]
    [event] = [e for e in audit(onprem, member, "Reset password (self-service)") if e["outcome"] == "success"]
    assert event["details"]["target"] == "onprem-ad"
    assert event["details"]["appliedBy"] == "on-premises agent agent-1"
    sessions = httpx.get(f"{onprem.emulator.base_url}/_emulator/users/{member.id}", timeout=10).json()
    assert sessions["signInSessionsValidFromDateTime"]  # revoked in Entra, as for a cloud user


def test_a_password_ad_refuses_is_told_with_ads_rule_and_the_flow_stays_usable(onprem: OnPrem) -> None:
    member, ad = onprem.person("weak")
    resetter, _ = verified(onprem, member)
    refused = resetter.set_password(SHORT)
    assert refused.status_code == 422, refused.text
    [failure] = refused.json()["failures"]
    assert failure["rule"] == "DIRECTORY_PASSWORD_POLICY"
    assert "organisation's password rules" in failure["message"]
    assert onprem.domain.binds(ad.dn, ad.password)  # nothing changed
    again = resetter.set_password(NEW)  # the same flow, another password
    assert again.status_code == 200, again.text
    assert onprem.domain.binds(ad.dn, NEW)


def test_a_locked_out_user_unlocks_without_a_reset_and_binds_again_with_the_old_password(onprem: OnPrem) -> None:
    member, ad = onprem.person("locked")
    onprem.domain.lock_out(ad.dn)
    assert not onprem.domain.binds(ad.dn, ad.password)
    resetter, _ = verified(onprem, member)
    before = len(messages_to(onprem.emulator, member.alternate_email))
    unlocked = resetter.post("/unlock")
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["unlocked"] is True
    assert onprem.domain.attribute(ad.dn, "lockoutTime") == 0
    assert onprem.domain.binds(ad.dn, ad.password)
    mails = new_mail(onprem, member.alternate_email, before)
    assert "unlocked" in mails[0]["subject"]
    assert audit(onprem, member, "Unlock user account (self-service)")


def test_a_helpdesk_agent_unlocks_a_synced_users_ad_account_through_the_agent_and_the_password_stays(
        onprem: OnPrem) -> None:
    member, ad = onprem.person("helped")
    onprem.domain.lock_out(ad.dn)
    assert not onprem.domain.binds(ad.dn, ad.password)
    agent = Agent(onprem.api, onprem.emulator)
    verification = verified_caller(agent, member)
    offers = {o["action"]: o for o in agent.get(f"verifications/{verification}").json()["actions"]}
    assert offers["unlock"]["available"] is True, offers
    unlocked = agent.act(verification, "unlock")
    assert unlocked.status_code == 200 and unlocked.json()["done"] is True, unlocked.text
    assert onprem.domain.attribute(ad.dn, "lockoutTime") == 0
    assert onprem.domain.binds(ad.dn, ad.password), "unlocked with the password they have: nobody set one"
    wait_for("the user's notice", lambda: [m for m in messages_to(onprem.emulator, member.upn)
                                           if "unlocked your account" in m["body"]])
    assert audit(onprem, member, "Unlock user account (helpdesk)")
    again = agent.act(verification, "unlock")
    assert again.status_code == 409 and again.json()["reason"] == "done"


def test_with_the_agent_stopped_the_user_is_told_nothing_changed_and_the_job_never_applies_later(
        onprem: OnPrem) -> None:
    member, ad = onprem.person("stopped")
    resetter, _ = verified(onprem, member)
    onprem.agent.stop()
    try:
        down = resetter.set_password(NEW)
    finally:
        onprem.agent.start()
    assert down.status_code == 503, down.text
    assert down.json()["type"] == "urn:sspr:problem:onprem-unavailable"
    assert "nothing was changed" in down.json()["title"]
    time.sleep(3)  # the agent, back, meets the cancelled job on the queue
    assert onprem.domain.binds(ad.dn, ad.password) and not onprem.domain.binds(ad.dn, NEW)
    again = resetter.set_password(NEW)  # the flow is usable again: a new try, a new job
    assert again.status_code == 200, again.text
    assert onprem.domain.binds(ad.dn, NEW)


@contextmanager
def standing_in(agent: AgentRunner, site: AgentSite, agent_id: str, **config: Any) -> Iterator[AgentRunner]:
    """Another agent configured with `config` (one agent only: `agent` rests meanwhile, or is replaced when
    `agent_id` is its id), then `agent` again."""
    agent.stop()
    other = AgentRunner(site, agent_id, **config).start()
    try:
        yield other
    finally:
        other.stop()
        agent.start()


@contextmanager
def slow_agent(agent: AgentRunner, site: AgentSite) -> Iterator[AgentRunner]:
    """An agent that waits up to 30 s for a DC that stops answering."""
    with standing_in(agent, site, "agent-slow", lease_s=60.0, timeouts=30, heartbeat_s=60.0) as slow:
        time.sleep(1)  # its first heartbeat is done: the DC may hang now without failing a heartbeat
        yield slow


def test_a_slow_agent_leaves_the_reset_pending_and_the_page_reads_the_verdict_when_it_comes(
        onprem: OnPrem) -> None:
    member, ad = onprem.person("slow")
    resetter, _ = verified(onprem, member)
    with slow_agent(onprem.agent, onprem.site):
        with onprem.domain.dc.hung():  # the DC stops answering: the agent took the job and waits for it
            pending = resetter.set_password(NEW)
            assert pending.status_code == 202, pending.text
            assert pending.json() == {"pending": True, "retryAfterSeconds": 2}
            assert pending.headers["Retry-After"] == "2"
            assert resetter.set_password(NEW).status_code == 409  # one change at a time
            assert resetter.get("/password").status_code == 202
        done = wait_for("the verdict", lambda: (r := resetter.get("/password")).status_code == 200 and r)
    assert done.json()["reset"] is True
    assert onprem.domain.binds(ad.dn, NEW)


def test_a_heartbeat_stuck_on_a_hung_dc_does_not_keep_the_agent_from_taking_jobs(onprem: OnPrem) -> None:
    """The heartbeat probes every DC; one that hangs holds the probe up to the agent's timeouts. Jobs are still
    taken meanwhile (they wait on the DC in their own threads), so the person is told the reset is pending and then
    that it is done, not that nothing was changed."""
    member, ad = onprem.person("stuck")
    resetter, _ = verified(onprem, member)
    with standing_in(onprem.agent, onprem.site, "agent-1", heartbeat_s=0.5, timeouts=30):  # probes every half second
        with onprem.domain.dc.hung():
            time.sleep(1.5)  # a heartbeat is probing the hung DC now, for up to 30 s
            pending = resetter.set_password(NEW)
            assert pending.status_code == 202, pending.text
        assert settled(resetter, pending).json()["reset"] is True
    assert onprem.domain.binds(ad.dn, NEW)


def test_a_pending_reset_is_settled_by_the_agents_result_alone_when_the_page_was_closed(onprem: OnPrem) -> None:
    member, ad = onprem.person("away")
    resetter, _ = verified(onprem, member)
    before = len(messages_to(onprem.emulator, member.alternate_email))
    with slow_agent(onprem.agent, onprem.site):
        with onprem.domain.dc.hung():
            assert resetter.set_password(NEW).status_code == 202
        # Nobody asks again: the results queue's trigger settles the flow, so the person is still told.
        mails = new_mail(onprem, member.alternate_email, before)
    assert "Your password was reset" in mails[0]["subject"]
    assert onprem.domain.binds(ad.dn, NEW)
    assert resetter.get("/password").json()["reset"] is True


def agents_table(onprem: OnPrem) -> Any:
    tables = TableServiceClient.from_connection_string(onprem.site.connection_string)
    return tables.get_table_client(AGENTS_TABLE.format(prefix=onprem.site.prefix))


def last_beat(onprem: OnPrem) -> dict[str, Any]:
    """agent-1's heartbeat as it lies in the agents table (read directly: the admin's view would refresh the
    service's roster, which is what the test watches)."""
    return dict(json.loads(agents_table(onprem).get_entity("agent", "agent-1")["heartbeat"]))


def agent_seen_by_admin(onprem: OnPrem) -> dict[str, Any]:
    answer = onprem.api.get("/manage/onprem/agents", headers=admin_headers(onprem))
    assert answer.status_code == 200, answer.text
    return dict(next(a for a in answer.json()["agents"] if a["agentId"] == "agent-1"))


def proof_answer(onprem: OnPrem, member: Member) -> httpx.Response:
    resetter = Resetter(onprem.api)
    assert resetter.start(member.upn).status_code == 201
    sent = len(messages_to(onprem.emulator, member.alternate_email))
    assert resetter.prove("email", member.alternate_email).status_code == 202
    return resetter.verify("email", code_sent_to(onprem.emulator, member.alternate_email, sent + 1))


def test_a_dc_outage_a_heartbeat_saw_keeps_nobody_out_once_the_agent_reaches_ad_again(onprem: OnPrem) -> None:
    """A heartbeat taken while the DC did not answer says "no DC reached": users are told the on-premises service
    is unavailable. The next heartbeat that reaches AD lets them in at once, not after the service's roster
    cache (ROSTER_TTL) runs out. (A roster read before the outage keeps serving for ROSTER_TTL: those resets wait
    on the DC, pending; the admin's view, which always reads fresh, puts the outage in the roster here.)"""
    member, _ = onprem.person("outage")
    table = agents_table(onprem)
    for row in table.query_entities("RowKey ne 'agent-1'"):  # agents of earlier tests, stopped but beaten lately
        table.delete_entity(row["PartitionKey"], row["RowKey"])
    with standing_in(onprem.agent, onprem.site, "agent-1", heartbeat_s=0.5, timeouts=1):  # the same agent, quicker
        with onprem.domain.dc.hung():
            wait_for("a heartbeat that reached no DC", lambda: not last_beat(onprem)["dcs_reached"])
            assert agent_seen_by_admin(onprem)["live"] is False  # the admin's view reads fresh: the roster holds it
            refused = proof_answer(onprem, member)
            assert refused.status_code == 403 and refused.json()["reason"] == "onprem-unavailable", refused.text
            assert agent_seen_by_admin(onprem)["live"] is False
            read_at = time.monotonic()
        wait_for("a heartbeat that reached the DC", lambda: bool(last_beat(onprem)["dcs_reached"]))
        served = proof_answer(onprem, member)
        assert time.monotonic() - read_at < ROSTER_TTL  # else the roster would have been re-read anyway
        assert served.status_code == 200, served.text
        assert served.json()["next"] == "password"


def test_a_user_outside_the_agents_ous_is_told_after_a_proof_that_the_helpdesk_can_reset_it(onprem: OnPrem) -> None:
    member, _ = onprem.person("elsewhere")
    resetter = Resetter(onprem.api)
    resetter.start(member.upn)
    sent = len(messages_to(onprem.emulator, member.alternate_email))
    assert resetter.prove("email", member.alternate_email).status_code == 202
    refused = resetter.verify("email", code_sent_to(onprem.emulator, member.alternate_email, sent + 1))
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "onprem-not-served"
    assert "helpdesk" in refused.json()["detail"]


def test_the_admin_sees_the_live_agent_eligibility_names_who_it_cannot_serve_and_health_reports_it(
        onprem: OnPrem) -> None:
    agents = onprem.api.get("/manage/onprem/agents", headers=admin_headers(onprem))
    assert agents.status_code == 200, agents.text
    [agent] = [a for a in agents.json()["agents"] if a["agentId"] == "agent-1"]
    assert agent["live"] and agent["holdsServiceKey"] and agent["allowedOus"] == [STAFF_OU]
    assert agent["dcsReached"] and agent["policyHints"] is False  # Samba has no policy-hints control
    eligibility = onprem.api.get("/manage/tenant/eligibility", headers=admin_headers(onprem)).json()
    findings = {f["code"]: f for f in eligibility["findings"]}
    assert findings["ONPREM_SOME_NOT_SERVED"]["counts"]["outsideAgentOus"] >= 1
    elsewhere, _ = onprem.person("elsewhere")
    assert {"id": elsewhere.id, "userPrincipalName": elsewhere.upn, "reason": "outside-agent-ous"} \
        in eligibility["onPremises"]["notServed"]
    assert onprem.person("ada")[0].id not in {u["id"] for u in eligibility["onPremises"]["notServed"]}
    health = onprem.api.get("/health").json()
    assert health["checks"]["onPremisesAgents"]["status"] == "ok"


def test_registration_says_whom_the_agents_cannot_serve_and_says_nothing_to_those_they_can(onprem: OnPrem) -> None:
    """Issue 15 (10): the register page's status comes with the reset's verdict, so a synced user no agent can
    serve is told at registration, not after proving a method at reset time."""
    elsewhere, _ = onprem.person("elsewhere")
    served, _ = onprem.person("ada")
    told = onprem.api.get("/me/security-info", headers=elsewhere.headers()).json()
    assert told["cannotReset"] == {"reason": "onprem-not-served", "helpdesk": {"url": None, "email": None}}
    assert onprem.api.get("/me/security-info", headers=served.headers()).json()["cannotReset"] is None


def test_writeback_cannot_be_turned_on_without_the_agents_key(onprem: OnPrem, azurite: Azurite) -> None:
    with private_stack("nokey" + uuid.uuid4().hex[:6], azurite=azurite, emulator=onprem.emulator) as stack, \
            httpx.Client(base_url=f"{stack.host.base_url}/api", timeout=30) as api:
        current = api.get("/manage/policy", headers=admin_headers(onprem))
        document = {**current.json(), "onPremises": {"writeback": True, "unlockWithoutReset": False}}
        refused = api.put("/manage/policy", json=document,
                          headers={**admin_headers(onprem), "If-Match": current.headers["ETag"]})
    assert refused.status_code == 400, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "onPremises.writeback" and "SSPR_ONPREM_AGENT_PUBLIC_KEY" in error["message"]


def test_no_queue_table_or_log_holds_the_password_of_a_synced_users_reset(onprem: OnPrem) -> None:
    member, ad = onprem.person("canary")
    marked = "Canary-" + uuid.uuid4().hex[:12] + "!A"
    resetter, _ = verified(onprem, member)
    peeked, jobs = seen_while_queued(onprem.agent, onprem.site, lambda: settled(resetter, resetter.set_password(marked)))
    assert onprem.domain.binds(ad.dn, marked)
    assert jobs and '"box"' in jobs[0]  # the search saw the job with its sealed password
    texts = [*peeked, *stored(onprem.site.connection_string), onprem.host.process.output()]
    assert not [t for t in texts if marked in t]


def seen_while_queued(agent: AgentRunner, site: AgentSite,
                      send: Callable[[], httpx.Response]) -> tuple[list[str], list[str]]:
    """Every queue message seen while the job of what `send` sends waits on its queue, and the on-premises jobs among
    them: the agent is stopped meanwhile, then started again, and `send` is answered 200."""
    agent.stop()  # the job waits on its queue for a moment, where the search sees it
    try:
        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(send)
            peeked = peek_queues(site.connection_string, 2.0)
            agent.start()
            assert done.result().status_code == 200, done.result().text
    finally:
        if not agent.running:
            agent.start()
    return peeked, [t for t in peeked if t.startswith(f"{site.prefix}-onprem-jobs: ")]


def peek_queues(connection: str, seconds: float) -> list[str]:
    """Every message of every queue seen during `seconds`, without taking any (what an operator would see)."""
    from azure.storage.queue import TextBase64DecodePolicy

    service = QueueServiceClient.from_connection_string(connection)
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for queue in service.list_queues():
            client = service.get_queue_client(queue.name, message_decode_policy=TextBase64DecodePolicy())
            seen += [f"{queue.name}: {m.content}" for m in client.peek_messages(max_messages=32)]
        time.sleep(0.05)
    return seen


def stored(connection: str) -> list[str]:
    tables = TableServiceClient.from_connection_string(connection)
    return [f"{t.name}: {row}" for t in tables.list_tables()
            for row in tables.get_table_client(t.name).list_entities()]
