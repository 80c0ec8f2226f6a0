"""The reset page as a locked-out person uses it (issue 15, points 10-13): a synced user the service cannot reset
told whom to ask in plain words; the same choice for everyone before the
first proof and the person's own methods, masked, after it; a reset that survives a reload and steps back with
Back; plain wording and a way to sign in at the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import (
    CODE_METHODS,
    PILOT_GROUP,
    api_as,
    create_user,
    enable,
    enrol,
    latest_code,
    outbox,
    register_email,
    register_mobile,
    screenshot,
    serious_accessibility_violations,
    show_step,
)
from tests.e2e.test_reset_page import NEW_PASSWORD, can_sign_in, email_code, new_password, prove_email, start

USERS = {"mia.methods": "+46705550101", "rex.reload": "+46705550102", "dora.done": "+46705550103"}


@pytest.fixture(scope="module")
def two_method_users(pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> Iterator[dict[str, str]]:
    """Users in the pilot group with a private email and a mobile number; two methods required."""
    addresses = enrol(pages_host, e2e_emulator, USERS, methodsRequired=2, methodsAllowed=CODE_METHODS)
    for name, number in USERS.items():
        register_mobile(pages_host, e2e_emulator, f"{name}@contoso.example", number)
    yield addresses


def test_p10_a_synced_user_the_service_cannot_reset_is_told_after_a_proof_whom_to_ask_in_plain_words(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    """Writeback is off: the password lives in on-premises AD, which this service cannot change. After the proof
    (never before: enumeration) the person reads why and whom to ask, without licence or product jargon."""
    create_user(e2e_emulator, "sune.synced", onPremisesSyncEnabled=True)
    enable(api_as(pages_host, e2e_emulator), "selected", PILOT_GROUP)
    register_email(pages_host, e2e_emulator, "sune.synced@contoso.example", "sune.home@example.org")
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "sune.synced@contoso.example")
    prove_email(page, e2e_emulator, "sune.home@example.org")
    show_step(page, "blocked")
    detail = page.locator("#blocked-detail")
    expect(detail).to_have_text("Your password is kept in your organisation's own directory (on-premises Active "
                                "Directory), and this service has not been set up to change it. Your helpdesk can "
                                "reset it for you.")
    screenshot(page, "issue15-p10-reset-synced")
    assert not serious_accessibility_violations(page)
    words = detail.text_content() or ""
    assert not [w for w in ("P1", "P2", "licence", "license", "writeback", "Premium") if w in words]


def offered(page: Any) -> list[str]:
    return list(page.locator("#method-options input[name=method]").evaluate_all("(all) => all.map((i) => i.value)"))


def test_p11_the_choice_is_the_same_for_everyone_before_the_first_proof_and_ones_own_after_it(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, two_method_users: dict[str, str]) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "nobody.at.all@contoso.example")
    for_nobody = offered(page)
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "mia.methods@contoso.example")
    assert offered(page) == for_nobody, "before a proof every user name gets the same choice"

    page.fill("#code", email_code(page, e2e_emulator, two_method_users["mia.methods"]))
    page.click("#verify")
    show_step(page, "method")
    expect(page.locator("#method-progress")).to_contain_text("1 of 2")
    screenshot(page, "issue15-p11-own-methods-masked")
    assert offered(page) == ["mobilePhone"], "only what this user registered, the app was never set up"
    expect(page.locator("label[for=method-mobilePhone]")).to_contain_text("+46*******01")


def test_p12_a_reload_keeps_the_reset_and_back_goes_one_step_back(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, two_method_users: dict[str, str]) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "rex.reload@contoso.example")
    code = email_code(page, e2e_emulator, two_method_users["rex.reload"])
    page.reload()
    show_step(page, "code")  # the same flow, still waiting for the code
    screenshot(page, "issue15-p12-after-reload")
    page.go_back()
    show_step(page, "method")
    assert page.url.split("#")[0].endswith("/api/pages/reset"), page.url
    page.go_forward()
    show_step(page, "code")
    page.fill("#code", code)
    page.click("#verify")
    show_step(page, "method")
    expect(page.locator("#method-progress")).to_contain_text("1 of 2")


def test_p13_plain_wording_and_a_way_to_sign_in_when_done(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, two_method_users: dict[str, str]) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "dora.done@contoso.example")
    page.check("#method-authenticatorApp")
    page.fill("#contact", "123456")
    page.click("#send")
    error = page.locator("#step-method [role=alert]")
    expect(error).to_be_visible()
    assert "new code" not in (error.text_content() or ""), error.text_content()

    email_code(page, e2e_emulator, two_method_users["dora.done"])
    sent = page.text_content("#code-sent") or ""
    assert " a 8-digit" not in sent and "8" in sent, sent
    page.fill("#code", latest_code(e2e_emulator, two_method_users["dora.done"]))
    page.click("#verify")
    show_step(page, "method")
    before = len(outbox(e2e_emulator))
    page.check("#method-mobilePhone")
    page.fill("#contact", USERS["dora.done"])
    page.click("#send")
    show_step(page, "code")
    page.fill("#code", latest_code(e2e_emulator, USERS["dora.done"], after=before))
    page.click("#verify")
    new_password(page)
    link = page.locator("#step-done a#signin-link")
    expect(link).to_be_visible()
    assert (link.get_attribute("href") or "").startswith("http")
    screenshot(page, "issue15-p13-done-with-sign-in")
    assert can_sign_in(e2e_emulator, "dora.done@contoso.example", NEW_PASSWORD)
