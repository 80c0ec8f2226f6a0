"""What the reset tests share: a host whose policy enables everyone, users registered through the real
registration API, and a `Resetter` that walks the anonymous reset API as the /reset page does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.azurite import Azurite
from devtools.stack import FunctionHost, GraphEmulator, api_running, app_settings, host_running
from shared.adapters.proof_of_work import solve
from shared.domain.policy import DEFAULT_DOCUMENT
from tests.integration.outbox import code_sent_to
from tests.integration.tokens import DEMO_PASSWORD, bearer, user_token

ADMIN = "admin@contoso.example"


@dataclass
class Stack:
    """A host of a reset test module's own (its own table prefix), its API client, settings and emulator."""

    host: FunctionHost
    api: httpx.Client
    settings: dict[str, str]
    emulator: GraphEmulator

    def table(self, name: str) -> TableClient:
        return TableServiceClient.from_connection_string(self.settings["AzureWebJobsStorage"]) \
            .get_table_client(f"{self.settings['SSPR_TABLE_PREFIX']}{name}")

    def queue(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self.settings["AzureWebJobsStorage"],
                                                  f"{self.settings['SSPR_QUEUE_PREFIX']}-{name}",
                                                  message_encode_policy=TextBase64EncodePolicy())


def stack_fixture(table_prefix: str) -> Any:
    """A module's `stack` fixture: a host on the session's Azurite and emulator whose tables carry
    `table_prefix`, with its API client."""

    @pytest.fixture(scope="module")
    def stack(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[Stack]:
        settings = app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=table_prefix)
        with host_running(settings) as host, httpx.Client(base_url=f"{host.base_url}/api", timeout=60) as client:
            yield Stack(host, client, settings, graph_emulator)

    return stack


def api_fixture(table_prefix: str, **settings: str) -> Any:
    """A module's `api` fixture: a client of the API of a host on the session's Azurite and emulator whose tables
    carry `table_prefix`, with these settings besides."""

    @pytest.fixture(scope="module")
    def api(azurite: Azurite, graph_emulator: GraphEmulator) -> Iterator[httpx.Client]:
        with api_running(app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=table_prefix, **settings)) as client:
            yield client

    return api


def set_policy(api: httpx.Client, emulator: GraphEmulator, **changes: Any) -> dict[str, Any]:
    admin = bearer(user_token(emulator, ADMIN))
    current = api.get("/manage/policy", headers=admin)
    document = {**DEFAULT_DOCUMENT, **changes}
    saved = api.put("/manage/policy", json=document, headers={**admin, "If-Match": current.headers["ETag"]})
    assert saved.status_code == 200, saved.text
    return dict(saved.json())


def enable_everyone(api: httpx.Client, emulator: GraphEmulator) -> None:
    """Scope All, and wait until the enablement run has materialised every user."""
    admin = bearer(user_token(emulator, ADMIN))
    started = api.post("/manage/enablement", json={"scope": "all"}, headers=admin)
    # A policy change to scope All has already started the run: then wait for that one.
    assert started.status_code in (202, 409), started.text
    run_id = started.json()["id"] if started.status_code == 202 else started.json()["runningRequestId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = api.get(f"/manage/enablement/{run_id}", headers=admin).json()
        if run["state"] in ("completed", "failed"):
            assert run["state"] == "completed", run
            return
        time.sleep(0.3)
    raise AssertionError("enablement run did not finish")


class Member:
    """A user of the emulator's tenant (created for the test), who may register security info."""

    def __init__(self, emulator: GraphEmulator, api: httpx.Client, *, given: str = "Robin", surname: str = "Tester",
                 language: str = "en-US", extra: dict[str, Any] | None = None) -> None:
        self.upn = f"rst-{uuid.uuid4().hex[:10]}@contoso.example"
        created = httpx.post(f"{emulator.base_url}/_emulator/users", timeout=10, json={
            "userPrincipalName": self.upn, "displayName": f"{given} {surname}", "givenName": given,
            "surname": surname, "mail": self.upn, "password": DEMO_PASSWORD, "preferredLanguage": language,
            **(extra or {}),
        })
        assert created.status_code == 201, created.text
        self.id: str = created.json()["id"]
        self.emulator = emulator
        self.api = api
        self.alternate_email = f"{self.upn.split('@')[0]}@alt.example"
        self.mobile = f"+4670{uuid.uuid4().int % 10_000_000:07d}"

    def headers(self) -> dict[str, str]:
        return {**bearer(user_token(self.emulator, self.upn)),
                "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"}

    def register_email(self) -> None:
        self.register_by_code("email", {"address": self.alternate_email}, self.alternate_email)

    def register_mobile(self) -> None:
        self.register_by_code("mobilePhone", {"number": self.mobile}, self.mobile)

    def register_by_code(self, method: str, body: dict[str, str], contact: str) -> None:
        """Register `method` through the API: the code that reaches `contact` proves it."""
        headers = self.headers()
        started = self.api.post(f"/me/security-info/{method}", json=body, headers=headers)
        assert started.status_code == 202, started.text
        code = code_sent_to(self.emulator, contact)
        verified = self.api.post(f"/me/security-info/challenges/{started.json()['challengeId']}/verify",
                                 json={"code": code}, headers=headers)
        assert verified.status_code == 200, verified.text

    def register_app(self) -> str:
        """Register an authenticator app (as the app would: code from the returned seed); the base32 seed."""
        import pyotp

        headers = self.headers()
        started = self.api.post("/me/security-info/authenticatorApp", json={}, headers=headers)
        assert started.status_code == 201, started.text
        setup = started.json()
        verified = self.api.post("/me/security-info/authenticatorApp/verify", headers=headers,
                                 json={"setupId": setup["setupId"], "code": pyotp.TOTP(setup["secret"]).now()})
        assert verified.status_code == 200, verified.text
        return str(setup["secret"])

    def signs_in_with(self, password: str) -> bool:
        """Whether the directory takes this password now (the emulator's password grant)."""
        response = httpx.post(
            f"{self.emulator.base_url}/{self.emulator.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "password", "client_id": "c0ffee00-5e1f-4ea5-b0a7-0000000000a2", "username": self.upn,
                  "password": password, "scope": "api://c0ffee00-5e1f-4ea5-b0a7-0000000000a1/access_as_user"},
            timeout=10,
        )
        return response.status_code == 200


class Resetter:
    """The anonymous caller of /api/reset, from one client IP, as the page walks it."""

    def __init__(self, api: httpx.Client, ip: str | None = None, language: str = "en") -> None:
        self.api = api
        self.ip = ip or f"172.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        self.language = language
        self.flow_id = ""
        self.secret = ""

    def headers(self) -> dict[str, str]:
        return {"X-Forwarded-For": self.ip, "X-Flow-Secret": self.secret, "Accept-Language": self.language}

    def start(self, username: str) -> httpx.Response:
        challenge = self.api.get("/reset/pow").json()
        response = self.api.post("/reset/flows", json={"username": username, "altcha": solve(challenge)},
                                 headers={"X-Forwarded-For": self.ip})
        if response.status_code == 201:
            self.flow_id, self.secret = response.json()["flowId"], response.json()["flowSecret"]
        return response

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.api.post(f"/reset/flows/{self.flow_id}{path}", json=body or {}, headers=self.headers())

    def get(self, path: str) -> httpx.Response:
        return self.api.get(f"/reset/flows/{self.flow_id}{path}", headers=self.headers())

    def prove(self, method: str, contact: str) -> httpx.Response:
        return self.post("/proofs", {"method": method, "contact": contact})

    def verify(self, method: str, code: str) -> httpx.Response:
        return self.post(f"/proofs/{method}/code", {"code": code})

    def set_password(self, password: str) -> httpx.Response:
        return self.post("/password", {"password": password})

    def resend(self, method: str) -> httpx.Response:
        return self.post(f"/proofs/{method}/resend")

    def prove_app(self, code: str) -> httpx.Response:
        return self.post("/proofs", {"method": "authenticatorApp", "code": code})
