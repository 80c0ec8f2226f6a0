"""Real Chromium (Debian's, never a downloaded one) driving the pages of a host with its own emulator and tables.

The e2e tests change the tenant (new users, new passwords, group members), so they get their own Graph emulator
and their own table and queue prefix: nothing they do can reach the other tests' state. Screenshots of every page
land in tests/e2e/artifacts/.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.onprem_site import STAFF_OU, AdUser, AgentRunner, AgentSite, Domain
from devtools.processes import free_port
from devtools.stack import DEMO_TENANT_ID, PAGES_APP_ID, FunctionHost, GraphEmulator, private_stack
from devtools.tokens import API_SCOPE, DEMO_PASSWORD
from tests.fixtures import own_emulator

CHROMIUM = os.environ.get("SSPR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PILOT_GROUP = "c0ffee00-5e1f-4ea5-b0a7-000000002001"
ADMIN = "admin@contoso.example"
# The methods a reset test allows: every method that proves with a code or the app, nothing else.
CODE_METHODS = {"email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
                "appNotification": False, "securityQuestions": False}


e2e_emulator = own_emulator("package", "e2e_emulator")


@pytest.fixture(scope="package")
def pages_host(azurite: Azurite, e2e_emulator: GraphEmulator) -> Iterator[FunctionHost]:
    """The pages' host; its public origin is http://localhost:<port> (passkeys need a domain name, not an IP)."""
    with private_stack("e2e", azurite=azurite, emulator=e2e_emulator, start_host=False) as stack:
        port = free_port()
        stack.settings["SSPR_PUBLIC_BASE_URL"] = f"http://localhost:{port}"
        yield stack.start_host(port=port)


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Keep each phase's report on the test, so the `page` fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch(page)
    try:
        yield page
    finally:
        keep_failure(page, request)
        context.close()


def keep_failure(page: Any, request: pytest.FixtureRequest) -> None:
    """A failed test leaves what the page showed when it failed: artifacts/failed-<test>.png."""
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            screenshot(page, f"failed-{request.node.name}")
        except Exception:  # a page that crashed has nothing to show; the failure itself is reported
            pass


@contextmanager
def own_page(browser: Any, name: str, *, locale: str = "en-US", width: int = 1280, height: int = 900,
             **options: Any) -> Iterator[Any]:
    """A page in a context of its own (language, size), watched like the `page` fixture's; closed on exit, and
    leaving artifacts/failed-<name>.png when what ran in it failed."""
    context = browser.new_context(locale=locale, viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch(page)
    try:
        yield page
    except BaseException:
        try:
            screenshot(page, f"failed-{name}")
        except Exception:  # a page that crashed has nothing to show; the failure itself is reported
            pass
        raise
    finally:
        context.close()


def watch(page: Any) -> None:
    """Keep what the page said to its console and the API's refusals, for the message of a failed wait."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
    page.on("requestfailed", lambda request: seen.append(f"failed: {request.method} {request.url}"))
    page.on("response", lambda response: response.status >= 400 and seen.append(
        f"{response.status}: {response.request.method} {response.url}"))
    page.sspr_seen = seen


def show_step(page: Any, step: str, timeout: float = 20_000) -> None:
    """Wait until `#step-<step>` is shown; if it never is, fail with what the page showed and said instead."""
    try:
        page.wait_for_selector(f"#step-{step}:not([hidden])", timeout=timeout)
    except Exception as error:  # playwright's TimeoutError: say what a person would have seen
        shown = page.evaluate("""() => ({
            steps: [...document.querySelectorAll('section[id^="step-"]:not([hidden])')].map((s) => s.id),
            alert: document.querySelector('[role=alert]:not([hidden])')?.textContent?.trim() ?? null,
            focused: document.activeElement?.outerHTML?.slice(0, 120) ?? null})""")
        raise AssertionError(f"step {step!r} never showed; the page showed {shown}; "
                             f"it said {getattr(page, 'sspr_seen', [])[-10:]}") from error


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def in_view(page: Any, selector: str) -> bool:
    """Whether the element is inside the viewport as it is now (a person sees it without scrolling)."""
    return bool(page.locator(selector).first.evaluate("""(element) => {
        const box = element.getBoundingClientRect();
        return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight && box.left >= 0
            && box.right <= window.innerWidth; }"""))


AXE_SCRIPT = "/api/pages/assets/vendor/axe-core/axe.min.js"  # vendored by `make install` (web/package.json)


def serious_accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now (WCAG 2.x A and AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_SCRIPT)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a",
            "wcag21aa", "wcag22aa", "best-practice"]}, resultTypes: ["violations"]});
        return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
    }""")
    return list(found)


# ---- The tenant and the API, as a test sets them up ------------------------------------------------------------

def password_grant(emulator: GraphEmulator, upn: str, password: str, scope: str) -> httpx.Response:
    """The tenant's answer to the pages app signing `upn` in with `password` (the emulator's password grant)."""
    return httpx.post(f"{emulator.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token", timeout=10, data={
        "grant_type": "password", "client_id": PAGES_APP_ID, "username": upn, "password": password, "scope": scope})


def user_token(emulator: GraphEmulator, upn: str, password: str = DEMO_PASSWORD) -> str:
    response = password_grant(emulator, upn, password, API_SCOPE)
    response.raise_for_status()
    return str(response.json()["access_token"])


def can_sign_in(emulator: GraphEmulator, upn: str, password: str) -> bool:
    """Whether the directory takes this password now."""
    return password_grant(emulator, upn, password, "openid").status_code == 200


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


def api_as(host: FunctionHost, emulator: GraphEmulator, upn: str = ADMIN) -> Api:
    """The API as `upn` (by default the tenant's administrator) calls it, signed in with the demo password."""
    return Api(host, user_token(emulator, upn))


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


def enrol(host: FunctionHost, emulator: GraphEmulator, names: Iterable[str], *, with_email: Iterable[str] | None = None,
          **policy: Any) -> dict[str, str]:
    """The policy saved with `policy`'s changes, `names` as new members of the SSPR Pilot group, the group enabled
    (its enablement run to its end), and each of `with_email` (by default all) registered with the private address
    `<name>.private@example.org`: those addresses by name."""
    members = list(names)
    admin = api_as(host, emulator)
    save_policy(admin, **policy)
    for name in members:
        create_user(emulator, name)
    enable(admin, "selected", PILOT_GROUP)
    addresses = {name: f"{name}.private@example.org" for name in (members if with_email is None else with_email)}
    for name, address in addresses.items():
        register_email(host, emulator, f"{name}@contoso.example", address)
    return addresses


def register_email(host: FunctionHost, emulator: GraphEmulator, upn: str, address: str) -> None:
    register_through_api(host, emulator, upn, "email", {"address": address}, address)


def register_mobile(host: FunctionHost, emulator: GraphEmulator, upn: str, number: str) -> None:
    register_through_api(host, emulator, upn, "mobilePhone", {"number": number}, number)


def register_through_api(host: FunctionHost, emulator: GraphEmulator, upn: str, method: str, body: dict[str, str],
                         contact: str) -> None:
    """`upn` registers `method` through the API: the code that reaches `contact` proves it."""
    user = api_as(host, emulator, upn)
    before = len(outbox(emulator))
    started = user.post(f"/me/security-info/{method}", json=body)
    assert started.status_code == 202, started.text
    code = latest_code(emulator, contact, after=before)
    verified = user.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text


# ---- A host with the on-premises agent and a real AD (the /change page, synced users on /reset) ----------------

@dataclass
class AgentHost:
    """A host whose password target is the on-premises agent, the agent, its AD and the synced people in it."""

    host: FunctionHost
    emulator: GraphEmulator
    domain: Domain
    agent: AgentRunner
    accounts: dict[str, AdUser]


@contextmanager
def agent_host(domain: Domain, azurite: Azurite, emulator: GraphEmulator, workdir: Path, people: Iterable[str],
               password: str, **policy: Any) -> Iterator[AgentHost]:
    """A host of its own with an agent serving OU=Staff (running until exit), each of `people` synced (an AD account
    in OU=Staff with `password`, and an Entra member tied to it), and the policy saved with `policy`'s changes."""
    site = AgentSite.create(domain, azurite.connection_string, workdir)
    with private_stack(site.prefix, azurite=azurite, emulator=emulator, SSPR_QUEUE_PREFIX=site.prefix,
                       SSPR_ONPREM_AGENT_PUBLIC_KEY=site.public_key, SSPR_ONPREM_WAIT_SECONDS="5",
                       SSPR_ONPREM_JOB_SECONDS="30") as stack:
        agent = AgentRunner(site).start()
        try:
            accounts = {}
            for name in people:
                ad = domain.make_user(STAFF_OU, password=password)
                create_user(emulator, name, onPremisesSyncEnabled=True, onPremisesSecurityIdentifier=ad.sid,
                            onPremisesDistinguishedName=ad.dn)
                accounts[name] = ad
            save_policy(api_as(stack.host, emulator), **policy)
            yield AgentHost(stack.host, emulator, domain, agent, accounts)
        finally:
            agent.stop()
