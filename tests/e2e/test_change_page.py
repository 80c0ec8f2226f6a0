"""Synced users on the real /change page, with the real on-premises agent and a real Samba AD DC (issue 19): a change
that binds in AD with the new password, a wrong current password told plainly (in Swedish too) and then corrected on
the same page, a password from AD's history refused with AD's rule, and the agent down (nothing changed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools.azurite import Azurite
from devtools.onprem_site import Domain
from devtools.stack import GraphEmulator
from tests.e2e.conftest import AgentHost, agent_host, screenshot, show_step

OLD = "Old-Password-2026!"
NEW = "Harbour-Lantern-Keeper-47!"  # Entra's rules and the test domain's 14-character minimum pass
PEOPLE = ["chris.change", "wendy.wrongpass", "hanna.history", "doris.down"]


@pytest.fixture(scope="module")
def change_site(domain: Domain, azurite: Azurite, e2e_emulator: GraphEmulator,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentHost]:
    """A host with on-premises writeback on, an agent serving OU=Staff, and synced people in AD and Entra."""
    with agent_host(domain, azurite, e2e_emulator, tmp_path_factory.mktemp("e2e-change"), PEOPLE, OLD,
                    onPremises={"writeback": True, "unlockWithoutReset": False}) as site:
        yield site


def fill(page: Any, name: str, current: str, new: str) -> None:
    page.fill("#username", f"{name}@contoso.example")
    page.fill("#current", current)
    page.fill("#password", new)
    page.fill("#password2", new)


def test_a_synced_user_changes_on_the_page_and_ad_takes_the_new_password(page: Any, change_site: AgentHost) -> None:
    ad = change_site.accounts["chris.change"]
    page.goto(f"{change_site.host.base_url}/api/pages/change")
    expect(page.locator("#cloud-link")).to_have_attribute(
        "href", "https://mysignins.microsoft.com/security-info/password/change")  # cloud accounts go to Microsoft
    fill(page, "chris.change", OLD, NEW)
    expect(page.locator('#rules li[data-rule="differs"]')).to_have_class("ok")
    screenshot(page, "change-form")
    page.click("#change")
    show_step(page, "done", timeout=40_000)
    expect(page.locator("#step-done h2")).to_have_text("Your password is changed")
    screenshot(page, "change-done")
    assert change_site.domain.binds(ad.dn, NEW) and not change_site.domain.binds(ad.dn, OLD)


def test_a_wrong_current_password_is_told_in_swedish_and_the_right_one_then_works(page: Any,
                                                                                 change_site: AgentHost) -> None:
    ad = change_site.accounts["wendy.wrongpass"]
    page.goto(f"{change_site.host.base_url}/api/pages/change?lang=sv")
    page.click('.lang-switch button[data-lang="sv"]')
    fill(page, "wendy.wrongpass", "Not-The-Password-2026!", NEW)
    page.click("#change")
    expect(page.locator("#error")).to_contain_text("Användarnamnet eller det nuvarande lösenordet stämmer inte",
                                                   timeout=30_000)
    expect(page.locator("#error")).to_contain_text("mysignins.microsoft.com")
    screenshot(page, "change-wrong-current-sv")
    assert change_site.domain.binds(ad.dn, OLD)
    page.fill("#current", OLD)  # the same page, a new robot check solved meanwhile
    page.click("#change")
    show_step(page, "done", timeout=40_000)
    expect(page.locator("#step-done h2")).to_have_text("Ditt lösenord är bytt")
    assert change_site.domain.binds(ad.dn, NEW)


def test_a_password_from_ads_history_is_refused_with_ads_rule(page: Any, change_site: AgentHost) -> None:
    ad = change_site.accounts["hanna.history"]
    page.goto(f"{change_site.host.base_url}/api/pages/change")
    fill(page, "hanna.history", OLD, NEW)
    page.click("#change")
    show_step(page, "done", timeout=40_000)
    page.goto(f"{change_site.host.base_url}/api/pages/change")
    fill(page, "hanna.history", NEW, OLD)  # back to the first one: Entra's rules pass it, AD's history does not
    page.click("#change")
    expect(page.locator("#server-failures li")).to_contain_text("one you used recently", timeout=30_000)
    screenshot(page, "change-history-refused")
    assert page.locator("#step-change").is_visible()
    assert change_site.domain.binds(ad.dn, NEW)


def test_with_the_agent_down_the_page_says_nothing_changed(page: Any, change_site: AgentHost) -> None:
    ad = change_site.accounts["doris.down"]
    page.goto(f"{change_site.host.base_url}/api/pages/change")
    fill(page, "doris.down", OLD, NEW)
    change_site.agent.stop()
    try:
        page.click("#change")
        expect(page.locator("#error")).to_contain_text("nothing was changed", timeout=30_000)
        screenshot(page, "change-agent-down")
    finally:
        change_site.agent.start()
    time.sleep(2)  # the agent, back, meets the cancelled job
    assert change_site.domain.binds(ad.dn, OLD) and not change_site.domain.binds(ad.dn, NEW)
