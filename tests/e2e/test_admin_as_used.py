"""The admin page as an admin setting up SSPR uses it (issue 15, points 1-5): groups picked by name, a form that
never sends what the API refuses, names instead of object ids, scope set in one place with eligibility counted for
the scope in view, and progress, audit and CSV that say what is going on."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import httpx
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import (
    PILOT_GROUP,
    Api,
    enable,
    in_view,
    register_email,
    save_policy,
    screenshot,
    user_token,
    wait_for,
)
from tests.e2e.test_register_and_outbox_pages import sign_in

FINANCE_GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002002"
AUDITORS_GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002003"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def admin_api(host: FunctionHost, emulator: GraphEmulator) -> Api:
    return Api(host, user_token(emulator, "admin@contoso.example"))


def pick_group(page: Any, typed: str, name: str) -> None:
    """Search the directory's groups by `typed` and choose the one called `name`."""
    page.fill("#group-search", typed)
    choice = page.locator("#group-results button", has_text=name).first
    choice.click()
    expect(page.locator("#group-chosen")).to_contain_text(name)


def apply_scope(page: Any) -> None:
    """Apply the scope in view and wait until its run is done (the button is disabled while the page follows it)."""
    page.click("#enable-start")
    expect(page.locator("#enable-start")).to_be_enabled(timeout=60_000)
    expect(page.locator("#enable-progress")).to_have_js_property("value", 100)


def test_p01_a_group_is_found_by_name_with_its_member_count_and_many_are_paged(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    for n in range(12):  # more than one page of the picker (10 a page)
        httpx.post(f"{e2e_emulator.base_url}/_emulator/groups", timeout=10, json={
            "displayName": f"Paging Team {n:02d}", "members": ["casey@contoso.example"] if n == 0 else []},
        ).raise_for_status()
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#enablement", "admin@contoso.example")
    page.select_option("#enable-scope", "selected")
    page.fill("#group-search", "auditors")
    results = page.locator("#group-results li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Finance - Auditors")
    expect(results.first).to_contain_text("2 users")  # Audrey and Frank, as Graph counts the group's users

    page.fill("#group-search", "paging team")
    expect(results).to_have_count(10)
    page.click("#group-more")
    expect(results).to_have_count(12)
    expect(page.locator("#group-more")).to_be_hidden()
    expect(results.nth(0)).to_contain_text("1 user")

    pick_group(page, "SSPR Pil", "SSPR Pilot")
    screenshot(page, "issue15-p01-group-picker")
    apply_scope(page)
    latest = admin_api(pages_host, e2e_emulator).get("/manage/enablement").json()["value"][0]
    assert latest["scope"] == "selected" and latest["groupId"] == PILOT_GROUP


def test_p02_the_form_never_sends_a_refused_body_and_old_notices_go(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
    page.wait_for_selector("#policy-codes-length")
    page.click("#policy-save")
    saved = page.get_by_text("Policy saved.")
    expect(saved).to_be_visible()
    page.fill("#policy-codes-length", "3")
    page.click("#policy-save")
    expect(page.locator('[data-field-error="codes.length"]')).to_be_visible()
    screenshot(page, "issue15-p02-old-notice-gone")
    expect(saved).to_have_count(0)  # the green notice of the earlier save is gone with the new action
    page.click("nav.tabs button[data-tab=audit]")
    page.click("nav.tabs button[data-tab=policy]")
    expect(page.locator('[data-field-error="codes.length"]:visible')).to_have_count(0)
    expect(page.locator("[role=alert]:visible")).to_have_count(0)

    page.click("nav.tabs button[data-tab=enablement]")
    page.select_option("#enable-scope", "selected")
    pick_group(page, "auditors", "Finance - Auditors")
    page.select_option("#enable-scope", "all")
    expect(page.locator("#group-picker")).to_be_hidden()
    apply_scope(page)
    expect(page.locator("[role=alert]:visible")).to_have_count(0)
    latest = admin_api(pages_host, e2e_emulator).get("/manage/enablement").json()["value"][0]
    assert latest["scope"] == "all" and latest["groupId"] is None


def test_p03_compliance_rows_their_csv_and_the_audit_show_names_and_are_searched_by_upn(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    admin = admin_api(pages_host, e2e_emulator)
    save_policy(admin, methodsRequired=1, methodsAllowed={"email": True, "mobilePhone": True, "officePhone": False,
                                                          "authenticatorApp": True, "appNotification": False,
                                                          "securityQuestions": False})
    enable(admin, "selected", AUDITORS_GROUP)
    register_email(pages_host, e2e_emulator, "audrey@contoso.example", "audrey.home@example.org")
    started = admin.post("/manage/compliance/runs", json={"sendReminders": False})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    wait_for(lambda: admin.get(f"/manage/compliance/runs/{run_id}").json()["state"] == "completed", timeout=90,
             what="compliance run completed")

    sign_in(page, f"{pages_host.base_url}/api/pages/admin#compliance", "admin@contoso.example")
    expect(page.locator("#users tr")).to_have_count(2)
    first_cells = page.locator("#users td:first-child").all_text_contents()
    screenshot(page, "issue15-p03-compliance-names")
    assert not any(GUID.match(cell.strip()) for cell in first_cells), first_cells
    assert any("Audrey Auditor" in cell and "audrey@contoso.example" in cell for cell in first_cells), first_cells

    with page.expect_download() as download:
        page.click("#users-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    audrey = [r for r in rows if r.get("userPrincipalName") == "audrey@contoso.example"]
    assert audrey and audrey[0]["displayName"] == "Audrey Auditor", rows[:2]

    page.click("nav.tabs button[data-tab=audit]")
    page.fill("#audit-user", "audrey@contoso.example")
    page.click("#audit-search")
    expect(page.locator("#audit-rows tr").first).to_be_visible()
    screenshot(page, "issue15-p03-audit-by-upn")
    for row in page.locator("#audit-rows tr").all_text_contents():
        assert "audrey@contoso.example" in row or "Audrey Auditor" in row, row


def test_p04_scope_is_set_in_one_place_and_eligibility_counts_the_scope_in_view(
        page: Any, pages_host: FunctionHost) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
    page.wait_for_selector("#policy-codes-length")
    assert page.locator("#policy-scope, #policy-groupId").count() == 0, "scope belongs to one place only"

    page.click("nav.tabs button[data-tab=enablement]")
    page.select_option("#enable-scope", "selected")
    pick_group(page, "finance", "SSPR Pilot - Finance")
    counted = page.locator("#eligibility-scope")
    expect(counted).to_contain_text("SSPR Pilot - Finance")
    expect(counted).to_contain_text("4 users")  # Fiona, Frank, Petra (synced, P1) and Audrey (nested)
    expect(page.locator("#eligibility-affected li")).to_have_count(0)

    page.select_option("#enable-scope", "all")
    expect(counted).not_to_contain_text("SSPR Pilot - Finance")
    affected = page.locator("#eligibility-affected li")
    expect(affected.filter(has_text="Sam Synced")).to_have_count(1)
    expect(affected.filter(has_text="synced.user@contoso.example")).to_have_count(1)
    screenshot(page, "issue15-p04-eligibility-of-scope")


def test_p05_progress_says_what_it_does_the_audit_opens_with_events_and_its_csv_details_are_json(
        page: Any, pages_host: FunctionHost) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#enablement", "admin@contoso.example")
    page.evaluate("""() => { window.seenStatus = [];
        new MutationObserver(() => window.seenStatus.push(document.querySelector('#enable-status').textContent))
          .observe(document.querySelector('#enable-status'), {childList: true, characterData: true, subtree: true}); }""")
    for scope in ("all", "none", "all"):  # each run reads the directory, then tidies up the rows of who left
        page.select_option("#enable-scope", scope)
        apply_scope(page)
    seen: list[str] = page.evaluate("() => window.seenStatus")
    stuck = [text for text in seen if re.search(r"\b(\d+) of \1 users", text) and "100%" not in text]
    assert not stuck, f"shown while finishing: {stuck}"

    page.click("nav.tabs button[data-tab=audit]")
    expect(page.locator("#audit-rows tr").first).to_be_visible()  # without pressing Search
    screenshot(page, "issue15-p05-audit-on-open")
    with page.expect_download() as download:
        page.click("#audit-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    details = [r["details"] for r in rows if r["details"]]
    assert details, "some events carry details"
    assert all(isinstance(json.loads(d), dict) for d in details), details[:3]


def test_p06_the_policy_saved_notice_shows_beside_save(page: Any, pages_host: FunctionHost) -> None:
    page.set_viewport_size({"width": 1280, "height": 600})
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
    page.wait_for_selector("#policy-codes-length")
    page.click("#policy-save")
    notice = page.locator("#policy-form [role=status]", has_text="Policy saved.")
    expect(notice).to_be_visible()
    assert in_view(page, "#policy-form [role=status]")
