"""Passkeys through the API with a software authenticator that can misbehave on purpose (security.md I1, I2, C6).

Its own host (own tables) whose pages' origin is http://localhost:7071 (the stack's SSPR_PUBLIC_BASE_URL), so the
relying party is "localhost"; reset steps answer at a 250 ms deadline, as in test_reset_timing.py. The browser
journeys are tests/e2e/test_passkeys.py.
"""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from devtools.passkey_authenticator import SoftPasskey
from devtools.stack import GraphEmulator
from tests.integration.reset_helpers import Member, Resetter, api_fixture, enable_everyone, set_policy

PREFIX = "rpk" + uuid.uuid4().hex[:8]
ORIGIN = "http://localhost:7071"
DEADLINE_MS = 250
REFUSED = "urn:sspr:problem:passkey-not-accepted"
PASSKEYS_ON = {"email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
               "appNotification": False, "passkey": True, "securityQuestions": False}


api = api_fixture(PREFIX, SSPR_RESET_STEP_DEADLINE_MS=str(DEADLINE_MS))


@pytest.fixture(scope="module")
def people(api: httpx.Client, graph_emulator: GraphEmulator) -> dict[str, Member]:
    found = {name: Member(graph_emulator, api) for name in ("keyed", "other", "plain", "twice", "parallel")}
    set_policy(api, graph_emulator, scope="all", methodsAllowed=PASSKEYS_ON)
    enable_everyone(api, graph_emulator)
    return found


def add_passkey(member: Member, key: SoftPasskey, name: str = "Laptop", verified: bool = True,
                origin: str = ORIGIN) -> httpx.Response:
    headers = member.headers()
    begun = member.api.post("/me/security-info/passkeys/options", headers=headers)
    assert begun.status_code == 201, begun.text
    setup = begun.json()
    return member.api.post("/me/security-info/passkeys", headers=headers, json={
        "setupId": setup["setupId"], "name": name,
        "credential": key.create(setup["publicKey"], origin, verified=verified)})


@pytest.fixture(scope="module")
def keys(people: dict[str, Member]) -> dict[str, SoftPasskey]:
    found = {name: SoftPasskey("localhost") for name in ("keyed", "other", "twice", "parallel")}
    for name, key in found.items():
        assert add_passkey(people[name], key).status_code == 200
    return found


def passkey_proof(resetter: Resetter, key: SoftPasskey, **ceremony: Any) -> httpx.Response:
    options = resetter.post("/passkey/options")
    assert options.status_code == 200, options.text
    return resetter.post("/passkey", {"credential": key.get(options.json()["publicKey"], ORIGIN, **ceremony)})


def started(api: httpx.Client, username: str) -> Resetter:
    resetter = Resetter(api)
    assert resetter.start(username).status_code == 201
    return resetter


def test_I2_the_passkey_step_answers_the_same_before_a_proof_whoever_the_username_names(
        api: httpx.Client, people: dict[str, Member], keys: dict[str, SoftPasskey]) -> None:
    answers = []
    for username in (people["keyed"].upn, people["plain"].upn, f"nobody-{uuid.uuid4().hex[:6]}@contoso.example"):
        resetter = Resetter(api)
        assert "passkey" in resetter.start(username).json()["methods"]
        answer = resetter.post("/passkey/options")
        assert answer.status_code == 200, answer.text
        answers.append(answer)
    bodies = [a.json()["publicKey"] for a in answers]
    assert {b["challenge"] for b in bodies}.__len__() == 3  # fresh each time, and nothing else differs:
    assert all({**b, "challenge": ""} == {**bodies[0], "challenge": ""} for b in bodies), bodies
    assert bodies[0]["rpId"] == "localhost" and bodies[0]["userVerification"] == "required"
    assert not bodies[0].get("allowCredentials")
    headers = [{k: v for k, v in a.headers.items() if k.lower() not in ("date", "content-length")} for a in answers]
    assert headers[0] == headers[1] == headers[2]


def test_I1_a_passkey_proves_possession_and_each_broken_ceremony_is_refused_alone(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member],
        keys: dict[str, SoftPasskey]) -> None:
    member, key = people["keyed"], keys["keyed"]
    stranger = SoftPasskey("localhost", user_handle=key.user_handle, credential_id=key.credential_id)
    cases: dict[str, tuple[SoftPasskey, dict[str, Any]]] = {
        "no user verification": (key, {"verified": False}),
        "another relying party's hash": (key, {"rp_id": "evil.localhost"}),
        "another origin": (key, {"origin": "http://evil.localhost:7071"}),
        "another key under the same id": (stranger, {}),
        "another user's passkey": (keys["other"], {}),
    }
    for what, (authenticator, ceremony) in cases.items():
        resetter = started(api, member.upn)
        options = resetter.post("/passkey/options").json()["publicKey"]
        origin = ceremony.pop("origin", ORIGIN)
        refused = resetter.post("/passkey", {"credential": authenticator.get(options, origin, **ceremony)})
        assert (refused.status_code, refused.json()["type"]) == (400, REFUSED), what

    resetter = started(api, member.upn)
    proven = passkey_proof(resetter, key)
    assert proven.status_code == 200, proven.text
    assert proven.json()["verified"] == ["passkey"] and proven.json()["next"] == "password"

    once = started(api, member.upn)  # a challenge is used up by its first answer, even a refused one
    options = once.post("/passkey/options").json()["publicKey"]
    assert once.post("/passkey", {"credential": key.get(options, ORIGIN, verified=False)}).status_code == 400
    again = once.post("/passkey", {"credential": key.get(options, ORIGIN)})
    assert (again.status_code, again.json()["type"]) == (400, REFUSED)

    mine, theirs = started(api, member.upn), started(api, member.upn)  # a challenge is bound to its flow
    their_options = theirs.post("/passkey/options").json()["publicKey"]
    mine.post("/passkey/options")
    crossed = mine.post("/passkey", {"credential": key.get(their_options, ORIGIN)})
    assert (crossed.status_code, crossed.json()["type"]) == (400, REFUSED)

    clone = started(api, member.upn)
    key.counter = 0  # the counter goes back: a copy of the key
    refused = passkey_proof(clone, key)
    assert (refused.status_code, refused.json()["type"]) == (400, REFUSED)


def test_I1_a_challenge_is_single_use_under_32_parallel_answers(
        api: httpx.Client, people: dict[str, Member], keys: dict[str, SoftPasskey]) -> None:
    """32 different, each valid, answers to one challenge (each with its own counter): one is taken."""
    resetter = started(api, people["parallel"].upn)
    options = resetter.post("/passkey/options").json()["publicKey"]
    credentials = [keys["parallel"].get(options, ORIGIN) for _ in range(32)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda c: resetter.post("/passkey", {"credential": c}), credentials))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, statuses
    assert all(a.status_code in (400, 403, 409) for a in answers if a.status_code != 200)


def test_registration_refuses_a_ceremony_without_user_verification_or_from_another_origin(
        people: dict[str, Member]) -> None:
    member = people["plain"]
    for ceremony in ({"verified": False}, {"origin": "http://evil.localhost:7071"}):
        refused = add_passkey(member, SoftPasskey("localhost"), **ceremony)
        assert (refused.status_code, refused.json()["type"]) == (400, REFUSED), ceremony
    assert add_passkey(member, SoftPasskey("evil.localhost")).status_code == 400  # another RP id's hash
    assert not member.api.get("/me/security-info", headers=member.headers()).json()["passkeys"]


def test_a_passkey_counts_as_two_methods_only_when_the_policy_says_so(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, Member],
        keys: dict[str, SoftPasskey]) -> None:
    member, key = people["twice"], keys["twice"]
    member.register_email()
    try:
        set_policy(api, graph_emulator, scope="all", methodsAllowed=PASSKEYS_ON, methodsRequired=2)
        alone = passkey_proof(started(api, member.upn), key)
        assert alone.status_code == 200 and alone.json()["next"] == "method", alone.text
        set_policy(api, graph_emulator, scope="all", methodsAllowed=PASSKEYS_ON, methodsRequired=2,
                   passkeys={"countsAsTwoMethods": True, "countsAsTwoForAdministrators": False})
        twice = passkey_proof(started(api, member.upn), key)
        assert twice.status_code == 200 and twice.json()["next"] == "password", twice.text
    finally:
        set_policy(api, graph_emulator, scope="all", methodsAllowed=PASSKEYS_ON)


@pytest.mark.timeout(600)
def test_C6_the_passkey_step_takes_the_same_time_for_every_kind_of_username(
        api: httpx.Client, people: dict[str, Member], keys: dict[str, SoftPasskey]) -> None:
    samples = 12
    foreign = SoftPasskey("localhost")
    kinds = {
        "nobody": (lambda: f"nobody-{uuid.uuid4().hex[:8]}@contoso.example", foreign),
        "member without passkeys": (lambda: people["plain"].upn, foreign),
        "member, a foreign passkey": (lambda: people["other"].upn, foreign),
        "member, their passkey": (lambda: people["parallel"].upn, keys["parallel"]),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(samples):
        for kind, (username, key) in kinds.items():
            resetter = started(api, username())
            options = resetter.post("/passkey/options").json()["publicKey"]
            credential = key.get(options, ORIGIN)
            begun = time.perf_counter()
            answer = resetter.post("/passkey", {"credential": credential})
            times[kind].append((time.perf_counter() - begun) * 1000)
            assert answer.status_code == (200 if kind == "member, their passkey" else 400), (kind, answer.text)
    medians = {kind: statistics.median(t) for kind, t in times.items()}
    print(f"\nC6 passkey step medians (ms, {samples} each): "
          + ", ".join(f"{kind} {median:.1f}" for kind, median in medians.items()))
    assert max(medians.values()) - min(medians.values()) <= 8.0, medians
    assert all(median >= DEADLINE_MS for median in medians.values()), medians
