"""axe-core (vendored from npm, web/assets/vendor/axe-core) finds no serious or critical violation on any page, in
English and Swedish, on a 360 px phone and a 1280 px screen: the reset page's first two steps, the register page,
every section of the admin page, the helpdesk page (signed in, a caller, a verification) and the dev outbox."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.stack import FunctionHost
from tests.e2e.conftest import own_page, screenshot, serious_accessibility_violations
from tests.e2e.test_register_and_outbox_pages import sign_in
from tests.e2e.test_reset_page import start

ADMIN_SECTIONS = ["policy", "enablement", "compliance", "expiry", "audit", "onprem"]


@pytest.mark.parametrize("language,width", [("en", 1280), ("sv", 360), ("sv", 1280), ("en", 360)])
def test_no_serious_or_critical_accessibility_violation(browser: Any, pages_host: FunctionHost, language: str,
                                                        width: int) -> None:
    locale = {"en": "en-US", "sv": "sv-SE"}[language]
    found: dict[str, list[dict[str, Any]]] = {}
    with own_page(browser, f"axe-{language}-{width}", locale=locale, width=width, height=800,
                  extra_http_headers={"Accept-Language": f"{locale},{language};q=0.9"}) as page:

        def check(where: str) -> None:
            violations = serious_accessibility_violations(page)
            if violations:
                found[where] = violations
                screenshot(page, f"axe-{where}-{language}-{width}")

        base = f"{pages_host.base_url}/api/pages"
        page.goto(f"{base}/reset?lang={language}")
        page.wait_for_load_state("networkidle")
        check("reset-start")
        start(page, "somebody@contoso.example")
        check("reset-method")
        page.goto(f"{base}/dev/outbox?lang={language}")
        page.wait_for_load_state("networkidle")
        check("outbox")
        sign_in(page, f"{base}/admin?lang={language}#policy", "admin@contoso.example")
        for section in ADMIN_SECTIONS:
            page.click(f"nav.tabs button[data-tab={section}]")
            page.wait_for_load_state("networkidle")
            check(f"admin-{section}")
        page.goto(f"{base}/register?lang={language}")
        page.wait_for_load_state("networkidle")
        check("register")
        page.evaluate("() => sessionStorage.clear()")  # the admin's session of this tab: the agent signs in anew
        sign_in(page, f"{base}/helpdesk?lang={language}", "helpdesk@contoso.example")
        page.wait_for_load_state("networkidle")
        check("helpdesk-signed-in")
        page.fill("#search", "casey")
        page.click("#find-go")
        page.click("#results button >> nth=0")
        page.wait_for_selector("#caller:not([hidden])")
        check("helpdesk-caller")
        page.click("#start")
        page.wait_for_selector("#verify:not([hidden])")
        check("helpdesk-verify")
    assert not found, found
