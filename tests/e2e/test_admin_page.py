"""An admin signs in on /admin: policy validation per field, enabling a Selected group with live progress to
100%, a compliance dashboard that shows the numbers the API returns, and who expires when (with the reminder mails
rendered for a look in both languages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import PILOT_GROUP, Api, outbox, save_policy, screenshot, user_token, wait_for
from tests.e2e.test_register_and_outbox_pages import sign_in


def test_the_policy_editor_shows_the_apis_message_beside_the_field(page: Any, pages_host: FunctionHost) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#policy", "admin@contoso.example")
    page.wait_for_selector("#policy-codes-length")
    page.fill("#policy-codes-length", "3")
    page.click("#policy-save")
    message = page.locator('[data-field-error="codes.length"]')
    message.wait_for(state="visible")
    assert message.text_content()
    assert page.get_attribute("#policy-codes-length", "aria-invalid") == "true"
    assert page.locator("#policy-form [role=alert]").is_visible()
    screenshot(page, "admin-policy-validation")


def test_an_admin_enables_a_selected_group_and_watches_progress_reach_100(page: Any, pages_host: FunctionHost,
                                                                          e2e_emulator: GraphEmulator) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#enablement", "admin@contoso.example")
    page.select_option("#enable-scope", "selected")
    page.fill("#group-search", "pilot")
    page.locator("#group-results button", has_text="SSPR Pilot").first.click()
    page.click("#enable-start")
    expect(page.locator("#enable-start")).to_be_enabled(timeout=60_000)  # disabled while the page follows the run
    expect(page.locator("#enable-progress")).to_have_js_property("value", 100)
    status = page.text_content("#enable-status") or ""
    assert status.startswith("Done (100%)")
    screenshot(page, "admin-enablement")
    admin = Api(pages_host, user_token(e2e_emulator, "admin@contoso.example"))
    latest = admin.get("/manage/enablement").json()["value"][0]
    assert latest["state"] == "completed" and latest["scope"] == "selected" and latest["groupId"] == PILOT_GROUP
    assert f"{latest['inScope']} users" in status


def test_the_compliance_dashboard_shows_the_numbers_the_api_returns(page: Any, pages_host: FunctionHost,
                                                                    e2e_emulator: GraphEmulator) -> None:
    admin = Api(pages_host, user_token(e2e_emulator, "admin@contoso.example"))
    started = admin.post("/manage/compliance/runs", json={"sendReminders": False})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    run = wait_for(lambda: (doc := admin.get(f"/manage/compliance/runs/{run_id}").json())["state"] == "completed"
                   and doc, timeout=90, what="compliance run completed")

    sign_in(page, f"{pages_host.base_url}/api/pages/admin#compliance", "admin@contoso.example")
    page.wait_for_selector("#chart-reasons svg, #chart-reasons p")
    shown = {name: page.text_content(f'[data-count="{name}"]') for name in
             ("users", "capable", "registered", "enabled", "notRegistered", "reconfirmOverdue")}
    assert shown == {"users": str(run["users"]), "capable": str(run["capable"]),
                     "registered": str(run["users"] - run["notRegistered"]),
                     "enabled": str(run["users"] - run["notEnabled"]), "notRegistered": str(run["notRegistered"]),
                     "reconfirmOverdue": str(run["reconfirmOverdue"])}
    for method, count in run["byMethod"].items():
        assert page.text_content(f'#chart-methods [data-value="{method}"]') == str(count)
    for reason in run["topReasons"]:
        assert page.text_content(f'#chart-reasons [data-value="{reason["reason"]}"]') == str(reason["users"])
    api_users = admin.get(f"/manage/compliance/runs/{run_id}/users", params={"pageSize": 50}).json()["value"]
    expect(page.locator("#users tr")).to_have_count(len(api_users))

    page.select_option("#filter-status", "notRegistered")
    page.click("#users-apply")
    filtered = admin.get(f"/manage/compliance/runs/{run_id}/users",
                         params={"pageSize": 50, "status": "notRegistered"}).json()["value"]
    expect(page.locator("#users tr")).to_have_count(len(filtered))
    assert all(cell == "Not registered" for cell in page.locator("#users td:nth-child(2)").all_text_contents())
    with page.expect_download() as download:
        page.click("#users-csv")
    assert download.value.suggested_filename == "compliance-users.csv"
    screenshot(page, "admin-compliance")


def test_the_password_expiry_tab_shows_who_expires_when_and_the_reminders_read_well_in_both_languages(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> None:
    now = datetime.now(UTC)
    for user_id, days_ago in (("c0ffee00-5e1f-4ea5-b0a7-000000001003", 83), ("c0ffee00-5e1f-4ea5-b0a7-000000001004", 88)):
        httpx.patch(f"{e2e_emulator.base_url}/_emulator/users/{user_id}", timeout=10, json={
            "lastPasswordChangeDateTime": (now - timedelta(days=days_ago)).isoformat()}).raise_for_status()
    admin = Api(pages_host, user_token(e2e_emulator, "admin@contoso.example"))
    reminders = admin.get("/manage/policy").json()["expiryReminders"]
    save_policy(admin, expiryReminders={**reminders, "enabled": True})
    try:
        started = admin.post("/manage/password-expiry/runs", json={"sendReminders": True})
        assert started.status_code == 202, started.text
        run = wait_for(lambda: (doc := admin.get(f"/manage/password-expiry/runs/{started.json()['id']}").json())[
            "state"] == "completed" and doc, what="password expiry run completed")
    finally:
        save_policy(admin, expiryReminders=reminders)

    sign_in(page, f"{pages_host.base_url}/api/pages/admin#expiry", "admin@contoso.example")
    expect(page.locator('[data-expiry="users"]')).to_have_text(str(run["users"]))
    shown = {name: page.text_content(f'[data-expiry="{name}"]') for name in ("within7", "within14", "within30",
                                                                            "expired")}
    assert shown == {name: str(run[name]) for name in shown}
    for stage, sent in run["remindersByStage"].items():
        assert page.text_content(f'#expiry-stages [data-stage="{stage}"] td:nth-child(2)') == str(sent)
    week = admin.get(f"/manage/password-expiry/runs/{run['id']}/users", params={"within": "7"}).json()["value"]
    expect(page.locator("#expiry-users tr")).to_have_count(len(week))
    assert {"casey@contoso.example", "sven@contoso.example"} <= set(page.locator("#expiry-users td:first-child")
                                                                     .all_text_contents())
    with page.expect_download() as download:
        page.click("#expiry-csv")
    assert download.value.suggested_filename == "password-expiry-users.csv"
    screenshot(page, "admin-password-expiry")

    def reminder(address: str) -> dict[str, Any] | None:
        return next((m for m in outbox(e2e_emulator) if address in m["to"] and m["subject"].startswith(
            ("Your password expires", "Ditt lösenord går ut"))), None)

    english = wait_for(lambda: reminder("casey@contoso.example"), what="Casey's reminder")
    swedish = wait_for(lambda: reminder("sven@contoso.example"), what="Sven's reminder")
    for mail, language, says in ((english, "en", "expires on"), (swedish, "sv", "går ut")):
        page.set_content(mail["body"])
        assert says in page.inner_text("body") and page.locator("a").count() == 2
        screenshot(page, f"password-expiry-reminder-{language}")
