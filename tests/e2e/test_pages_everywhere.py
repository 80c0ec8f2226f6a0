"""What every page owes its readers (issue 15, points 14-18): messages in plain words of the page's language, the
language a person asked for or prefers, a plain "your session ended", the organisation's own name and branding on
pages and mails, and a dev outbox that reads like the mails it shows."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from shared.domain.audit import Activity
from tests.e2e.conftest import (
    Api,
    create_user,
    outbox,
    own_page,
    register_email,
    save_policy,
    screenshot,
    user_token,
)
from tests.e2e.test_register_and_outbox_pages import sign_in

SWEDISH = {"locale": "sv-SE", "extra_http_headers": {"Accept-Language": "sv-SE,sv;q=0.9"}}
CODE_METHODS = {"email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
                "appNotification": False, "securityQuestions": False}


def test_p14_field_messages_are_plain_words_in_the_pages_language(
        browser: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    save_policy(Api(pages_host, user_token(e2e_emulator, "admin@contoso.example")), methodsRequired=1,
                methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "sigrid.svensk", preferredLanguage="sv-SE")
    with own_page(browser, "p14-swedish", **SWEDISH) as page:
        sign_in(page, f"{pages_host.base_url}/api/pages/register", "sigrid.svensk@contoso.example")
        page.fill("#mobilePhone", "12345")
        page.click("#mobilePhone-send")
        message = page.locator("#add-mobilePhone [role=alert]")
        expect(message).to_be_visible()
        text = message.text_content() or ""
        screenshot(page, "issue15-p14-swedish-field-message")
        assert not re.search(r"\b(number|defaultRegion|is not|must)\b", text), text
        assert "telefonnummer" in text.lower(), text

        page.click("#signout")
        page.wait_for_selector("#signed-out:not([hidden])")
        sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
        page.fill("#policy-codes-length", "3")
        page.click("#policy-save")
        field = page.locator('[data-field-error="codes.length"]')
        expect(field).to_be_visible()
        assert re.search(r"mellan 6 och 10", field.text_content() or ""), field.text_content()
        alert = page.locator("#policy-form [role=alert]").first.text_content() or ""
        assert "codes.length" not in alert and "must" not in alert, alert


def test_p15_the_page_speaks_the_language_asked_for_or_preferred(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/admin")
    expect(page.locator("h1")).to_have_text("Password reset administration")
    page.goto(f"{pages_host.base_url}/api/pages/admin?lang=sv")
    expect(page.locator("h1")).to_have_text("Administration av lösenordsåterställning")

    page.goto(f"{pages_host.base_url}/api/pages/admin?lang=en#policy")
    sign_in(page, f"{pages_host.base_url}/api/pages/admin?lang=en#policy", "admin@contoso.example")
    label = page.locator("label[for=policy-codes-length]")
    expect(label).to_have_text("Code length (digits)")
    page.click(".lang-switch button[data-lang=sv]")
    expect(label).to_have_text("Kodlängd (siffror)")  # without a reload

    page.click("nav.tabs button[data-tab=audit]")
    page.click("#audit-search")
    first = page.locator("#audit-rows tr").first
    expect(first).to_be_visible()
    cells = first.locator("td").all_text_contents()
    screenshot(page, "issue15-p15-audit-in-swedish")
    assert cells[1] not in {a.value for a in Activity}, cells
    assert cells[2] not in ("success", "failure"), cells
    page.click("#signout")

    page.evaluate("() => localStorage.clear()")
    sign_in(page, f"{pages_host.base_url}/api/pages/register", "sven@contoso.example")  # sv-SE in the directory
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.locator("h1")).to_have_text("Din säkerhetsinformation")


def test_p16_a_session_that_ended_says_so(page: Any, pages_host: FunctionHost) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
    page.wait_for_selector("#policy-codes-length")
    # What a restarted dev run does to an open page: the token in the tab is no longer one the service accepts.
    page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('sspr-session'));
        s.token = s.token.slice(0, -6) + (s.token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
        sessionStorage.setItem('sspr-session', JSON.stringify(s)); }""")
    page.reload()  # the open page's next call carries the token the service no longer accepts
    ended = page.get_by_text("Your session has ended")
    expect(ended).to_be_visible()
    screenshot(page, "issue15-p16-session-ended")
    expect(page.locator("#signin")).to_be_visible()


def test_p17_pages_and_mails_carry_the_organisations_name_and_branding(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    page.goto(f"{pages_host.base_url}/api/pages/reset")
    expect(page.locator("header .brand")).to_contain_text("Contoso Demo")
    logo = page.locator("header img.brand-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("(img) => img.complete && img.naturalWidth > 0")
    expect(page.locator("#brand-text")).to_contain_text("Contoso IT never asks for your password")
    colour = page.locator("header").evaluate("(h) => getComputedStyle(h).backgroundColor")
    assert colour == "rgb(11, 61, 107)", colour
    screenshot(page, "issue15-p17-branded-reset")
    page.click(".lang-switch button[data-lang=sv]")
    expect(page.locator("#brand-text")).to_contain_text("Contosos IT ber aldrig om ditt lösenord")

    save_policy(Api(pages_host, user_token(e2e_emulator, "admin@contoso.example")), methodsRequired=1,
                methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "molly.mail")
    register_email(pages_host, e2e_emulator, "molly.mail@contoso.example", "molly.mail@example.org")
    mail = next(m for m in outbox(e2e_emulator) if "molly.mail@example.org" in m.get("to", []))
    assert "Contoso Demo" in mail["body"]
    logo_ids = re.findall(r'<img[^>]+src="cid:([^"]+)"', mail["body"])
    assert logo_ids and any(a.get("contentId") == logo_ids[0] and a.get("isInline")
                            for a in mail.get("attachments", [])), mail.get("attachments")


def test_p18_the_outbox_reads_like_its_mails_without_csp_errors_and_the_pages_have_an_icon(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    save_policy(Api(pages_host, user_token(e2e_emulator, "admin@contoso.example")), methodsRequired=1,
                methodsAllowed=CODE_METHODS)
    create_user(e2e_emulator, "otto.outbox")
    register_email(pages_host, e2e_emulator, "otto.outbox@contoso.example", "otto.outbox@example.org")
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{pages_host.base_url}/api/pages/dev/outbox")
    body = page.locator("article[data-channel=mail]", has_text="otto.outbox@example.org").first.locator("pre")
    expect(body).to_be_visible()
    text = body.inner_text()
    screenshot(page, "issue15-p18-outbox")
    assert re.search(r"Hello Otto\.outbox,\s*\n\s*\n?Use this code", text, re.IGNORECASE), text
    assert not [e for e in errors if "Content Security Policy" in e or "404" in e], errors
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and httpx.get(f"{pages_host.base_url}{icon}", timeout=10).status_code == 200
