"""Passkeys through the real pages, with Chromium's virtual authenticator (CDP WebAuthn: internal transport, resident
keys, user verification on): a user adds a passkey on /register and resets with it on /reset without any code; a
cloned authenticator (its sign counter gone back), another relying party's credential and a removed passkey are
each refused (security.md I1).

The pages are opened at http://localhost:<port> - the host's public origin - because a WebAuthn RP id is a domain
name, never an IP address. The other relying party is http://evil.localhost:<port>: Chromium sends every
*.localhost name to the loopback address, so the same host serves it, on another origin.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from devtools.stack import FunctionHost, GraphEmulator
from tests.e2e.conftest import can_sign_in, enrol, outbox, screenshot, show_step
from tests.e2e.test_register_and_outbox_pages import sign_in
from tests.e2e.test_reset_page import new_password, prove_email, start

USERS = ["petra.passkey", "klas.clone", "ebba.elsewhere", "rut.removed", "tara.tap", "mia.mfa"]
REFUSED = "That passkey was not accepted. Use another passkey, or another method."
NEW_PASSWORD = "Harbour-Lantern-47!"


def origin(host: FunctionHost, name: str = "localhost") -> str:
    return f"http://{name}:{host.port}"


@pytest.fixture(scope="module")
def passkey_users(pages_host: FunctionHost, e2e_emulator: GraphEmulator) -> Iterator[list[str]]:
    """Enabled users with a private email each; passkeys and email allowed, one method required."""
    enrol(pages_host, e2e_emulator, USERS, methodsRequired=1, methodsAllowed={
        "email": True, "mobilePhone": False, "officePhone": False, "authenticatorApp": False,
        "appNotification": False, "passkey": True, "securityQuestions": False},
        temporaryAccessPass={"insteadOfPassword": True, "afterPassword": False, "lifetimeMinutes": 60,
                             "oneTimeUse": True}, entraMethods={"count": True},
        with_email=USERS[:-1])  # mia.mfa registers nothing here: only her Microsoft account's phone
    yield USERS


class Authenticator:
    """A virtual platform authenticator of the page's browser context (Chrome DevTools Protocol, WebAuthn)."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.add()

    def add(self) -> str:
        return str(self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"])

    def credentials(self) -> list[dict[str, Any]]:
        return list(self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"])

    def replace_with(self, credential: dict[str, Any]) -> None:
        """A new authenticator holding `credential` (e.g. a clone) instead of this one."""
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})
        self.id = self.add()
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential})


def add_passkey(page: Any, host: FunctionHost, upn: str, name: str) -> None:
    sign_in(page, f"{origin(host)}/api/pages/register", upn)
    page.fill("#passkey-name", name)
    page.click("#passkey-add")
    expect(page.locator(f'li[data-passkey="{name}"]')).to_be_visible()


def reset_with_passkey(page: Any, host: FunctionHost, upn: str) -> None:
    page.goto(f"{origin(host)}/api/pages/reset")
    start(page, upn)
    page.check("#method-passkey")
    expect(page.locator("#contact-field")).to_be_hidden()
    page.click("#send")


def test_a_user_adds_a_passkey_and_resets_with_it_without_a_code(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, passkey_users: list[str]) -> None:
    authenticator = Authenticator(page)
    add_passkey(page, pages_host, "petra.passkey@contoso.example", "Work laptop")
    expect(page.locator("#add-passkey [role=status]")).to_have_text("Passkey “Work laptop” added.")
    expect(page.locator("tr[data-method=passkey]")).to_be_visible()
    screenshot(page, "register-passkey")
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"

    sent_before = len(outbox(e2e_emulator))
    reset_with_passkey(page, pages_host, "petra.passkey@contoso.example")
    show_step(page, "password")
    assert len(outbox(e2e_emulator)) == sent_before  # proven without any code
    assert authenticator.credentials()[0]["signCount"] > credential["signCount"]
    new_password(page)
    screenshot(page, "reset-passkey-done")
    assert can_sign_in(e2e_emulator, "petra.passkey@contoso.example", NEW_PASSWORD)


def test_a_cloned_authenticator_whose_counter_went_back_is_refused(
        page: Any, pages_host: FunctionHost, passkey_users: list[str]) -> None:
    authenticator = Authenticator(page)
    add_passkey(page, pages_host, "klas.clone@contoso.example", "Phone")
    [original] = authenticator.credentials()
    reset_with_passkey(page, pages_host, "klas.clone@contoso.example")  # the original is used: the counter moves
    show_step(page, "password")
    used = authenticator.credentials()[0]
    assert used["signCount"] > original["signCount"]

    authenticator.replace_with({**used, "signCount": 0})  # a copy of the key whose counter lags behind
    reset_with_passkey(page, pages_host, "klas.clone@contoso.example")
    expect(page.locator("#step-method [role=alert]")).to_contain_text(REFUSED)
    expect(page.locator("#step-method")).to_be_visible()
    screenshot(page, "reset-passkey-clone-refused")


def test_a_credential_of_another_relying_party_is_refused(
        page: Any, pages_host: FunctionHost, passkey_users: list[str]) -> None:
    """Another site's passkey, even one carrying the user's credential id and user handle, proves nothing here."""
    authenticator = Authenticator(page)
    add_passkey(page, pages_host, "ebba.elsewhere@contoso.example", "Laptop")
    [ours] = authenticator.credentials()
    authenticator.replace_with({**ours, "rpId": "evil.localhost", "privateKey": _new_private_key()})

    page.goto(f"{origin(pages_host, 'evil.localhost')}/api/pages/reset")
    with page.expect_response(lambda r: r.url.endswith("/api/reset/flows") and r.request.method == "POST") as started:
        start(page, "ebba.elsewhere@contoso.example")
    flow = started.value.json()
    answer = page.evaluate("""async ([flowId, secret]) => {
        const { usePasskey } = await import("/api/pages/assets/passkeys.js");
        const headers = { "Content-Type": "application/json", "X-Flow-Secret": secret };
        const options = await (await fetch(`/api/reset/flows/${flowId}/passkey/options`,
                                           { method: "POST", headers })).json();
        const credential = await usePasskey({ ...options.publicKey, rpId: "evil.localhost" });
        const answer = await fetch(`/api/reset/flows/${flowId}/passkey`,
                                   { method: "POST", headers, body: JSON.stringify({ credential }) });
        return { status: answer.status, body: await answer.json(), id: credential.id };
    }""", [flow["flowId"], flow["flowSecret"]])
    assert answer["id"] == base64.urlsafe_b64encode(base64.b64decode(ours["credentialId"])).decode().rstrip("=")
    assert answer["status"] == 400 and answer["body"]["type"] == "urn:sspr:problem:passkey-not-accepted"


def test_a_removed_passkey_is_refused(page: Any, pages_host: FunctionHost, passkey_users: list[str]) -> None:
    Authenticator(page)
    add_passkey(page, pages_host, "rut.removed@contoso.example", "Old tablet")
    page.click('li[data-passkey="Old tablet"] button')
    expect(page.locator("[data-feedback-zone] [role=status]")).to_have_text("Passkey “Old tablet” removed.")
    expect(page.locator("#passkey-list")).to_be_hidden()

    reset_with_passkey(page, pages_host, "rut.removed@contoso.example")  # the device still holds the key
    expect(page.locator("#step-method [role=alert]")).to_contain_text(REFUSED)
    screenshot(page, "reset-passkey-removed-refused")


def test_a_user_recovers_into_passwordless_with_a_temporary_access_pass(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, passkey_users: list[str]) -> None:
    """Proven by email, the user takes a Temporary Access Pass instead of a new password, signs in with it and
    adds a passkey: no password was chosen at all."""
    page.goto(f"{origin(pages_host)}/api/pages/reset")
    start(page, "tara.tap@contoso.example")
    prove_email(page, e2e_emulator, "tara.tap.private@example.org")
    show_step(page, "password")
    page.click("#access-pass-instead")
    show_step(page, "access-pass")
    the_pass = page.text_content("#access-pass") or ""
    assert len(the_pass) >= 8
    expect(page.locator("#access-pass-validity")).to_contain_text("It works once, until")
    expect(page.locator("#access-pass-password")).to_have_text("Your password was not changed.")
    screenshot(page, "reset-access-pass")

    Authenticator(page)
    page.goto(f"{origin(pages_host)}/api/pages/register")
    page.click("#signin")
    page.fill("#username", "tara.tap@contoso.example")
    page.fill("#password", the_pass)
    page.click("#signin")
    page.wait_for_selector("#signed-in:not([hidden])")
    page.fill("#passkey-name", "First passkey")
    page.click("#passkey-add")
    expect(page.locator('li[data-passkey="First passkey"]')).to_be_visible()
    screenshot(page, "register-passkey-after-access-pass")
    assert not can_sign_in(e2e_emulator, "tara.tap@contoso.example", the_pass)  # never a password


def test_a_user_sees_the_methods_of_their_microsoft_account_and_is_registered(
        page: Any, pages_host: FunctionHost, e2e_emulator: GraphEmulator, passkey_users: list[str]) -> None:
    user = httpx.get(f"{e2e_emulator.base_url}/_emulator/users/mia.mfa@contoso.example", timeout=10).json()
    httpx.post(f"{e2e_emulator.base_url}/_emulator/users/{user['id']}/emailMethods", timeout=10,
               json={"emailAddress": "mia.home@example.org"}).raise_for_status()
    sign_in(page, f"{origin(pages_host)}/api/pages/register", "mia.mfa@contoso.example")
    row = page.locator("tr[data-entra-method=email]")
    expect(row).to_contain_text("From your Microsoft account")
    expect(row).to_contain_text("@example.org")
    expect(page.locator("#status-registered")).to_have_text(
        "You are registered: you can reset your password yourself.")
    assert page.locator("tr[data-method]").count() == 0  # nothing registered here
    screenshot(page, "register-entra-methods")


def _new_private_key() -> str:
    """A fresh P-256 key in PKCS#8, base64 (as CDP WebAuthn.Credential.privateKey takes it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode()
