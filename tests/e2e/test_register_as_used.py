"""The register page as users use it (issue 15, points 6-9): feedback beside the control pressed and announced,
a status in plain words, national phone numbers with a country, distinct security questions, no work address as
the alternate email, and nothing wider than a 360 px phone."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import (
    Api,
    create_user,
    latest_code,
    outbox,
    own_page,
    save_policy,
    screenshot,
    user_token,
)
from tests.e2e.test_register_and_outbox_pages import register_by_code, sign_in

CODE_METHODS = {"email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
                "appNotification": False, "securityQuestions": False}


def admin(host: FunctionHost, emulator: GraphEmulator) -> Api:
    return Api(host, user_token(emulator, "admin@contoso.example"))


def announced_beside(page: Any, panel: str, text: str) -> None:
    """`text` shows inside `panel` (where the person pressed), in view, in a live region."""
    found = page.locator(f"{panel} [role=status], {panel} [role=alert]", has_text=text).first
    expect(found).to_be_visible()
    assert found.evaluate("(e) => e.getBoundingClientRect().bottom <= window.innerHeight && "
                          "e.getBoundingClientRect().top >= 0"), f"{text!r} is off-screen"


def test_p06_feedback_shows_beside_the_control_pressed_and_is_announced(
        browser: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    save_policy(admin(pages_host, e2e_emulator), methodsRequired=1, methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "fia.feedback")
    with own_page(browser, "p06-feedback", height=600) as page:
        sign_in(page, f"{pages_host.base_url}/api/pages/register", "fia.feedback@contoso.example")
        before = len(outbox(e2e_emulator))
        page.fill("#email", "fia.private@example.org")
        page.click("#email-send")
        announced_beside(page, "#add-email", "We sent a code to f***@example.org")
        code = latest_code(e2e_emulator, "fia.private@example.org", after=before)
        page.fill("#verify-code", str((int(code) + 1) % 10 ** len(code)).zfill(len(code)))
        page.click("#verify-submit")
        announced_beside(page, "#add-email", "That code is not valid")
        screenshot(page, "issue15-p06-feedback-beside-control")
        page.click("#verify-resend")
        announced_beside(page, "#add-email", "A new code is on its way")
        page.fill("#verify-code", latest_code(e2e_emulator, "fia.private@example.org", after=before + 1))
        page.click("#verify-submit")
        announced_beside(page, "#add-email", "Email added.")
        expect(page.locator("tr[data-method=email]")).to_have_count(1)


def test_p07_status_in_plain_words_national_numbers_and_distinct_questions(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    save_policy(admin(pages_host, e2e_emulator), methodsRequired=2,
                methodsAllowed={**CODE_METHODS, "securityQuestions": True},
                securityQuestions={"registerCount": 3, "resetCount": 3, "customQuestions": []})
    create_user(e2e_emulator, "nora.national")  # usageLocation SE, English browser
    sign_in(page, f"{pages_host.base_url}/api/pages/register", "nora.national@contoso.example")
    status = page.locator("#status")
    expect(status).to_contain_text("add 2 methods")
    assert "null" not in (status.text_content() or "")
    expect(page.locator("#reconfirm")).to_be_hidden()  # nothing to confirm yet

    assert page.input_value("#mobilePhone-region") == "SE"  # from the user's usage location
    register_by_code(page, e2e_emulator, "mobilePhone", "070-555 12 34", "+46705551234")
    expect(status).to_contain_text("1 usable method,")
    expect(page.locator("#reconfirm")).to_be_visible()

    page.click("#questions-start")
    page.wait_for_selector("#questions-form:not([hidden])")
    first = page.input_value("#question-0")
    offered = page.locator("#question-1 option:not([disabled])").evaluate_all("(os) => os.map((o) => o.value)")
    screenshot(page, "issue15-p07-status-phone-questions")
    assert first not in offered, "a question chosen once is not offered again"


def test_p08_the_work_address_is_refused_as_alternate_email(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    save_policy(admin(pages_host, e2e_emulator), methodsRequired=1, methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "walt.work")
    sign_in(page, f"{pages_host.base_url}/api/pages/register", "walt.work@contoso.example")
    before = len(outbox(e2e_emulator))
    page.fill("#email", "walt.work@contoso.example")
    page.click("#email-send")
    announced_beside(page, "#add-email", "not your work address")
    screenshot(page, "issue15-p08-work-address-refused")
    assert len(outbox(e2e_emulator)) == before, "no code goes to the work address"
    assert page.get_attribute("#email", "aria-invalid") == "true"


def test_p09_nothing_is_wider_than_a_360_px_phone(browser: Any, pages_host: FunctionHost,
                                                  e2e_emulator: GraphEmulator) -> None:
    save_policy(admin(pages_host, e2e_emulator), methodsRequired=1, methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "pia.phone")
    with own_page(browser, "p09-register-360", width=360, height=740) as page:
        sign_in(page, f"{pages_host.base_url}/api/pages/register", "pia.phone@contoso.example")
        register_by_code(page, e2e_emulator, "email", "pia.phone.private@example.org", "pia.phone.private@example.org")
        register_by_code(page, e2e_emulator, "mobilePhone", "+46 70 555 98 76", "+46705559876")
        screenshot(page, "issue15-p09-register-360px")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
        remove = page.locator("tr[data-method=mobilePhone] button[data-remove]")
        remove.scroll_into_view_if_needed()
        box = remove.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    with own_page(browser, "p09-compliance-360", width=360, height=740) as page:
        sign_in(page, f"{pages_host.base_url}/api/pages/admin#compliance", "admin@contoso.example")
        page.wait_for_selector("#compliance-state:not(:empty)")
        screenshot(page, "issue15-p09-compliance-360px")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
