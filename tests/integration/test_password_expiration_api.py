"""Password expiration through the local host, read back from the emulator's Graph; plus the pure rules behind it.

Every change is verified where it lands (Graph `/domains`, `/users/{id}`) and in the audit log; every refused
request is verified to have written nothing. The emulator is put back after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.stack import SERVICE_APP_ID, SERVICE_APP_SECRET, FunctionHost, GraphEmulator
from shared.domain.password_expiration import DomainExpiration, expiration_errors, with_never_expires
from tests.integration.tokens import app_token, bearer, user_token

ADMIN = "admin@contoso.example"
ADMIN_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001001"
READER = "reader@contoso.example"
CASEY_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
ERIN_NEVER_EXPIRES_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001012"
DOMAIN = "contoso.example"
INITIAL = "contosodemo.onmicrosoft.com"
NEVER = 2147483647
INITIAL_DOMAINS = {DOMAIN: (90, 14), INITIAL: (NEVER, 14)}


@pytest.fixture
def graph(graph_emulator: GraphEmulator) -> Iterator[httpx.Client]:
    """Graph itself with the service app's token, to read back what the API wrote; restores the demo values."""
    token = app_token(graph_emulator, SERVICE_APP_ID, SERVICE_APP_SECRET, resource="https://graph.microsoft.com")
    with httpx.Client(base_url=graph_emulator.graph_url, headers=bearer(token), timeout=10) as client:
        yield client
        for domain, (validity, window) in INITIAL_DOMAINS.items():
            client.patch(f"/domains/{domain}", json={"passwordValidityPeriodInDays": validity,
                                                     "passwordNotificationWindowInDays": window}).raise_for_status()
        client.patch(f"/users/{CASEY_ID}", json={"passwordPolicies": "None"}).raise_for_status()
        client.patch(f"/users/{ERIN_NEVER_EXPIRES_ID}",
                     json={"passwordPolicies": "DisablePasswordExpiration"}).raise_for_status()


def api(host: FunctionHost, emulator: GraphEmulator, method: str, path: str, upn: str | None = ADMIN,
        body: Any = None, content: bytes | None = None) -> httpx.Response:
    headers = bearer(user_token(emulator, upn)) if upn else {}
    return httpx.request(method, f"{host.base_url}/api/manage/{path}", headers=headers, json=body, content=content,
                         timeout=20)


def graph_domains(graph: httpx.Client) -> dict[str, tuple[int, int]]:
    return {d["id"]: (d["passwordValidityPeriodInDays"], d["passwordNotificationWindowInDays"])
            for d in graph.get("/domains").json()["value"]}


def password_policies(graph: httpx.Client, user_id: str) -> str:
    return str(graph.get(f"/users/{user_id}?$select=passwordPolicies").json()["passwordPolicies"])


def audit_events(host: FunctionHost, emulator: GraphEmulator, activity: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{host.base_url}/api/manage/audit", params={"activity": activity, **params},
                         headers=bearer(user_token(emulator, ADMIN)), timeout=20)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def domain_patches(emulator: GraphEmulator) -> int:
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats", timeout=10).json()
    return int(stats["graph"]["byRoute"].get("PATCH /domains/{id}", 0))


# ---- the organisation's policy, per verified domain ------------------------------------------------------


def test_each_verified_domain_shows_its_validity_and_window_with_never_spelled_out(
        service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = api(service_host, graph_emulator, "GET", "password-expiration", upn=READER)
    assert response.status_code == 200, response.text
    domains = {d["id"]: d for d in response.json()["domains"]}
    assert domains[DOMAIN] == {"id": DOMAIN, "isDefault": True, "authenticationType": "Managed",
                               "validityDays": 90, "never": False, "notificationDays": 14}
    assert domains[INITIAL]["never"] is True
    assert domains[INITIAL]["validityDays"] is None
    assert str(NEVER) not in response.text


def test_a_change_lands_in_graph_and_is_audited_with_old_and_new_values(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    body = {"domains": [{"id": DOMAIN, "validityDays": 60, "notificationDays": 10},
                        {"id": INITIAL.upper(), "validityDays": 365, "notificationDays": 30}]}
    response = api(service_host, graph_emulator, "PUT", "password-expiration", body=body)
    assert response.status_code == 200, response.text
    shown = {d["id"]: (d["validityDays"], d["notificationDays"], d["never"]) for d in response.json()["domains"]}
    assert shown == {DOMAIN: (60, 10, False), INITIAL: (365, 30, False)}
    assert graph_domains(graph) == {DOMAIN: (60, 10), INITIAL: (365, 30)}
    again = api(service_host, graph_emulator, "GET", "password-expiration").json()
    assert {d["id"]: d["validityDays"] for d in again["domains"]} == {DOMAIN: 60, INITIAL: 365}

    [event] = audit_events(service_host, graph_emulator, "Update password expiration policy", user=ADMIN_ID)[:1]
    assert event["actorDisplay"] == ADMIN and event["outcome"] == "success"
    changes = {c["id"]: c for c in event["details"]["domains"]}
    assert changes[DOMAIN]["old"] == {"validityDays": 90, "never": False, "notificationDays": 14}
    assert changes[DOMAIN]["new"] == {"validityDays": 60, "never": False, "notificationDays": 10}
    assert changes[INITIAL]["old"]["never"] is True and changes[INITIAL]["new"]["validityDays"] == 365


def test_null_validity_means_never_and_is_stored_as_graphs_never_value(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    body = {"domains": [{"id": DOMAIN, "validityDays": None, "notificationDays": 7}]}
    response = api(service_host, graph_emulator, "PUT", "password-expiration", body=body)
    assert response.status_code == 200, response.text
    [shown] = [d for d in response.json()["domains"] if d["id"] == DOMAIN]
    assert shown["never"] is True and shown["validityDays"] is None
    assert graph_domains(graph)[DOMAIN] == (NEVER, 7)
    assert graph_domains(graph)[INITIAL] == (NEVER, 14), "a domain left out keeps its policy"


def test_an_unchanged_domain_is_not_written_again(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    before = domain_patches(graph_emulator)
    body = {"domains": [{"id": DOMAIN, "validityDays": 90, "notificationDays": 14}]}
    assert api(service_host, graph_emulator, "PUT", "password-expiration", body=body).status_code == 200
    assert domain_patches(graph_emulator) == before


@pytest.mark.parametrize(("entry", "fields"), [
    ({"id": DOMAIN, "validityDays": 13, "notificationDays": 5}, ["domains[0].validityDays"]),
    ({"id": DOMAIN, "validityDays": 731, "notificationDays": 31},
     ["domains[0].validityDays", "domains[0].notificationDays"]),
    ({"id": DOMAIN, "validityDays": 20, "notificationDays": 20}, ["domains[0].notificationDays"]),
    ({"id": DOMAIN, "validityDays": None, "notificationDays": 0}, ["domains[0].notificationDays"]),
    ({"id": "fabrikam.example", "validityDays": 90, "notificationDays": 14}, ["domains[0].id"]),
    ({"id": DOMAIN, "validityDays": "90", "notificationDays": True},
     ["domains[0].validityDays", "domains[0].notificationDays"]),
    ({"id": DOMAIN, "validityDays": 90}, ["domains[0].notificationDays"]),
    ({"id": DOMAIN, "validityDays": 90, "notificationDays": 14, "extra": 1}, ["domains[0].extra"]),
])
def test_invalid_policies_are_400_naming_each_field_and_nothing_is_written(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client,
        entry: dict[str, Any], fields: list[str]) -> None:
    before = domain_patches(graph_emulator)
    good = {"id": INITIAL, "validityDays": 90, "notificationDays": 14}
    response = api(service_host, graph_emulator, "PUT", "password-expiration", body={"domains": [entry, good]})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert sorted(e["field"] for e in errors) == sorted(fields)
    assert domain_patches(graph_emulator) == before
    assert graph_domains(graph) == INITIAL_DOMAINS


def test_an_unknown_domain_is_named_in_the_error(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    body = {"domains": [{"id": "fabrikam.example", "validityDays": 90, "notificationDays": 14}]}
    [error] = api(service_host, graph_emulator, "PUT", "password-expiration", body=body).json()["errors"]
    assert "fabrikam.example" in error["message"]


def test_a_domain_twice_in_one_request_is_refused(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    entry = {"id": DOMAIN, "validityDays": 90, "notificationDays": 14}
    response = api(service_host, graph_emulator, "PUT", "password-expiration", body={"domains": [entry, entry]})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["domains[1].id"]


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"domains": []}', b'{"domains": [], "all": 1}'])
def test_malformed_or_empty_bodies_are_400(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                           body: bytes) -> None:
    response = api(service_host, graph_emulator, "PUT", "password-expiration", content=body)
    assert response.status_code == 400
    assert response.json()["errors"]


def test_a_reader_cannot_change_expiration_and_nothing_is_written(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    body = {"domains": [{"id": DOMAIN, "validityDays": 60, "notificationDays": 10}]}
    response = api(service_host, graph_emulator, "PUT", "password-expiration", upn=READER, body=body)
    assert response.status_code == 403
    assert response.json()["type"] == "urn:sspr:problem:forbidden"
    never = api(service_host, graph_emulator, "PUT", f"users/{CASEY_ID}/password-never-expires", upn=READER,
                body={"neverExpires": True})
    assert never.status_code == 403
    assert graph_domains(graph) == INITIAL_DOMAINS
    assert password_policies(graph, CASEY_ID) == "None"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "password-expiration"), ("PUT", "password-expiration"),
    ("PUT", f"users/{CASEY_ID}/password-never-expires"),
])
def test_no_token_is_401(service_host: FunctionHost, graph_emulator: GraphEmulator, method: str, path: str) -> None:
    response = api(service_host, graph_emulator, method, path, upn=None, body={"neverExpires": True})
    assert response.status_code == 401
    assert response.json()["type"] == "urn:sspr:problem:unauthenticated"


# ---- one user's password never expires -------------------------------------------------------------------


def test_never_expires_turns_on_and_off_in_graph_and_is_audited(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    path = f"users/{CASEY_ID}/password-never-expires"
    on = api(service_host, graph_emulator, "PUT", path, body={"neverExpires": True})
    assert on.status_code == 200, on.text
    assert on.json() == {"id": CASEY_ID, "neverExpires": True, "passwordPolicies": "DisablePasswordExpiration"}
    assert password_policies(graph, CASEY_ID) == "DisablePasswordExpiration"
    off = api(service_host, graph_emulator, "PUT", path, body={"neverExpires": False})
    assert off.json()["neverExpires"] is False
    assert password_policies(graph, CASEY_ID) == "None"

    events = audit_events(service_host, graph_emulator, "Update user password never expires", user=CASEY_ID)
    assert [e["details"]["new"]["neverExpires"] for e in events[:2]] == [False, True]
    assert {e["targetUserId"] for e in events[:2]} == {CASEY_ID}
    assert events[0]["actorId"] == ADMIN_ID


def test_other_password_policies_are_kept(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                          graph: httpx.Client) -> None:
    graph.patch(f"/users/{CASEY_ID}", json={"passwordPolicies": "DisableStrongPassword"}).raise_for_status()
    path = f"users/{CASEY_ID}/password-never-expires"
    on = api(service_host, graph_emulator, "PUT", path, body={"neverExpires": True})
    assert on.status_code == 200, on.text
    assert password_policies(graph, CASEY_ID) == "DisablePasswordExpiration, DisableStrongPassword"
    api(service_host, graph_emulator, "PUT", path, body={"neverExpires": False})
    assert password_policies(graph, CASEY_ID) == "DisableStrongPassword"


def test_a_user_whose_password_never_expires_can_be_set_back(
        service_host: FunctionHost, graph_emulator: GraphEmulator, graph: httpx.Client) -> None:
    path = f"users/{ERIN_NEVER_EXPIRES_ID}/password-never-expires"
    response = api(service_host, graph_emulator, "PUT", path, body={"neverExpires": False})
    assert response.json()["passwordPolicies"] == "None"
    assert password_policies(graph, ERIN_NEVER_EXPIRES_ID) == "None"


def test_a_user_id_that_is_not_a_guid_is_400(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = api(service_host, graph_emulator, "PUT", "users/casey@contoso.example/password-never-expires",
                   body={"neverExpires": True})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["id"]


def test_an_unknown_user_is_404(service_host: FunctionHost, graph_emulator: GraphEmulator) -> None:
    response = api(service_host, graph_emulator, "PUT",
                   "users/c0ffee00-5e1f-4ea5-b0a7-00000000ffff/password-never-expires", body={"neverExpires": True})
    assert response.status_code == 404
    assert response.json()["type"] == "urn:sspr:problem:not-found"


@pytest.mark.parametrize("body", [{"neverExpires": "true"}, {}, {"neverExpires": True, "user": "x"}])
def test_a_bad_never_expires_body_is_400(service_host: FunctionHost, graph_emulator: GraphEmulator,
                                         graph: httpx.Client, body: dict[str, Any]) -> None:
    response = api(service_host, graph_emulator, "PUT", f"users/{CASEY_ID}/password-never-expires", body=body)
    assert response.status_code == 400
    assert response.json()["errors"]
    assert password_policies(graph, CASEY_ID) == "None"


# ---- the pure rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "enabled", "expected"), [
    (None, True, "DisablePasswordExpiration"),
    ("None", False, "None"),
    ("DisableStrongPassword", True, "DisablePasswordExpiration, DisableStrongPassword"),
    ("DisablePasswordExpiration, DisableStrongPassword", False, "DisableStrongPassword"),
    ("DisableStrongPassword,DisablePasswordExpiration", True, "DisablePasswordExpiration, DisableStrongPassword"),
    ("disablepasswordexpiration", False, "None"),
    ("DisableStrongPassword, FuturePolicy", True, "DisablePasswordExpiration, DisableStrongPassword, FuturePolicy"),
])
def test_never_expires_changes_only_its_own_policy_value(current: str | None, enabled: bool, expected: str) -> None:
    assert with_never_expires(current, enabled) == expected


@pytest.mark.parametrize(("validity", "notification", "bad"), [
    (14, 13, []), (730, 30, []), (None, 30, []), (None, 1, []),
    (13, 5, ["validityDays"]), (731, 5, ["validityDays"]), (0, 5, ["validityDays"]),
    (90, 31, ["notificationDays"]), (14, 14, ["notificationDays"]), (None, 0, ["notificationDays"]),
])
def test_validity_and_window_limits(validity: int | None, notification: int, bad: list[str]) -> None:
    errors = expiration_errors(0, DomainExpiration(DOMAIN, validity, notification))
    assert [e.field for e in errors] == [f"domains[0].{field}" for field in bad]
