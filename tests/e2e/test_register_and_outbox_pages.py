"""A user signs in on /register (authorization code + PKCE at the tenant) and adds email, phone and an app;
the dev outbox page shows what was sent."""

from __future__ import annotations

from typing import Any

import pyotp

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import (
    DEMO_PASSWORD,
    Api,
    api_as,
    create_user,
    latest_code,
    outbox,
    save_policy,
    screenshot,
    serious_accessibility_violations,
    user_token,
)


def sign_in(page: Any, url: str, upn: str, shown: str = "#signed-in") -> None:
    """Sign in on the page at `url` as `upn` with the demo password, and wait until the page shows `shown`."""
    page.goto(url)
    page.click("#signin")
    page.fill("#username", upn)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#signin")
    page.wait_for_selector(f"{shown}:not([hidden])")


def register_by_code(page: Any, emulator: GraphEmulator, method: str, typed: str, delivered_to: str) -> None:
    """Type `typed` into the method's field, ask for a code, type the code the outbox got and see the method listed."""
    before = len(outbox(emulator))
    page.fill(f"#{method}", typed)
    page.click(f"#{method}-send")
    page.fill("#verify-code", latest_code(emulator, delivered_to, after=before))
    page.click("#verify-submit")
    page.wait_for_selector(f"tr[data-method={method}]")


def test_a_user_registers_email_phone_and_an_authenticator_app(page: Any, pages_host: FunctionHost,
                                                                 e2e_emulator: GraphEmulator) -> None:
    admin = Api(pages_host, user_token(e2e_emulator, "admin@contoso.example"))
    save_policy(admin, methodsAllowed={"email": True, "mobilePhone": True, "officePhone": False,
                                       "authenticatorApp": True, "appNotification": False, "securityQuestions": False})
    create_user(e2e_emulator, "rhea.register")
    sign_in(page, f"{pages_host.base_url}/api/pages/register", "rhea.register@contoso.example")
    screenshot(page, "register-signed-in")

    register_by_code(page, e2e_emulator, "email", "rhea.private@example.org", "rhea.private@example.org")
    register_by_code(page, e2e_emulator, "mobilePhone", "+46 70 555 12 34", "+46705551234")

    page.click("#app-start")
    page.wait_for_selector("#app-form:not([hidden])")
    secret = page.text_content("#app-secret") or ""
    assert page.get_attribute("#app-qr", "src", timeout=5000).startswith("data:image/svg+xml;base64,")
    screenshot(page, "register-authenticator-app")
    page.fill("#app-code", pyotp.TOTP(secret).now())
    page.click("#app-verify")
    page.wait_for_selector("tr[data-method=authenticatorApp]")

    assert page.text_content("#status-registered") == "You are registered: you can reset your password yourself."
    contacts = page.locator("#methods td:nth-child(2)").all_text_contents()
    assert any("example.org" in c or "*" in c for c in contacts)
    screenshot(page, "register-done")
    mine = Api(pages_host, user_token(e2e_emulator, "rhea.register@contoso.example")).get("/me/security-info").json()
    assert {m["method"] for m in mine["methods"]} == {"email", "mobilePhone", "authenticatorApp"}


def test_the_outbox_page_lists_sent_messages_newest_first(page: Any, pages_host: FunctionHost,
                                                          e2e_emulator: GraphEmulator) -> None:
    import httpx

    httpx.post(f"{e2e_emulator.base_url}/_emulator/sms", json={"to": "+46700000001", "body": "Your code 11112222"})
    httpx.post(f"{e2e_emulator.base_url}/_emulator/sms", json={"to": "+46700000002", "body": "Your code 33334444"})
    page.goto(f"{pages_host.base_url}/api/pages/dev/outbox")
    page.wait_for_selector("article[data-channel=sms]")
    bodies = page.locator("pre.message-body").all_text_contents()
    assert bodies.index("Your code 33334444") < bodies.index("Your code 11112222")
    screenshot(page, "outbox")


def test_a_synced_user_the_service_cannot_reset_is_told_so_while_registering_and_whom_to_ask(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    """Issue 15 (10): with writeback off, a user synced from on-premises AD is never told "you can reset your
    password yourself", before or after registering: the page says why not and whom to ask, in their language."""
    from playwright.sync_api import expect

    create_user(e2e_emulator, "sigge.synced", onPremisesSyncEnabled=True)
    admin = api_as(pages_host, e2e_emulator)
    helpdesk = save_policy(admin, helpdesk={**admin.get("/manage/policy").json()["helpdesk"],
                                            "url": "https://help.contoso.example"})["helpdesk"]
    try:
        sign_in(page, f"{pages_host.base_url}/api/pages/register", "sigge.synced@contoso.example")
        note = page.locator("#status-cannot-reset")
        expect(note).to_contain_text("kept in your organisation's own directory (on-premises Active Directory), "
                                     "and this service cannot change it. If you forget your password, your "
                                     "helpdesk can reset it.")
        expect(note.locator("a")).to_have_attribute("href", "https://help.contoso.example")
        assert not serious_accessibility_violations(page)
        register_by_code(page, e2e_emulator, "email", "sigge.home@example.org", "sigge.home@example.org")
        expect(note).to_be_visible()  # registering does not change it
        expect(page.locator("#status-registered")).to_have_count(0)
        page.click('.lang-switch button[data-lang="sv"]')
        expect(note).to_contain_text("den här tjänsten kan inte ändra det")
        screenshot(page, "issue15-p10-register-synced")
    finally:
        save_policy(admin, helpdesk={**helpdesk, "url": None})
