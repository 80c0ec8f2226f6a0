"""Real Chromium (Debian's, never a downloaded one) driving the pages of a host with its own emulator and tables.

The e2e tests change the tenant (new users, new passwords, group members), so they get their own Graph emulator
and their own table and queue prefix: nothing they do can reach the other tests' state. Screenshots of every page
land in tests/e2e/artifacts/.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.stack import DEMO_TENANT_ID, PAGES_APP_ID, FunctionHost, GraphEmulator, private_stack
from devtools.tokens import API_SCOPE, DEMO_PASSWORD
from tests.fixtures import own_emulator

CHROMIUM = os.environ.get("SSPR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PILOT_GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002001"


e2e_emulator = own_emulator("package", "e2e_emulator")


@pytest.fixture(scope="package")
def pages_host(azurite: Azurite, e2e_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    with private_stack("e2e", azurite=azurite, emulator=e2e_emulator) as stack:
        yield stack.host


# Package scope: Playwright's sync API runs an event loop in this thread while it lives, so it must end with
# the e2e tests, before other tests call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# ---- The tenant and the API, as a test sets them up ------------------------------------------------------------

def user_token(emulator: GraphEmulator, upn: str, password: str = DEMO_PASSWORD) -> str:
    response = httpx.post(f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token", timeout=10, data={
        "grant_type": "password", "client_id": PAGES_APP_ID, "username": upn, "password": password, "scope": API_SCOPE})
    response.raise_for_status()
    return str(response.json()["access_token"])


def create_user(emulator: GraphEmulator, name: str, **fields: Any) -> dict[str, Any]:
    """A new cloud member with a P1 licence in the SSPR Pilot group, signing in with the demo password."""
    upn = f"{name}@contoso.example"
    body = {"userPrincipalName": upn, "displayName": name.title(), "password": DEMO_PASSWORD, "licenses": ["SPB"],
            "accountEnabled": True, **fields}
    response = httpx.post(f"{emulator.base_url}/_emulator/users", json=body, timeout=10)
    response.raise_for_status()
    user = dict(response.json())
    httpx.put(f"{emulator.base_url}/_emulator/groups/{PILOT_GROUP}/members/{user['id']}", timeout=10).raise_for_status()
    return user


def outbox(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def latest_code(emulator: GraphEmulator, recipient: str, after: int = 0, timeout: float = 20) -> str:
    """The digits of the newest message to `recipient` among those that arrived after the first `after` ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = outbox(emulator)
        fresh = messages[: max(0, len(messages) - after)]
        for message in fresh:
            if recipient.lower() in [str(r).lower() for r in message.get("to", [])]:
                found = re.search(r"\b(\d{6,10})\b", re.sub(r"<[^>]+>", " ", str(message.get("body", ""))))
                if found:
                    return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no code reached {recipient} within {timeout} s")


class Api:
    """The service's API as an admin or a user calls it (for setting a journey's stage, never for the journey)."""

    def __init__(self, host: FunctionHost, token: str) -> None:
        self.client = httpx.Client(base_url=f"{host.base_url}/api", timeout=30,
                                   headers={"Authorization": f"Bearer {token}"})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def wait_for(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout} s")


def save_policy(admin: Api, **changes: Any) -> dict[str, Any]:
    current = admin.get("/manage/policy")
    current.raise_for_status()
    document = {**current.json(), **changes}
    saved = admin.put("/manage/policy", json=document, headers={"If-Match": current.headers["ETag"]})
    assert saved.status_code == 200, saved.text
    return dict(saved.json())


def enable(admin: Api, scope: str, group_id: str | None = None) -> dict[str, Any]:
    started = admin.post("/manage/enablement", json={"scope": scope, "groupId": group_id})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    return dict(wait_for(lambda: (doc := admin.get(f"/manage/enablement/{run_id}").json())["state"] == "completed"
                         and doc, what="enablement completed"))


def register_email(host: FunctionHost, emulator: GraphEmulator, upn: str, address: str) -> None:
    user = Api(host, user_token(emulator, upn))
    before = len(outbox(emulator))
    started = user.post("/me/security-info/email", json={"address": address})
    assert started.status_code == 202, started.text
    code = latest_code(emulator, address, after=before)
    verified = user.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
