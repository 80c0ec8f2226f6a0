"""What the helpdesk tests share: an agent calling /api/helpdesk with their own token, a second agent, and a
caller registered through the real registration API."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from devtools.stack import GraphEmulator
from tests.integration.outbox import messages_to, wait_for
from tests.integration.reset_helpers import Member
from tests.integration.tokens import DEMO_PASSWORD, bearer, user_token

SERVICE_APP = "c0ffee00-5e1f-4ea5-b0a7-0000000000a1"
HAL = "helpdesk@contoso.example"  # the demo tenant's agent (app role SSPR.Helpdesk)
CODE_SUBJECT = "A code for your call with the helpdesk"
LINK = re.compile(r"#link=([0-9a-f-]{36}\.[A-Za-z0-9_-]{40,64})")


def new_agent(emulator: GraphEmulator, name: str = "Hedda") -> str:
    """Another person with app role SSPR.Helpdesk (the second pair of eyes); their UPN."""
    upn = f"agent-{uuid.uuid4().hex[:8]}@contoso.example"
    created = httpx.post(f"{emulator.base_url}/_emulator/users", timeout=10, json={
        "userPrincipalName": upn, "displayName": f"{name} Agent", "password": DEMO_PASSWORD,
        "appRoles": {SERVICE_APP: ["SSPR.Helpdesk"]}})
    assert created.status_code == 201, created.text
    return upn


class Agent:
    def __init__(self, api: httpx.Client, emulator: GraphEmulator, upn: str = HAL) -> None:
        self.api = api
        self.emulator = emulator
        self.upn = upn
        self.ip = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        self.seen: list[str] = []  # every answer's text, for the checks that nothing secret was shown

    def headers(self) -> dict[str, str]:
        return {**bearer(user_token(self.emulator, self.upn)), "X-Forwarded-For": self.ip}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        self.seen.append(response.text)
        return response

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self._keep(self.api.get(f"/helpdesk/{path}", params=params, headers=self.headers()))

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._keep(self.api.post(f"/helpdesk/{path}", json=body, headers=self.headers()))

    def start(self, user_id: str) -> str:
        started = self.post("verifications", {"userId": user_id})
        assert started.status_code == 201, started.text
        return str(started.json()["verificationId"])

    def send_code(self, verification: str, method: str = "email") -> httpx.Response:
        return self.post(f"verifications/{verification}/codes", {"method": method})

    def verify(self, verification: str, code: str, method: str = "email") -> httpx.Response:
        return self.post(f"verifications/{verification}/verify", {"method": method, "code": code})

    def act(self, verification: str, action: str) -> httpx.Response:
        return self.post(f"verifications/{verification}/actions", {"action": action})


def helpdesk_codes(emulator: GraphEmulator, contact: str) -> list[str]:
    """Every helpdesk code that reached `contact` (by mail, SMS or call), newest first."""
    return [re.findall(r"(?<!\d)(\d{8})(?!\d)", m["body"].replace(", ", ""))[0]
            for m in messages_to(emulator, contact)
            if m.get("subject") == CODE_SUBJECT or ("the helpdesk" in m["body"] and "code" in m["body"]
            and m.get("channel") in ("sms", "voice"))]


def helpdesk_code(emulator: GraphEmulator, contact: str, count: int = 1) -> str:
    """The newest helpdesk code that reached `contact`, once `count` of them arrived."""
    def found() -> str | None:
        codes = helpdesk_codes(emulator, contact)
        return codes[0] if len(codes) >= count else None

    return str(wait_for(f"helpdesk code #{count} to {contact}", found))


def verified_caller(agent: Agent, member: Member) -> str:
    """A verification of `member` by `agent`, verified by the code sent to their registered email."""
    verification = agent.start(member.id)
    before = len(helpdesk_codes(agent.emulator, member.alternate_email))
    sent = agent.send_code(verification)
    assert sent.status_code == 202, sent.text
    verified = agent.verify(verification, helpdesk_code(agent.emulator, member.alternate_email, before + 1))
    assert verified.status_code == 200 and verified.json()["state"] == "verified", verified.text
    return verification


def link_sent_to(emulator: GraphEmulator, contact: str, count: int = 1) -> str:
    def found() -> str | None:
        links = [LINK.search(m["body"]) for m in messages_to(emulator, contact)]
        tokens = [m.group(1) for m in links if m]
        return tokens[0] if len(tokens) >= count else None

    return str(wait_for(f"reset link #{count} to {contact}", found))
