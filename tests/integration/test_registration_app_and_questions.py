"""Authenticator app (TOTP) and security questions registration through the local host, as a signed-in user.

The module runs its own host (own table prefix). The registration services read the policy as saved (no cache),
so each test sets the policy it needs through PUT /api/manage/policy first. Every test signs in as a fresh
emulator user, so throttles and registrations never leak between tests. Codes are computed the way an
authenticator app does (pyotp) from what the API returned.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.stack import GraphEmulator, api_running, app_settings
from shared.adapters.secret_box import SecretBox
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.policy import DEFAULT_DOCUMENT, Method
from shared.domain.security_info import RegisteredMethod
from shared.services.methods.authenticator_app import AuthenticatorAppCodes
from tests.integration.tokens import DEMO_PASSWORD, bearer, user_token

PREFIX = "regc" + uuid.uuid4().hex[:8]
CUSTOM_QUESTION = "Which floor was your first desk on?"
QUESTIONS_POLICY: dict[str, Any] = {
    **DEFAULT_DOCUMENT,
    "methodsAllowed": {**DEFAULT_DOCUMENT["methodsAllowed"], "securityQuestions": True},
    "methodsRequired": 2,  # the policy's rule: questions never reset alone
    "securityQuestions": {"registerCount": 3, "resetCount": 3, "customQuestions": [CUSTOM_QUESTION]},
}
APP = "/me/security-info/authenticatorApp"
QUESTIONS = "/me/security-info/securityQuestions"


@pytest.fixture(scope="module")
def settings(azurite: Azurite, graph_emulator: GraphEmulator) -> dict[str, str]:
    return app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=PREFIX)


@pytest.fixture(scope="module")
def api(settings: dict[str, str]) -> Iterator[httpx.Client]:
    with api_running(settings) as client:
        yield client


@pytest.fixture(scope="module")
def set_policy(api: httpx.Client, graph_emulator: GraphEmulator):  # type: ignore[no-untyped-def]
    admin = bearer(user_token(graph_emulator, "admin@contoso.example"))

    def apply(document: dict[str, Any]) -> None:
        current = api.get("/manage/policy", headers=admin)
        saved = api.put("/manage/policy", json=document, headers={**admin, "If-Match": current.headers["ETag"]})
        assert saved.status_code == 200, saved.text

    return apply


@pytest.fixture
def questions_allowed(set_policy) -> None:  # type: ignore[no-untyped-def]
    set_policy(QUESTIONS_POLICY)


@pytest.fixture
def default_policy(set_policy) -> None:  # type: ignore[no-untyped-def]
    set_policy(DEFAULT_DOCUMENT)


class Person:
    """A fresh emulator user, signed in through the pages app, calling from an IP of their own."""

    def __init__(self, emulator: GraphEmulator, api: httpx.Client, upn: str | None = None) -> None:
        if upn is None:
            upn = f"regc-{uuid.uuid4().hex[:10]}@contoso.example"
            created = httpx.post(f"{emulator.base_url}/_emulator/users", timeout=10, json={
                "userPrincipalName": upn, "displayName": "Robin Quist", "mail": upn, "password": DEMO_PASSWORD,
            })
            assert created.status_code == 201, created.text
            self.id = created.json()["id"]
        else:
            self.id = httpx.get(f"{emulator.base_url}/_emulator/users/{upn}", timeout=10).json()["id"]
        self.upn = upn
        self.api = api
        self.headers = {**bearer(user_token(emulator, upn)),
                        "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"}

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.api.post(path, json=body or {}, headers=self.headers)

    def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.api.put(path, json=body, headers=self.headers)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.api.get(path, headers={**self.headers, **headers})


@pytest.fixture
def person(api: httpx.Client, graph_emulator: GraphEmulator) -> Person:
    return Person(graph_emulator, api)


def rows_of(azurite: Azurite, user_id: str) -> list[dict[str, Any]]:
    """The user's SecurityInfo partition, read straight from the table."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.get_table_client(f"{PREFIX}SecurityInfo")
    return list(table.query_entities("PartitionKey eq @pk", parameters={"pk": user_id}))


def everything_stored(azurite: Azurite) -> str:
    """Every entity of this module's tables (security info, audit, throttles...), as one text to search."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    texts: list[str] = []
    for table in service.list_tables():
        if table.name.startswith(PREFIX):
            texts.extend(str(dict(e)) for e in service.get_table_client(table.name).list_entities())
    return "\n".join(texts).casefold()


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


# ---- authenticator app -----------------------------------------------------------------------------------------

def test_an_app_is_registered_with_a_code_computed_from_the_returned_secret(person: Person, default_policy: None) -> None:
    started = person.post(APP)
    assert started.status_code == 201, started.text
    assert started.headers["Cache-Control"] == "no-store"
    setup = started.json()
    from_uri = pyotp.parse_uri(setup["otpauthUri"])
    assert isinstance(from_uri, pyotp.TOTP) and from_uri.secret == setup["secret"]
    assert from_uri.issuer == "Contoso Demo" and from_uri.name == person.upn
    assert (from_uri.digits, from_uri.interval, from_uri.digest().name) == (6, 30, "sha1")
    assert len(setup["secret"]) == 32  # 160 bits of base32

    verified = person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": from_uri.now()})
    assert verified.status_code == 200, verified.text
    assert verified.json()["method"] == "authenticatorApp" and verified.json()["status"]["registered"] is True
    methods = person.get("/me/security-info").json()["methods"]
    assert [m["method"] for m in methods] == ["authenticatorApp"] and methods[0]["contact"] is None


def audit_of(azurite: Azurite, user_id: str) -> list[tuple[str, str | None, str, str]]:
    """(activity, method, outcome, step) of the user's audit events, oldest first."""
    table = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(f"{PREFIX}Audit")
    events = sorted(table.query_entities("targetUserId eq @id", parameters={"id": user_id}), key=lambda e: e["time"])
    return [(e["activity"], e.get("method"), e["outcome"], json.loads(e["details"])["step"]) for e in events]


def test_each_app_registration_step_is_audited_with_entras_names(person: Person, azurite: Azurite,
                                                                default_policy: None) -> None:
    setup = person.post(APP).json()
    code = pyotp.TOTP(setup["secret"]).now()
    person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": wrong(code)})
    person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": code})
    events = audit_of(azurite, person.id)
    assert events[:2] == [
        ("User registered security info", "authenticatorApp", "success", "app-setup-started"),
        ("User registered security info", "authenticatorApp", "failure", "code-wrong"),
    ]
    assert set(events[2:]) == {  # written at the same instant
        ("User registered security info", "authenticatorApp", "success", "verified"),
        ("User registered all required security info", None, "success", "registered"),
    }


def test_the_qr_code_is_an_svg_image(person: Person, default_policy: None) -> None:
    svg = person.post(APP).json()["qrSvg"]
    assert svg.lstrip().startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg and svg.rstrip().endswith("</svg>")
    assert "otpauth" not in svg  # the QR modules carry the URI, not the text


def test_a_wrong_code_is_refused_and_the_right_one_still_works(person: Person, default_policy: None) -> None:
    setup = person.post(APP).json()
    right = pyotp.TOTP(setup["secret"]).now()
    refused = person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": wrong(right)})
    assert refused.status_code == 400 and refused.json()["type"] == "urn:sspr:problem:code-not-accepted"
    assert person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": right}).status_code == 200


def test_a_replayed_confirmation_is_refused(person: Person, default_policy: None) -> None:
    setup = person.post(APP).json()
    body = {"setupId": setup["setupId"], "code": pyotp.TOTP(setup["secret"]).now()}
    assert person.post(f"{APP}/verify", body).status_code == 200
    replayed = person.post(f"{APP}/verify", body)
    assert replayed.status_code == 409 and replayed.json()["type"] == "urn:sspr:problem:challenge-closed"


def test_parallel_confirmations_with_the_right_code_save_the_app_once(person: Person, default_policy: None) -> None:
    setup = person.post(APP).json()
    body = {"setupId": setup["setupId"], "code": pyotp.TOTP(setup["secret"]).now()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: person.post(f"{APP}/verify", body).status_code, range(8)))
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 400, 409}


def test_starting_again_replaces_the_unconfirmed_setup(person: Person, default_policy: None) -> None:
    first, second = person.post(APP).json(), person.post(APP).json()
    assert first["secret"] != second["secret"]
    stale = person.post(f"{APP}/verify", {"setupId": first["setupId"], "code": pyotp.TOTP(first["secret"]).now()})
    assert stale.status_code == 409
    assert person.post(f"{APP}/verify", {"setupId": second["setupId"],
                                         "code": pyotp.TOTP(second["secret"]).now()}).status_code == 200


def test_malformed_confirmations_name_their_fields(person: Person, default_policy: None) -> None:
    refused = person.post(f"{APP}/verify", {"setupId": "not-a-guid", "code": "12345", "extra": 1})
    assert refused.status_code == 400
    assert {e["field"] for e in refused.json()["errors"]} == {"setupId", "code", "extra"}


def test_the_app_is_refused_when_the_policy_does_not_allow_it(person: Person, set_policy) -> None:  # type: ignore[no-untyped-def]
    set_policy({**DEFAULT_DOCUMENT, "methodsAllowed": {**DEFAULT_DOCUMENT["methodsAllowed"], "authenticatorApp": False}})
    refused = person.post(APP)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:sspr:problem:method-not-allowed"


def test_no_token_no_registration(api: httpx.Client) -> None:
    assert api.post(APP).status_code == 401
    assert api.put(QUESTIONS, json={"answers": []}).status_code == 401


def test_the_seed_is_stored_sealed_and_never_in_clear(person: Person, azurite: Azurite, default_policy: None) -> None:
    setup = person.post(APP).json()
    pending = [r for r in rows_of(azurite, person.id) if r["RowKey"].startswith("pending-")]
    assert len(pending) == 1 and setup["secret"] not in str(dict(pending[0]))
    person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": pyotp.TOTP(setup["secret"]).now()})
    rows = rows_of(azurite, person.id)
    assert not [r for r in rows if r["RowKey"].startswith("pending-")]
    [method] = [r for r in rows if r["RowKey"] == "method-authenticatorApp"]
    assert method["secret"] and method["lastUsedStep"] > 0
    assert setup["secret"].casefold() not in everything_stored(azurite)  # nor in audit or throttle rows


# ---- checking codes of a registered app (the reset flow's verify_totp) ----------------------------------------

@pytest.fixture
async def app_codes(settings: dict[str, str]) -> AsyncIterator[tuple[AuthenticatorAppCodes, SecurityInfoStore]]:
    loaded = load_settings(settings)
    storage = StorageClients.from_settings(loaded)
    store = SecurityInfoStore(storage)
    yield AuthenticatorAppCodes(store, SecretBox.from_base64(loaded.totp_encryption_key)), store
    await storage.close()


async def registered_app(person: Person, store: SecurityInfoStore) -> tuple[pyotp.TOTP, datetime, RegisteredMethod]:
    """The person registers an authenticator app now: its generator, the time of the confirming code, its row."""
    setup = person.post(APP).json()
    app = pyotp.TOTP(setup["secret"])
    now = datetime.now(UTC)
    assert person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": app.at(now)}).status_code == 200
    [method] = await store.methods(person.id)
    return app, now, method


async def test_a_registered_apps_code_works_once_then_the_next_steps_code(
        person: Person, default_policy: None, app_codes: tuple[AuthenticatorAppCodes, SecurityInfoStore]) -> None:
    codes, store = app_codes
    app, now, method = await registered_app(person, store)
    # The code that confirmed the registration cannot be replayed at a reset.
    assert await codes.verify_totp(person.id, method, app.at(now), now) is None
    later = now + timedelta(seconds=30)
    step = await codes.verify_totp(person.id, method, app.at(later), later)
    assert step == int(later.timestamp()) // 30
    [method] = await store.methods(person.id)
    assert method.last_used_step == step
    assert await codes.verify_totp(person.id, method, app.at(later), later) is None
    even_later = later + timedelta(seconds=30)
    assert await codes.verify_totp(person.id, method, wrong(app.at(even_later)), even_later) is None


async def test_a_seed_copied_into_another_users_row_gives_them_nothing(
        person: Person, default_policy: None, graph_emulator: GraphEmulator, api: httpx.Client,
        app_codes: tuple[AuthenticatorAppCodes, SecurityInfoStore]) -> None:
    codes, store = app_codes
    app, now, method = await registered_app(person, store)
    other = Person(graph_emulator, api)
    later = now + timedelta(seconds=30)
    assert await codes.verify_totp(other.id, method, app.at(later), later) is None  # the row, under other's id
    assert await codes.verify_totp(person.id, method, app.at(later), later) is not None


async def test_sixteen_parallel_submissions_of_one_right_code_succeed_once(
        person: Person, default_policy: None, app_codes: tuple[AuthenticatorAppCodes, SecurityInfoStore]) -> None:
    codes, store = app_codes
    app, now, method = await registered_app(person, store)
    for round_ in range(1, 6):  # many times: a race that is lost only sometimes must still be caught
        moment = now + timedelta(seconds=30 * round_)
        results = await asyncio.gather(*[codes.verify_totp(person.id, method, app.at(moment), moment)
                                         for _ in range(16)])
        assert [r for r in results if r is not None] == [int(moment.timestamp()) // 30], results


# ---- security questions ----------------------------------------------------------------------------------------

def good_answers(catalog: dict[str, Any]) -> list[dict[str, str]]:
    ids = [q["id"] for q in catalog["questions"]]
    return [{"questionId": ids[0], "answer": "Uppsala"}, {"questionId": ids[3], "answer": "  Sir   Barksalot "},
            {"questionId": ids[-1], "answer": "Fourth floor"}]


def test_the_catalogue_comes_in_english_and_swedish_with_the_custom_question(person: Person,
                                                                             questions_allowed: None) -> None:
    english = person.get(f"{QUESTIONS}/catalog")
    swedish = person.get(f"{QUESTIONS}/catalog", **{"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"})
    assert english.status_code == 200 and swedish.status_code == 200, english.text
    assert english.headers["Content-Language"] == "en" and swedish.headers["Content-Language"] == "sv"
    en, sv = english.json(), swedish.json()
    assert en["registerCount"] == 3 and (en["answerMinLength"], en["answerMaxLength"]) == (3, 40)
    assert [q["id"] for q in en["questions"]] == [q["id"] for q in sv["questions"]]
    texts = {q["id"]: q["text"] for q in en["questions"]}
    assert texts["city-of-birth"] == "In what city were you born?"
    assert {q["id"]: q["text"] for q in sv["questions"]}["city-of-birth"] == "I vilken stad föddes du?"
    [custom] = [q for q in en["questions"] if q["custom"]]
    assert custom["text"] == CUSTOM_QUESTION and custom["id"].startswith("custom-")
    assert len(en["questions"]) == 21


def test_questions_are_registered_and_stored_as_hashes_only(person: Person, questions_allowed: None,
                                                            azurite: Azurite) -> None:
    answers = good_answers(person.get(f"{QUESTIONS}/catalog").json())
    saved = person.put(QUESTIONS, {"answers": answers})
    assert saved.status_code == 200, saved.text
    assert saved.json()["method"] == "securityQuestions"
    status = saved.json()["status"]
    assert status["registered"] is False and status["requiredCount"] == 2  # 2 required: questions are one
    [row] = [r for r in rows_of(azurite, person.id) if r["RowKey"] == "method-securityQuestions"]
    assert row["secret"].count("$argon2id$") == 3
    stored = everything_stored(azurite)
    for answer in ("uppsala", "barksalot", "fourth floor"):
        assert answer not in stored


def test_registering_again_replaces_the_questions(person: Person, questions_allowed: None, azurite: Azurite) -> None:
    catalog = person.get(f"{QUESTIONS}/catalog").json()
    assert person.put(QUESTIONS, {"answers": good_answers(catalog)}).status_code == 200
    ids = [q["id"] for q in catalog["questions"]]
    again = [{"questionId": ids[5], "answer": "Ekbacken"}, {"questionId": ids[6], "answer": "Lindqvist"},
             {"questionId": ids[7], "answer": "Volvo 240"}]
    assert person.put(QUESTIONS, {"answers": again}).status_code == 200
    [row] = [r for r in rows_of(azurite, person.id) if r["RowKey"] == "method-securityQuestions"]
    assert [ids[5], ids[6], ids[7]] == [q for q in ids if f'"{q}"' in row["secret"]]


def test_duplicates_and_an_answer_equal_to_the_upn_are_all_refused_at_once(person: Person,
                                                                          questions_allowed: None) -> None:
    ids = [q["id"] for q in person.get(f"{QUESTIONS}/catalog").json()["questions"]]
    refused = person.put(QUESTIONS, {"answers": [
        {"questionId": ids[0], "answer": "Uppsala"},
        {"questionId": ids[0], "answer": "uppsala "},
        {"questionId": ids[2], "answer": person.upn.upper()},
        {"questionId": ids[4], "answer": person.upn.split("@")[0]},
    ]})
    assert refused.status_code == 400
    errors = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert set(errors) == {"answers", "answers[1].questionId", "answers[1].answer", "answers[2].answer",
                           "answers[3].answer"}
    assert "exactly 3" in errors["answers"] and "name" in errors["answers[2].answer"]
    assert person.get("/me/security-info").json()["methods"] == []


def test_an_answer_equal_to_the_display_name_or_too_short_is_refused(person: Person, questions_allowed: None) -> None:
    ids = [q["id"] for q in person.get(f"{QUESTIONS}/catalog").json()["questions"]]
    refused = person.put(QUESTIONS, {"answers": [
        {"questionId": ids[0], "answer": "robin  QUIST"}, {"questionId": ids[1], "answer": "no"},
        {"questionId": "favourite-colour", "answer": "blue"},
    ]})
    assert refused.status_code == 400
    assert {e["field"] for e in refused.json()["errors"]} == {"answers[0].answer", "answers[1].answer",
                                                              "answers[2].questionId"}


def questions_asked(person: Person) -> tuple[httpx.Response, httpx.Response]:
    """What `person` is answered when asking for the questions' catalog, and when saving three answers."""
    return person.get(f"{QUESTIONS}/catalog"), person.put(QUESTIONS, {"answers": [
        {"questionId": "city-of-birth", "answer": "Uppsala"}, {"questionId": "first-pet-name", "answer": "Rex"},
        {"questionId": "first-school", "answer": "Ekbacken"}]})


def test_an_administrator_may_not_register_questions(api: httpx.Client, graph_emulator: GraphEmulator,
                                                     questions_allowed: None) -> None:
    admin = Person(graph_emulator, api, upn="admin@contoso.example")  # Global Administrator
    for response in questions_asked(admin):
        assert response.status_code == 403
        assert response.json()["type"] == "urn:sspr:problem:questions-not-for-administrators"


def test_a_user_made_administrator_after_registering_is_refused_questions_and_flagged(
        person: Person, questions_allowed: None, azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    setup = person.post(APP).json()
    assert person.post(f"{APP}/verify", {"setupId": setup["setupId"],
                                         "code": pyotp.TOTP(setup["secret"]).now()}).status_code == 200
    [summary] = [r for r in rows_of(azurite, person.id) if r["RowKey"] == "summary"]
    assert summary["isAdmin"] is False
    made_admin = httpx.patch(f"{graph_emulator.base_url}/_emulator/users/{person.id}",
                             json={"roles": ["Helpdesk Administrator"]}, timeout=10)
    assert made_admin.status_code == 200, made_admin.text
    refused = person.get(f"{QUESTIONS}/catalog")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:sspr:problem:questions-not-for-administrators"
    [summary] = [r for r in rows_of(azurite, person.id) if r["RowKey"] == "summary"]
    assert summary["isAdmin"] is True  # the sign-in hook now asks for two methods too


def test_questions_are_refused_when_the_policy_does_not_allow_them(person: Person, default_policy: None) -> None:
    for response in questions_asked(person):
        assert response.status_code == 403
        assert response.json()["type"] == "urn:sspr:problem:method-not-allowed"


def test_questions_and_the_app_make_a_user_registered_under_two_required_methods(
        person: Person, questions_allowed: None) -> None:
    assert person.put(QUESTIONS, {"answers": good_answers(person.get(f"{QUESTIONS}/catalog").json())}).status_code == 200
    setup = person.post(APP).json()
    verified = person.post(f"{APP}/verify", {"setupId": setup["setupId"], "code": pyotp.TOTP(setup["secret"]).now()})
    assert verified.json()["status"]["registered"] is True
    assert sorted(verified.json()["status"]["usableMethods"]) == [Method.AUTHENTICATOR_APP.value,
                                                                 Method.SECURITY_QUESTIONS.value]
