"""A helpdesk agent on /helpdesk and the caller on their own /reset page, in Chromium: the agent finds the caller,
sends a code to the user's registered address, types back what the caller reads, and sends a one-time reset link;
the user opens it and sets their own password. Wrong codes lock the verification; an administrator needs a second
agent; an account without the role is told so; the user hears of it all."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from devtools.tokens import DEMO_PASSWORD
from tests.e2e.conftest import (
    ARTIFACTS,
    PILOT_GROUP,
    api_as,
    can_sign_in,
    create_user,
    latest_code,
    outbox,
    register_email,
    save_policy,
    screenshot,
    show_step,
    wait_for,
)
from tests.e2e.test_passkeys import Authenticator, add_passkey, origin
from tests.e2e.test_register_and_outbox_pages import sign_in

AGENT = "helpdesk@contoso.example"
NEW_PASSWORD = "Quiet-Harbour-Lamp-58"
SERVICE_APP = "c0ffee00-5e1f-4ea5-b0a7-0000000000a1"


def caller(pages_host: FunctionHost, emulator: GraphEmulator, name: str, **fields: Any) -> tuple[str, str]:
    """A new member with a registered private address: (upn, address)."""
    create_user(emulator, name, **fields)
    upn, address = f"{name}@contoso.example", f"{name}.home@example.org"
    register_email(pages_host, emulator, upn, address)
    return upn, address


def open_caller(page: Any, pages_host: FunctionHost, name: str) -> None:
    page.fill("#search", name)
    page.click("#find-go")
    page.click(f"#results button:has-text('{name.title()}')")
    page.wait_for_selector("#caller:not([hidden])")


def verify_by_mail(page: Any, emulator: GraphEmulator, address: str) -> None:
    page.click("#start")
    page.wait_for_selector("#verify:not([hidden])")
    before = len(outbox(emulator))
    page.click("#send-buttons button[data-send=email]")
    expect(page.locator("#send-box .feedback")).to_contain_text("on its way")
    page.fill("#code", latest_code(emulator, address, after=before))
    page.click("#check")
    page.wait_for_selector("#actions:not([hidden])")


def test_a_verified_caller_gets_a_reset_link_and_sets_their_own_password(
        browser: Any, page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    upn, address = caller(pages_host, e2e_emulator, "hana.helped")
    sign_in(page, f"{pages_host.base_url}/api/pages/helpdesk?lang=en", AGENT)
    open_caller(page, pages_host, "hana.helped")
    methods = page.text_content("#caller-methods") or ""
    assert address not in methods and "h***@example.org" in methods, "the agent sees contacts masked"
    screenshot(page, "helpdesk-caller")
    # Nothing on the page takes a number or an address from the caller: the only inputs are the search and the code.
    assert page.locator("#verify input, #actions input").count() == 1
    verify_by_mail(page, e2e_emulator, address)
    expect(page.locator("#verify-state")).to_have_text("Verified with Email.")
    page.click("#action-list button[data-action=reset-link]")
    expect(page.locator("#actions .feedback")).to_contain_text("a one-time link went to h***@example.org")
    screenshot(page, "helpdesk-verified-link-sent")

    link = wait_for(lambda: next((re.search(r'href="([^"]+#link=[^"]+)"', m["body"]).group(1)  # type: ignore[union-attr]
                                  for m in outbox(e2e_emulator) if address in m["to"] and "#link=" in m["body"]), None),
                    what="the reset link")
    assert link not in (page.content() or "")
    # The mail names the deployment's public URL (SSPR_PUBLIC_BASE_URL); this test's host serves the same path.
    link = f"{pages_host.base_url}/api/pages{link.split('/api/pages', 1)[1]}"
    user = browser.new_context(locale="en-US").new_page()
    user.goto(link)
    show_step(user, "password")
    assert "#link=" not in user.url, "the link leaves the address bar"
    expect(user.locator("#link-intro")).to_be_visible()
    user.fill("#password", NEW_PASSWORD)
    user.fill("#password2", NEW_PASSWORD)
    user.click("#set-password")
    show_step(user, "done")
    screenshot(user, "helpdesk-link-reset-done")
    assert can_sign_in(e2e_emulator, upn, NEW_PASSWORD)
    again = user.context.new_page()
    again.goto(link)
    expect(again.locator("#start-form [role=alert]")).to_contain_text("expired or was already used")
    notices = wait_for(lambda: [m for m in outbox(e2e_emulator) if address in m["to"]
                                and "sent you a one-time link" in m["body"]], what="the user's notice")
    assert "Hal Helpdesk" in notices[0]["body"]
    # The audit rows of this one verified recovery, oldest first, kept beside the screenshots (artifacts).
    admin = api_as(pages_host, e2e_emulator)
    user_id = httpx.get(f"{e2e_emulator.base_url}/_emulator/users/{upn}", timeout=10).json()["id"]
    rows = admin.get("/manage/audit", params={"user": user_id}).json()["value"]
    kept = [{k: r.get(k) for k in ("time", "activity", "actorDisplay", "outcome", "reason")} for r in reversed(rows)]
    (ARTIFACTS / "helpdesk-recovery-audit.json").write_text(json.dumps(kept, indent=1, ensure_ascii=False))
    activities = [r["activity"] for r in kept]
    for expected in ("Verify caller identity (helpdesk)", "Send password reset link (helpdesk)",
                     "Reset password (helpdesk-verified)"):
        assert expected in activities, activities


def test_a_wrong_code_read_back_five_times_locks_the_verification_in_swedish(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    _, address = caller(pages_host, e2e_emulator, "vera.wrong")
    sign_in(page, f"{pages_host.base_url}/api/pages/helpdesk?lang=sv", AGENT)
    expect(page.locator("h1")).to_have_text("Support: kontrollera vem som ringer")
    open_caller(page, pages_host, "vera.wrong")
    page.click("#start")
    before = len(outbox(e2e_emulator))
    page.click("#send-buttons button[data-send=email]")
    right = latest_code(e2e_emulator, address, after=before)  # the code exists: wrong ones now count
    for attempt in range(5):
        page.fill("#code", f"{(int(right) + 1) % 10**8:08d}")
        with page.expect_response(lambda r: r.url.endswith("/verify")):
            page.click("#check")
        if attempt < 4:  # told beside the field, in Swedish
            expect(page.locator("#code-form .feedback")).to_contain_text("Koden är inte giltig")
    expect(page.locator("#verify-state")).to_contain_text("Låst efter fem felaktiga koder")
    expect(page.locator("#code-form")).to_be_hidden()
    expect(page.locator("#actions")).to_be_hidden()
    screenshot(page, "helpdesk-locked-sv")


def test_an_administrator_caller_needs_a_second_agents_approval(
        browser: Any, page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    upn, address = caller(pages_host, e2e_emulator, "adam.admin", roles=["User Administrator"])
    sign_in(page, f"{pages_host.base_url}/api/pages/helpdesk?lang=en", AGENT)
    open_caller(page, pages_host, "adam.admin")
    expect(page.locator("#caller-four-eyes")).to_be_visible()
    verify_by_mail(page, e2e_emulator, address)
    page.click("#action-list button[data-action=reset-link]")
    expect(page.locator("#actions .feedback")).to_contain_text("A second helpdesk agent must approve")
    assert not [m for m in outbox(e2e_emulator) if address in m["to"] and "#link=" in m["body"]]

    second = f"agent-{uuid.uuid4().hex[:6]}@contoso.example"
    httpx.post(f"{e2e_emulator.base_url}/_emulator/users", timeout=10, json={
        "userPrincipalName": second, "displayName": "Greta Second", "password": DEMO_PASSWORD,
        "appRoles": {SERVICE_APP: ["SSPR.Helpdesk"]}}).raise_for_status()
    other = browser.new_context(locale="en-US").new_page()
    sign_in(other, f"{pages_host.base_url}/api/pages/helpdesk?lang=en", second)
    request = other.locator("#approval-list li", has_text=upn)
    expect(request).to_contain_text("Hal Helpdesk asks to send a one-time reset link")
    screenshot(other, "helpdesk-four-eyes")
    request.locator("button[data-decide=approve]").click()
    expect(other.locator("#approvals .feedback")).to_contain_text("Approved")
    wait_for(lambda: [m for m in outbox(e2e_emulator) if address in m["to"] and "#link=" in m["body"]],
             what="the approved link")


def test_an_account_without_the_helpdesk_role_is_told_so(page: Any, pages_host: FunctionHost) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/helpdesk?lang=en", "admin@contoso.example", shown="#error")
    expect(page.locator("#error")).to_contain_text("does not hold the SSPR.Helpdesk role")
    expect(page.locator("#find")).to_be_hidden()


def test_a_caller_confirms_with_their_passkey_on_their_own_device(
        browser: Any, page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    admin = api_as(pages_host, e2e_emulator)
    save_policy(admin, methodsAllowed={"email": True, "mobilePhone": True, "officePhone": False,
                                       "authenticatorApp": True, "appNotification": False, "passkey": True,
                                       "securityQuestions": False})
    upn, address = caller(pages_host, e2e_emulator, "pia.passkey")
    own_device = browser.new_context(locale="en-US").new_page()
    authenticator = Authenticator(own_device)
    add_passkey(own_device, pages_host, upn, "Phone")

    sign_in(page, f"{pages_host.base_url}/api/pages/helpdesk?lang=en", AGENT)
    open_caller(page, pages_host, "pia.passkey")
    page.click("#start")
    page.click("#ask-passkey")
    expect(page.locator("#passkey-waiting")).to_be_visible()
    mail = wait_for(lambda: next((m for m in outbox(e2e_emulator) if address in m["to"] and "#confirm=" in m["body"]),
                                 None), what="the confirmation mail")
    verification = re.search(r"#confirm=([0-9a-f-]{36})", mail["body"]).group(1)  # type: ignore[union-attr]
    own_device.goto(f"{origin(pages_host)}/api/pages/reset#confirm={verification}")
    show_step(own_device, "confirm")
    used_before = authenticator.credentials()[0]["signCount"]
    own_device.click("#confirm-passkey")
    expect(own_device.locator("#confirm-done")).to_be_visible()
    assert authenticator.credentials()[0]["signCount"] > used_before
    screenshot(own_device, "helpdesk-passkey-confirmed")
    page.click("#passkey-check")
    expect(page.locator("#verify-state")).to_have_text("Verified with Passkey.")
    expect(page.locator("#actions")).to_be_visible()
    screenshot(page, "helpdesk-verified-by-passkey")


def test_an_admin_picks_the_protected_group_by_name_and_its_members_need_four_eyes(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    member = create_user(e2e_emulator, "gus.guarded")  # a member of SSPR Pilot
    admin = api_as(pages_host, e2e_emulator)
    agent = api_as(pages_host, e2e_emulator, AGENT)
    assert agent.get(f"/helpdesk/users/{member['id']}").json()["fourEyes"] is False
    sign_in(page, f"{pages_host.base_url}/api/pages/admin?lang=en#policy", "admin@contoso.example")
    field = page.locator("#policy-helpdesk-protectedGroupId")
    field.fill("pilot")
    page.click("#policy-fields button[data-group-id='c0ffee00-5e1f-4ea5-b0a7-000000002001']")
    expect(page.locator("#policy-helpdesk-protectedGroupId-chosen")).to_have_text("Chosen: SSPR Pilot")
    try:
        page.click("#policy-save")
        expect(page.locator("#policy-form [role=status]")).to_contain_text("saved")
        screenshot(page, "admin-protected-group")
        assert admin.get("/manage/policy").json()["helpdesk"]["protectedGroupId"] == PILOT_GROUP
        view = agent.get(f"/helpdesk/users/{member['id']}").json()
        assert view["protectedGroup"] is True and view["fourEyes"] is True
    finally:
        policy = admin.get("/manage/policy").json()
        save_policy(admin, helpdesk={**policy["helpdesk"], "protectedGroupId": None})
