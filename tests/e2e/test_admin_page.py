"""An admin signs in on /admin: policy validation per field, enabling a Selected group with live progress to
100%, and a compliance dashboard that shows the numbers the API returns."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import PILOT_GROUP, Api, screenshot, user_token, wait_for
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
    assert page.locator("#error").is_visible()
    screenshot(page, "admin-policy-validation")


def test_an_admin_enables_a_selected_group_and_watches_progress_reach_100(page: Any, pages_host: FunctionHost,
                                                                          e2e_emulator: GraphEmulator) -> None:
    sign_in(page, f"{pages_host.base_url}/api/pages/admin#enablement", "admin@contoso.example")
    page.select_option("#enable-scope", "selected")
    page.fill("#enable-group", PILOT_GROUP)
    page.click("#enable-start")
    expect(page.locator("#enable-progress")).to_have_js_property("value", 100, timeout=60_000)
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
