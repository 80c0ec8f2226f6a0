"""Synced users on the real /reset page, with the real on-premises agent and a real Samba AD DC (issue 16): a reset
that binds in AD with the new password, AD's own refusal shown, an unlock without a new password, a DC that hangs
(the page waits, then shows the verdict), the agent down (told plainly, nothing applied); and the admin's view."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools.azurite import Azurite
from devtools.onprem_site import Domain
from devtools.stack import GraphEmulator
from tests.e2e.conftest import PILOT_GROUP, AgentHost, agent_host, api_as, enable, register_email, screenshot, show_step
from tests.e2e.test_register_and_outbox_pages import sign_in
from tests.e2e.test_reset_page import prove_email

NEW = "Harbour-Lantern-Keeper-47!"  # Entra's rules and the test domain's 14-character minimum pass
SHORT = "Harbour-47!x"  # Entra's rules pass; the domain's 14-character minimum refuses it
PEOPLE = ["olle.onprem", "wilma.weak", "lotta.locked", "hugo.hung", "stina.stopped"]


@pytest.fixture(scope="module")
def onprem_site(domain: Domain, azurite: Azurite, e2e_emulator: GraphEmulator,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentHost]:
    """A host with on-premises writeback on, an agent serving OU=Staff, and synced people registered by email."""
    workdir = tmp_path_factory.mktemp("e2e-site")
    with agent_host(domain, azurite, e2e_emulator, workdir, PEOPLE, "Old-Password-2026!", methodsRequired=1,
                    onPremises={"writeback": True, "unlockWithoutReset": True}) as site:
        enable(api_as(site.host, e2e_emulator), "selected", PILOT_GROUP)
        for name in PEOPLE:
            register_email(site.host, e2e_emulator, f"{name}@contoso.example", f"{name}.home@example.org")
        yield site


def proven(page: Any, site: AgentHost, name: str) -> None:
    """On /reset: the user name, the registered address, the code from the outbox: at the password step."""
    page.goto(f"{site.host.base_url}/api/pages/reset")
    page.fill("#username", f"{name}@contoso.example")
    page.click("#start")
    show_step(page, "method", timeout=40_000)
    prove_email(page, site.emulator, f"{name}.home@example.org")
    show_step(page, "password")


def type_password(page: Any, password: str) -> None:
    page.fill("#password", password)
    page.fill("#password2", password)
    page.click("#set-password")


def test_a_synced_user_resets_on_the_page_and_ad_takes_the_new_password(page: Any, onprem_site: AgentHost) -> None:
    ad = onprem_site.accounts["olle.onprem"]
    proven(page, onprem_site, "olle.onprem")
    expect(page.locator("#unlock-box")).to_be_visible()  # the policy lets synced users unlock instead
    type_password(page, NEW)
    show_step(page, "done")
    screenshot(page, "onprem-reset-done")
    assert onprem_site.domain.binds(ad.dn, NEW) and not onprem_site.domain.binds(ad.dn, ad.password)


def test_ads_own_rule_is_shown_when_ad_refuses_and_another_password_then_works(page: Any, onprem_site: AgentHost) -> None:
    ad = onprem_site.accounts["wilma.weak"]
    proven(page, onprem_site, "wilma.weak")
    type_password(page, SHORT)  # Entra's rules are met (the page's list is all green), AD's are not
    expect(page.locator("#server-failures li")).to_contain_text("organisation's password rules")
    screenshot(page, "onprem-reset-refused-by-ad")
    assert page.locator("#step-password").is_visible()
    type_password(page, NEW)
    show_step(page, "done")
    assert onprem_site.domain.binds(ad.dn, NEW)


def test_a_locked_out_user_unlocks_without_a_new_password(page: Any, onprem_site: AgentHost) -> None:
    ad = onprem_site.accounts["lotta.locked"]
    onprem_site.domain.lock_out(ad.dn)
    proven(page, onprem_site, "lotta.locked")
    page.click("#unlock")
    show_step(page, "unlocked")
    expect(page.locator("#step-unlocked h2")).to_have_text("Your account is unlocked")
    screenshot(page, "onprem-unlocked")
    assert onprem_site.domain.binds(ad.dn, ad.password)


def test_when_the_dc_hangs_the_page_says_it_is_working_then_shows_the_verdict(page: Any, onprem_site: AgentHost) -> None:
    ad = onprem_site.accounts["hugo.hung"]
    proven(page, onprem_site, "hugo.hung")
    with onprem_site.domain.dc.hung():
        type_password(page, NEW)
        expect(page.locator("#pending")).to_be_visible(timeout=15_000)
        screenshot(page, "onprem-pending")
        time.sleep(2)
    show_step(page, "done", timeout=40_000)
    expect(page.locator("#pending")).to_be_hidden()
    assert onprem_site.domain.binds(ad.dn, NEW)


def test_with_the_agent_down_the_page_says_nothing_changed(page: Any, onprem_site: AgentHost) -> None:
    ad = onprem_site.accounts["stina.stopped"]
    proven(page, onprem_site, "stina.stopped")
    onprem_site.agent.stop()
    try:
        type_password(page, NEW)
        expect(page.locator("#step-password [role=alert]")).to_contain_text("nothing was changed", timeout=20_000)
        screenshot(page, "onprem-agent-down")
    finally:
        onprem_site.agent.start()
    time.sleep(2)  # the agent, back, meets the cancelled job
    assert onprem_site.domain.binds(ad.dn, ad.password) and not onprem_site.domain.binds(ad.dn, NEW)


def test_the_admin_sees_the_live_agent_and_turns_writeback_on_in_the_policy(page: Any, onprem_site: AgentHost) -> None:
    sign_in(page, f"{onprem_site.host.base_url}/api/pages/admin#onprem", "admin@contoso.example")
    row = page.locator('#onprem-agents tr[data-agent="agent-1"]')
    expect(row.locator("td[data-state]")).to_have_text("Live")
    expect(row.locator("td[data-expiry-report]")).to_contain_text("accounts")  # its AD expiry report (issue 19)
    expect(page.locator("#onprem-summary")).to_contain_text("agents are live")
    screenshot(page, "onprem-admin-agents")
    page.click('nav.tabs button[data-tab="policy"]')
    expect(page.locator("#policy-onPremises-writeback")).to_be_checked()
