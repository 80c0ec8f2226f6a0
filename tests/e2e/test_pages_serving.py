"""How the host serves the pages: security.md C5 headers, content types, no path traversal, the dev-only outbox."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from devtools.stack import FunctionHost, GraphEmulator
from shared.config import Environment

PAGES = ["reset", "register", "admin", "dev/outbox"]

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)  # onclick=, onload=, ...


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_html_with_strict_headers(pages_host: FunctionHost, e2e_emulator: GraphEmulator,
                                                name: str) -> None:
    response = httpx.get(f"{pages_host.base_url}/api/pages/{name}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == f"'self' {e2e_emulator.base_url}"  # the authority the sign-in redeems codes at
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.text.split("<body", 1)[1]
    assert "<script>" not in response.text and not INLINE_HANDLER.search(body)  # no inline script of any kind

def test_the_page_language_follows_accept_language_and_the_query(pages_host: FunctionHost) -> None:
    swedish = httpx.get(f"{pages_host.base_url}/api/pages/reset", headers={"Accept-Language": "sv-SE,sv;q=0.9"})
    assert '<html lang="sv">' in swedish.text
    english = httpx.get(f"{pages_host.base_url}/api/pages/reset?lang=en", headers={"Accept-Language": "sv-SE"})
    assert '<html lang="en">' in english.text


def test_the_page_settings_name_the_tenant_and_the_pages_app_and_no_secret(pages_host: FunctionHost) -> None:
    text = httpx.get(f"{pages_host.base_url}/api/pages/register", timeout=10).text
    content = re.search(r'<meta name="sspr-config" content="([^"]+)">', text)
    assert content is not None
    settings = json.loads(html.unescape(content.group(1)))
    assert set(settings) == {"authority", "clientId", "apiScope", "environment", "signInUrl"}
    assert settings["clientId"] == "c0ffee00-5e1f-4ea5-b0a7-0000000000a2"
    assert "dev-sspr-service-secret" not in text


def test_assets_have_their_content_types_and_are_cached_for_an_hour(pages_host: FunctionHost) -> None:
    for path, kind in [("common.js", "text/javascript; charset=utf-8"), ("pages.css", "text/css; charset=utf-8"),
                       ("vendor/altcha/altcha.js", "text/javascript; charset=utf-8"),
                       ("vendor/altcha/worker.js", "text/javascript; charset=utf-8")]:
        response = httpx.get(f"{pages_host.base_url}/api/pages/assets/{path}", timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == kind
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["../pages/reset/index.html", "..%2F..%2Ffunction_app.py", "%2e%2e/%2e%2e/host.json",
                                  "vendor/../../../local.settings.json", "..\\..\\host.json", "/etc/passwd",
                                  "nothing-here.js", ".hidden.js", "vendor"])
def test_no_file_outside_the_assets_folder_is_served(pages_host: FunctionHost, path: str) -> None:
    response = httpx.get(f"{pages_host.base_url}/api/pages/assets/{path}", timeout=10)
    assert response.status_code == 404
    assert b"Values" not in response.content and b"import" not in response.content


def test_texts_are_served_in_both_languages_and_nothing_else(pages_host: FunctionHost) -> None:
    english = httpx.get(f"{pages_host.base_url}/api/pages/i18n/en", timeout=10).json()
    swedish = httpx.get(f"{pages_host.base_url}/api/pages/i18n/sv", timeout=10).json()
    assert english["reset.title"] == "Reset your password" and swedish["reset.title"] == "Återställ ditt lösenord"
    assert httpx.get(f"{pages_host.base_url}/api/pages/i18n/de", timeout=10).status_code == 404


def test_the_dev_outbox_relays_the_emulators_messages_newest_first(pages_host: FunctionHost,
                                                                   e2e_emulator: GraphEmulator) -> None:
    httpx.post(f"{e2e_emulator.base_url}/_emulator/sms", json={"to": "+46701234567", "body": "first"}).raise_for_status()
    httpx.post(f"{e2e_emulator.base_url}/_emulator/sms", json={"to": "+46701234567", "body": "second"}).raise_for_status()
    response = httpx.get(f"{pages_host.base_url}/api/pages/dev/outbox.json", timeout=10)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    bodies = [m["body"] for m in json.loads(response.content)["value"]]
    assert bodies.index("second") < bodies.index("first")


def test_the_outbox_exists_only_outside_azure() -> None:
    from functions.pages import outbox_enabled

    assert outbox_enabled(Environment.DEV)
    assert not outbox_enabled(Environment.AZURE)
