"""The agent's password-expiry report against a real Samba AD DC (issue 19): every account of its OUs with AD's own
msDS-UserPasswordExpiryTimeComputed (passwords set weeks ago, the domain's maximum password age), "must change at
next logon" and "never expires", read by a paged LDAP scan and written to the report table, then read back by the
service's store and judged by the expiry rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableServiceClient
from azure.data.tables.aio import TableServiceClient as AsyncTables
from azure.storage.queue.aio import QueueServiceClient as AsyncQueues

from devtools.onprem_site import SERVICE_PASSWORD
from onprem_agent.directory import Directory
from shared.adapters.onprem_store import OnPremStore
from shared.adapters.storage import StorageClients
from shared.domain import onprem
from shared.domain.onprem_jobs import EXPIRY_TABLE, ExpiryReport, JobKind, Verdict
from shared.domain.password_expiration import DomainExpiration, VerifiedDomain
from shared.domain.password_expiry import ExpiryRules, ExpiryState, PasswordFacts, Source, password_expiry
from tests.onprem.conftest import ELSEWHERE_OU, Domain, Site
from tests.onprem.test_agent_change import NEW

UF_NORMAL_ACCOUNT, UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD = 0x200, 0x2, 0x10000
CLOSE = timedelta(minutes=2)


def reports(site: Site) -> dict[str, ExpiryReport]:
    tables = TableServiceClient.from_connection_string(site.connection_string)
    table = tables.get_table_client(EXPIRY_TABLE.format(prefix=site.prefix))
    return {str(row["RowKey"]): ExpiryReport.model_validate_json(str(row["report"])) for row in table.list_entities()}


def test_the_scan_reports_ads_own_expiry_of_every_account_in_the_ous_and_none_outside(
        site: Site, domain: Domain) -> None:
    max_age = domain.max_password_age()
    assert max_age == timedelta(days=42)  # Samba's default maximum password age, the domain's here
    due = domain.make_user()
    domain.set_password_age(due.dn, max_age - timedelta(days=3))  # set 39 days ago: 3 days left
    expired = domain.make_user()
    domain.set_password_age(expired.dn, max_age + timedelta(days=1))
    fresh = domain.make_user()
    must = domain.make_user()
    domain.must_change_at_next_logon(must.dn)
    never = domain.make_user()
    domain.set_user_account_control(never.dn, UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD)
    disabled = domain.make_user()
    domain.set_user_account_control(disabled.dn, UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE)
    elsewhere = domain.make_user(ELSEWHERE_OU)

    agent = site.agent()
    assert agent.scanner is not None
    result = agent.scanner.run_once()
    now = datetime.now(UTC)
    found = reports(site)

    assert result is not None and result.accounts == len(found) and result.removed == 0
    assert abs(found[due.sid].expires_at - (now + timedelta(days=3))) < CLOSE  # type: ignore[operator]
    assert abs(found[due.sid].password_last_set - (now - max_age + timedelta(days=3))) < CLOSE  # type: ignore[operator]
    assert found[expired.sid].expires_at is not None and found[expired.sid].expires_at < now
    assert abs(found[fresh.sid].expires_at - (now + max_age)) < CLOSE  # type: ignore[operator]
    assert found[must.sid].must_change and found[must.sid].expires_at is None
    assert found[never.sid].expires_at is None and not found[never.sid].must_change
    assert found[disabled.sid].disabled
    assert elsewhere.sid not in found
    assert {r.agent_id for r in found.values()} == {"agent-1"}


def test_the_scan_reads_the_ous_page_by_page(site: Site, domain: Domain) -> None:
    made = {domain.make_user().sid for _ in range(3)}
    directory = Directory(site.config().directory, SERVICE_PASSWORD)
    pages = list(directory.expiry_pages(page_size=2))
    assert len(pages) >= 2 and all(len(p) <= 2 for p in pages)  # the simple paged results control, page by page
    seen = [a.sid for p in pages for a in p]
    assert made <= set(seen) and len(seen) == len(set(seen))


def test_an_account_gone_from_the_ous_is_forgotten_at_the_next_scan(site: Site, domain: Domain) -> None:
    gone, stays = domain.make_user(), domain.make_user()
    agent = site.agent()
    assert agent.scanner is not None
    agent.scanner.run_once()
    assert {gone.sid, stays.sid} <= set(reports(site))
    admin = domain.connect()
    admin.delete(gone.dn)
    assert admin.result["result"] == 0
    again = agent.scanner.run_once()
    assert again is not None and again.removed == 1
    assert gone.sid not in reports(site) and stays.sid in reports(site)


def test_a_change_the_agent_applies_rewrites_the_accounts_row_at_once(site: Site, domain: Domain) -> None:
    user = domain.make_user()
    domain.set_password_age(user.dn, domain.max_password_age() - timedelta(days=1))
    agent = site.agent()
    assert agent.scanner is not None
    agent.scanner.run_once()
    before = reports(site)[user.sid]
    assert before.expires_at is not None and before.expires_at - datetime.now(UTC) < timedelta(days=1)
    site.send(site.job(JobKind.CHANGE, user.sid, NEW, current=user.password))
    assert [r.verdict for r in site.poll_once(workers=2)] == [Verdict.APPLIED]
    after = reports(site)[user.sid]
    assert after.password_last_set is not None and datetime.now(UTC) - after.password_last_set < CLOSE
    assert after.expires_at is not None and after.expires_at - datetime.now(UTC) > timedelta(days=41)


def test_the_service_reads_the_reports_and_the_expiry_rule_judges_synced_users_by_them(
        site: Site, domain: Domain) -> None:
    due, must, never = domain.make_user(), domain.make_user(), domain.make_user()
    domain.set_password_age(due.dn, domain.max_password_age() - timedelta(days=6, hours=12))
    domain.must_change_at_next_logon(must.dn)
    domain.set_user_account_control(never.dn, UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD)
    agent = site.agent()
    assert agent.scanner is not None
    agent.scanner.run_once()

    async def read() -> dict[str, ExpiryReport]:
        storage = StorageClients(AsyncTables.from_connection_string(site.connection_string),
                                 AsyncQueues.from_connection_string(site.connection_string), site.prefix)
        try:
            return await OnPremStore(storage, site.prefix).expiry_reports([due.sid, must.sid, never.sid, NOBODY])
        finally:
            await storage.close()

    found = asyncio.run(read())
    assert set(found) == {due.sid, must.sid, never.sid}
    now = datetime.now(UTC)
    rules = ExpiryRules.of([VerifiedDomain("contoso.example", True, "Managed",
                                           DomainExpiration("contoso.example", 90, 14))], False)

    def judged(sid: str) -> tuple[ExpiryState, int | None, Source | None]:
        facts = PasswordFacts(sid, "someone@contoso.example", True, "Member", True, "DisablePasswordExpiration",
                              now - timedelta(days=400), sid)
        expiry = password_expiry(facts, rules, now, onprem.expiry_of(found[sid], now))
        return expiry.state, expiry.days_left(now), expiry.source

    assert judged(due.sid) == (ExpiryState.EXPIRING, 7, Source.ON_PREMISES)
    assert judged(must.sid) == (ExpiryState.EXPIRED, None, Source.ON_PREMISES)
    assert judged(never.sid) == (ExpiryState.NEVER, None, None)
    stale = found[due.sid].model_copy(update={"scanned_at": now - onprem.EXPIRY_REPORT_FRESHNESS - CLOSE})
    assert onprem.expiry_of(stale, now) is None  # an agent that stopped scanning is not believed


NOBODY = "S-1-5-21-1-2-3-999999"
