"""The self-service reset through the local host, the notifications worker and the emulator (issue 5).

The module runs its own host (own tables and queues) with a policy that enables everyone; each test uses fresh
users, registered through the real registration API, and resets from a client IP of its own.
"""

from __future__ import annotations

import html
import time
import uuid

import httpx
import pytest

from devtools.stack import GraphEmulator
from tests.integration.outbox import code_sent_to, messages_to
from tests.integration.reset_helpers import Member, Resetter, api_fixture, enable_everyone, set_policy

PREFIX = "rst" + uuid.uuid4().hex[:8]
NEW_PASSWORD = "Correct-Horse-Battery-93"


api = api_fixture(PREFIX)


@pytest.fixture(scope="module")
def members(api: httpx.Client, graph_emulator: GraphEmulator) -> dict[str, Member]:
    """Users created before everyone is enabled, each registered as its name says."""
    people = {
        "email": Member(graph_emulator, api),
        "email2": Member(graph_emulator, api, given="Kim", surname="Lindqvist"),
        "unregistered": Member(graph_emulator, api),
    }
    set_policy(api, graph_emulator, scope="all")
    enable_everyone(api, graph_emulator)
    people["email"].register_email()
    people["email2"].register_email()
    return people


def test_a_registered_user_resets_by_email_and_can_sign_in_with_the_new_password(
        api: httpx.Client, graph_emulator: GraphEmulator, members: dict[str, Member]) -> None:
    member, resetter = members["email"], Resetter(api)
    started = resetter.start(member.upn)
    assert started.status_code == 201, started.text
    assert started.json()["methods"] == ["authenticatorApp", "email", "mobilePhone"]

    asked = resetter.prove("email", member.alternate_email)
    assert asked.status_code == 202, asked.text
    verified = resetter.verify("email", code_sent_to(graph_emulator, member.alternate_email, count=2))
    assert verified.status_code == 200, verified.text
    assert verified.json()["next"] == "password"

    done = resetter.set_password(NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert done.json()["reset"] is True and done.json()["sessionsRevoked"] is True
    assert member.signs_in_with(NEW_PASSWORD)
    assert not member.signs_in_with("Demo-Pass-2026!")
    # B4: the user is told, on every address, without the password.
    assert resetter.set_password(NEW_PASSWORD).status_code == 404  # the flow is finished


def test_an_administrator_resets_with_two_methods_and_the_global_administrators_are_told(
        api: httpx.Client, graph_emulator: GraphEmulator, members: dict[str, Member]) -> None:
    admin = Member(graph_emulator, api, given="Petra", surname="Roleholder",
                   extra={"roles": ["Helpdesk Administrator"]})
    enable_everyone(api, graph_emulator)
    admin.register_email()
    admin.register_mobile()
    resetter = Resetter(api)
    assert resetter.start(admin.upn).status_code == 201
    assert resetter.prove("email", admin.alternate_email).status_code == 202
    first = resetter.verify("email", code_sent_to(graph_emulator, admin.alternate_email, count=2))
    assert first.status_code == 200, first.text
    # A12: an administrator needs a second method, whatever the policy (1) says.
    assert first.json()["methodsRequired"] == 2 and first.json()["next"] == "method"
    assert first.json()["methods"] == ["mobilePhone"]
    # After a proof the person sees the contact of what is left, masked as Entra shows it (never before: C2).
    assert first.json()["contacts"] == {"mobilePhone": admin.mobile[:3] + "*" * (len(admin.mobile) - 5) + admin.mobile[-2:]}
    assert resetter.set_password(NEW_PASSWORD).status_code == 409  # A13: not yet

    assert resetter.prove("mobilePhone", admin.mobile).status_code == 202
    second = resetter.verify("mobilePhone", code_sent_to(graph_emulator, admin.mobile, count=2))
    assert second.status_code == 200 and second.json()["next"] == "password", second.text
    told_before = len(mails(graph_emulator, "admin@contoso.example", "An administrator reset their password"))
    assert resetter.set_password(NEW_PASSWORD).status_code == 200
    assert admin.signs_in_with(NEW_PASSWORD)

    # The Global Administrators' mailbox is shared with every other test's administrator resets: wait for this one.
    notice = wait_for_mail(graph_emulator, "admin@contoso.example", "An administrator reset their password",
                           after=told_before)
    assert "Petra Roleholder" in notice["body"] and NEW_PASSWORD not in notice["body"]
    mine = wait_for_mail(graph_emulator, admin.alternate_email, "Your password was reset")
    assert "If this wasn't you" in html.unescape(str(mine["body"])) and NEW_PASSWORD not in mine["body"]


def mails(emulator: GraphEmulator, to: str, subject: str) -> list[dict[str, object]]:
    """The mails with `subject` that reached `to`, newest first."""
    return [m for m in messages_to(emulator, to) if m.get("subject") == subject]


def wait_for_mail(emulator: GraphEmulator, to: str, subject: str, after: int = 0) -> dict[str, object]:
    """The newest mail with `subject` to `to`, once more than `after` of them arrived."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = mails(emulator, to, subject)
        if len(found) > after:
            return found[0]
        time.sleep(0.2)  # the notifications worker is another process
    raise AssertionError(f"no mail {subject!r} reached {to}")


def test_B3_the_password_reaches_the_directory_byte_exact_spaces_and_all(
        api: httpx.Client, graph_emulator: GraphEmulator, members: dict[str, Member]) -> None:
    member, resetter = members["email2"], Resetter(api)
    assert resetter.start(member.upn).status_code == 201
    assert resetter.prove("email", member.alternate_email).status_code == 202
    assert resetter.verify("email", code_sent_to(graph_emulator, member.alternate_email, count=2)).status_code == 200
    password = "  Lantern by the Harbour 42 " + "x" * 200 + " "  # 231 characters, spaces at both ends
    done = resetter.set_password(password)
    assert done.status_code == 200, done.text
    assert member.signs_in_with(password)
    assert not member.signs_in_with(password.strip())
