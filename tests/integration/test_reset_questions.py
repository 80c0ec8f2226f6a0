"""Security questions as the second method of a reset, under a policy that requires 2 methods (issue 5 step 3,
security.md A11), and the password step's rules in the user's language (B1, B2).

Its own host: the policy here (2 methods, questions allowed) would change every other reset test.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from devtools.stack import GraphEmulator
from shared.domain.policy import DEFAULT_DOCUMENT
from tests.integration.outbox import code_sent_to
from tests.integration.reset_helpers import Member, Resetter, api_fixture, enable_everyone, set_policy

PREFIX = "rsq" + uuid.uuid4().hex[:8]
ANSWERS = ["Uppsala", "Barksalot", "Fourth floor", "Ekbacken", "Volvo 240"]


api = api_fixture(PREFIX)


def register_questions(member: Member, api: httpx.Client) -> dict[str, str]:
    """Four questions answered through the registration API; question id -> answer."""
    headers = member.headers()
    catalog = api.get("/me/security-info/securityQuestions/catalog", headers=headers).json()
    chosen = {q["id"]: ANSWERS[i] for i, q in enumerate(catalog["questions"][:4])}
    saved = api.put("/me/security-info/securityQuestions", headers=headers,
                    json={"answers": [{"questionId": q, "answer": a} for q, a in chosen.items()]})
    assert saved.status_code == 200, saved.text
    return chosen


@pytest.fixture(scope="module")
def people(api: httpx.Client, graph_emulator: GraphEmulator) -> dict[str, tuple[Member, dict[str, str]]]:
    sven = Member(graph_emulator, api, given="Sven", surname="Ekberg", language="sv-SE")
    alex = Member(graph_emulator, api, given="Alex", surname="Berg")
    set_policy(api, graph_emulator, scope="all", methodsRequired=2,
               methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True},
               securityQuestions={"registerCount": 4, "resetCount": 3, "customQuestions": []})
    enable_everyone(api, graph_emulator)
    result = {}
    for name, member in (("sven", sven), ("alex", alex)):
        member.register_email()
        result[name] = (member, register_questions(member, api))
    return result


def proven_by_email(resetter: Resetter, member: Member, emulator: GraphEmulator) -> httpx.Response:
    assert resetter.start(member.upn).status_code == 201
    assert resetter.prove("email", member.alternate_email).status_code == 202
    return resetter.verify("email", code_sent_to(emulator, member.alternate_email, count=2))


def test_questions_come_only_after_a_possession_method_and_then_open_the_password_step(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, tuple[Member, dict[str, str]]]) -> None:
    member, answers = people["alex"]
    resetter = Resetter(api)
    assert resetter.start(member.upn).status_code == 201
    # A11: never first; the start offers only possession methods.
    assert "securityQuestions" not in resetter.api.get("/reset/pow").text
    assert resetter.get("/questions").status_code == 409
    assert resetter.post("/password", {"password": "Unrelated-Phrase-4417"}).status_code == 409  # A13

    assert resetter.prove("email", member.alternate_email).status_code == 202
    progress = resetter.verify("email", code_sent_to(graph_emulator, member.alternate_email, count=2))
    assert progress.status_code == 200, progress.text
    assert progress.json()["next"] == "method" and progress.json()["questions"] is True
    assert progress.json()["methodsRequired"] == 2

    asked = resetter.get("/questions")
    assert asked.status_code == 200, asked.text
    ids = [q["id"] for q in asked.json()["questions"]]
    assert len(ids) == 3 and set(ids) <= set(answers)
    assert [q["id"] for q in resetter.get("/questions").json()["questions"]] == ids  # fixed until answered

    wrong = resetter.post("/questions", {"answers": {i: "not it" for i in ids}})
    assert wrong.status_code == 400 and wrong.json()["type"] == "urn:sspr:problem:answers-not-accepted"
    right = resetter.post("/questions", {"answers": {i: answers[i].upper() + "  " for i in ids}})
    assert right.status_code == 200, right.text
    assert right.json()["next"] == "password"

    done = resetter.set_password("Quiet-Harbour-Lantern-58")
    assert done.status_code == 200, done.text
    assert member.signs_in_with("Quiet-Harbour-Lantern-58")


def test_password_rules_are_explained_in_swedish_and_a_failing_password_changes_nothing(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, tuple[Member, dict[str, str]]]) -> None:
    member, answers = people["sven"]
    resetter = Resetter(api, language="sv-SE,sv;q=0.9")
    assert proven_by_email(resetter, member, graph_emulator).status_code == 200
    ids = [q["id"] for q in resetter.get("/questions").json()["questions"]]
    assert resetter.post("/questions", {"answers": {i: answers[i] for i in ids}}).status_code == 200

    check = resetter.post("/password/check", {"password": "svensven1"})  # 2 banned tokens + 1 char: 3 points
    assert check.status_code == 200
    assert check.json()["acceptable"] is False
    rules = {f["rule"] for f in check.json()["failures"]}
    assert "PASSWORD_CLASSES" in rules and "PASSWORD_BANNED" in rules
    assert all(f["message"] and "svensven1" not in f["message"] for f in check.json()["failures"])

    refused = resetter.set_password("Ekberg!1")  # surname (1 point) + 2 characters: 3 points < 5 (B2)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:sspr:problem:password-rejected"
    assert refused.json()["title"].startswith("Välj ett annat lösenord")
    assert [f["rule"] for f in refused.json()["failures"]] == ["PASSWORD_BANNED"]
    assert "Ekberg!1" not in refused.text
    assert member.signs_in_with("Demo-Pass-2026!")  # nothing changed in the directory

    assert resetter.post("/password/check", {"password": "Stilla-Vatten-Om-Natten-7"}).json() == \
        {"acceptable": True, "failures": []}
    assert resetter.set_password("Stilla-Vatten-Om-Natten-7").status_code == 200


def test_an_administrator_is_never_asked_security_questions(
        api: httpx.Client, graph_emulator: GraphEmulator, people: dict[str, tuple[Member, dict[str, str]]]) -> None:
    admin = Member(graph_emulator, api, given="Ada", surname="Admin", extra={"roles": ["User Administrator"]})
    enable_everyone(api, graph_emulator)
    admin.register_email()
    admin.register_mobile()
    resetter = Resetter(api)
    progress = proven_by_email(resetter, admin, graph_emulator)
    assert progress.status_code == 200, progress.text
    assert progress.json()["questions"] is False and progress.json()["methods"] == ["mobilePhone"]
    assert resetter.get("/questions").status_code == 409
