"""The locked-out user's journeys on /reset, with the code read from the emulator's outbox: a full reset in
English, in Swedish on a 360 px phone, keyboard only, wrong codes until the flow locks, and a blocked user told so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import (
    CODE_METHODS,
    can_sign_in,
    enrol,
    latest_code,
    outbox,
    screenshot,
    show_step,
)

NEW_PASSWORD = "Harbour-Lantern-47!"
RESET_USERS = ["rosa.reset", "sixten.reset", "kim.keyboard", "wanda.wrong", "tova.phone", "bo.blocked", "rik.revoke"]


@pytest.fixture(scope="module")
def reset_users(pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> Iterator[dict[str, str]]:
    """Users in the SSPR Pilot group, enabled, each with a registered private email address."""
    yield enrol(pages_host, e2e_emulator, RESET_USERS, methodsRequired=1, methodsAllowed=CODE_METHODS)


def start(page: Any, upn: str) -> None:
    page.fill("#username", upn)
    expect(page.locator("input[name=altcha]")).not_to_have_value("", timeout=30_000)  # proof-of-work solved
    page.click("#start")
    show_step(page, "method")


def email_code(page: Any, emulator: GraphEmulator, address: str) -> str:
    """Choose email, type `address`, ask for a code: the code the outbox got."""
    before = len(outbox(emulator))
    page.check("#method-email")
    page.fill("#contact", address)
    page.click("#send")
    show_step(page, "code")
    return latest_code(emulator, address, after=before)


def prove_email(page: Any, emulator: GraphEmulator, address: str) -> None:
    page.fill("#code", email_code(page, emulator, address))
    page.click("#verify")


def new_password(page: Any) -> None:
    show_step(page, "password")
    page.fill("#password", "short")
    expect(page.locator('#rules li[data-rule="length"]')).to_have_class("bad")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password2", NEW_PASSWORD)
    for rule in ("length", "classes", "ascii", "match"):
        expect(page.locator(f'#rules li[data-rule="{rule}"]')).to_have_class("ok")
    page.click("#set-password")
    show_step(page, "done")


def test_a_user_resets_the_password_with_the_code_from_the_outbox(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, reset_users: dict[str, str]) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    screenshot(page, "reset-start")
    start(page, "rosa.reset@contoso.example")
    screenshot(page, "reset-method")
    prove_email(page, e2e_emulator, reset_users["rosa.reset"])
    new_password(page)
    assert page.text_content("#step-done h2") == "Your password is reset"
    expect(page.locator("#done-sessions")).to_have_text(
        "You were signed out everywhere, so every device asks for the new password.")
    screenshot(page, "reset-done")
    assert can_sign_in(e2e_emulator, "rosa.reset@contoso.example", NEW_PASSWORD)
    assert not can_sign_in(e2e_emulator, "rosa.reset@contoso.example", "Demo-Pass-2026!")


def test_when_graph_cannot_end_the_sessions_yet_the_page_says_the_other_sign_ins_end_shortly(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, reset_users: dict[str, str]) -> None:
    faults = httpx.put(f"{e2e_emulator.base_url}/_emulator/faults", timeout=10, json={"rules": [
        {"status": 503, "retryAfter": 0, "methods": ["POST"], "pathContains": "/revokeSignInSessions"}]})
    assert faults.status_code == 200, faults.text
    try:
        page.goto(f"{pages_host.base_url}/api/pages/reset")
        start(page, "rik.revoke@contoso.example")
        prove_email(page, e2e_emulator, reset_users["rik.revoke"])
        new_password(page)
        expect(page.locator("#step-done h2")).to_have_text("Your password is reset")
        expect(page.locator("#done-sessions")).to_have_text(
            "Your other sign-ins will be ended within a few minutes. Until then, a device that is already signed in "
            "may stay signed in.")
    finally:
        httpx.delete(f"{e2e_emulator.base_url}/_emulator/faults", timeout=10)
    assert can_sign_in(e2e_emulator, "rik.revoke@contoso.example", NEW_PASSWORD)


def test_a_swedish_user_resets_on_a_360_px_phone(browser: Any, pages_host: FunctionHost,
                                                 e2e_emulator: GraphEmulator, reset_users: dict[str, str]) -> None:
    context = browser.new_context(locale="sv-SE", viewport={"width": 360, "height": 740},
                                  extra_http_headers={"Accept-Language": "sv-SE,sv;q=0.9"})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{pages_host.base_url}/api/pages/reset")
        expect(page.locator("h1")).to_have_text("Återställ ditt lösenord")
        assert page.get_attribute("html", "lang") == "sv"
        start(page, "sixten.reset@contoso.example")
        expect(page.locator("#step-method h2")).to_have_text("Bevisa att det är du")
        prove_email(page, e2e_emulator, reset_users["sixten.reset"])
        new_password(page)
        expect(page.locator("#step-done h2")).to_have_text("Ditt lösenord är återställt")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
        screenshot(page, "reset-done-sv-360px")
        assert can_sign_in(e2e_emulator, "sixten.reset@contoso.example", NEW_PASSWORD)
    finally:
        context.close()


def tab_to(page: Any, selector: str, presses: int = 20) -> None:
    for _ in range(presses):
        if page.locator(selector).evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reachable with the Tab key")


def test_a_reset_needs_nothing_but_the_keyboard(page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator,
                                                reset_users: dict[str, str]) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    tab_to(page, "#username")
    page.keyboard.type("kim.keyboard@contoso.example")
    expect(page.locator("input[name=altcha]")).not_to_have_value("", timeout=30_000)
    page.keyboard.press("Enter")
    show_step(page, "method")
    tab_to(page, "input[name=method]:checked")  # a radio group is one tab stop; arrows choose within it
    for _ in range(5):
        if page.is_checked("#method-email"):
            break
        page.keyboard.press("ArrowDown")
    tab_to(page, "#contact")
    before = len(outbox(e2e_emulator))
    page.keyboard.type(reset_users["kim.keyboard"])
    page.keyboard.press("Enter")
    show_step(page, "code")
    tab_to(page, "#code")
    page.keyboard.type(latest_code(e2e_emulator, reset_users["kim.keyboard"], after=before))
    page.keyboard.press("Enter")
    show_step(page, "password")
    tab_to(page, "#password")
    page.keyboard.type(NEW_PASSWORD)
    tab_to(page, "#password2")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    show_step(page, "done")
    assert can_sign_in(e2e_emulator, "kim.keyboard@contoso.example", NEW_PASSWORD)


def test_wrong_codes_lock_the_flow_and_the_right_code_is_refused_after(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, reset_users: dict[str, str]) -> None:
    address = reset_users["wanda.wrong"]
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    start(page, "wanda.wrong@contoso.example")
    right = email_code(page, e2e_emulator, address)
    wrong = str((int(right) + 1) % 10 ** len(right)).zfill(len(right))
    titles = []
    for _ in range(5):
        page.fill("#code", wrong)
        page.click("#verify")
        expect(page.locator("#verify")).to_be_enabled()
        titles.append(page.locator("#step-code [role=alert] p").first.text_content())
    page.fill("#code", right)
    page.click("#verify")
    expect(page.locator("#verify")).to_be_enabled()
    assert page.locator("#step-password").is_hidden()
    final = page.locator("#step-code [role=alert] p").first.text_content()
    assert titles[0] != final, "the locked flow should say so, not repeat 'wrong code'"
    screenshot(page, "reset-locked")
    assert not can_sign_in(e2e_emulator, "wanda.wrong@contoso.example", NEW_PASSWORD)


def test_a_blocked_user_is_told_on_the_page_until_when(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, reset_users: dict[str, str]) -> None:
    address, upn = reset_users["bo.blocked"], "bo.blocked@contoso.example"
    for wrongs in (5, 1):  # five wrong codes lock a first flow; the sixth, on a code really sent, blocks (G1)
        page.goto(f"{pages_host.base_url}/api/pages/reset")
        start(page, upn)
        right = email_code(page, e2e_emulator, address)
        for _ in range(wrongs):
            page.fill("#code", str((int(right) + 1) % 10 ** len(right)).zfill(len(right)))
            page.click("#verify")
            expect(page.locator("#verify")).to_be_enabled()
    show_step(page, "blocked")
    detail = page.text_content("#blocked-detail") or ""
    assert "blocked for your account until 20" in detail and "UTC" in detail and "helpdesk" in detail
    screenshot(page, "reset-blocked")


def test_next_before_the_robot_check_is_done_waits_for_it(page: Any, pages_host: FunctionHost,
                                                          reset_users: dict[str, str]) -> None:
    """A person who presses Next at once is not refused with "wait until the check is done": the page waits."""
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    page.fill("#username", "rosa.reset@contoso.example")
    assert page.locator("input[name=altcha]").count() == 0 or not page.input_value("input[name=altcha]"), \
        "the robot check must still be running for this test to mean anything"
    page.click("#start")
    show_step(page, "method", timeout=40_000)
    assert page.locator("[role=alert]:visible").count() == 0
