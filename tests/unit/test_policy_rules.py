"""Every SSPR policy rule, each seen failing at its field with its message; defaults; admin requirements; diffs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain import policy as rules
from shared.domain.policy import (
    DEFAULT_DOCUMENT,
    DEFAULT_POLICY,
    RULES,
    Method,
    Policy,
    Scope,
    effective_requirements,
)
from shared.domain.policy_changes import changed_settings

GROUP = "5D6E1C47-5B73-4D0E-9F1A-2C3B4D5E6F70"
Doc = dict[str, Any]


def document(**changes: Any) -> Doc:
    """The default document with dotted-path changes, e.g. document(**{"codes.length": 12})."""
    doc = copy.deepcopy(DEFAULT_DOCUMENT)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = doc
        for key in parents:
            target = target[key]
        target[leaf] = value
    return doc


def violations(doc: Doc) -> list[tuple[str, str, str]]:
    """(rule or error type, field path as the API names it, message) for every error of `doc`."""
    try:
        Policy.model_validate(doc)
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            path = ""
            for part in error["loc"]:
                path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
            found.append((error["type"], path, error["msg"]))
        return found
    return []


QUESTIONS_ON = {"methodsAllowed.securityQuestions": True, "methodsRequired": 2}

# rule name -> a document that breaks it (and nothing else), and the field it must be reported on
CASES: dict[str, tuple[Doc, str]] = {
    "GROUP_ID_IS_GUID": (document(scope="selected", groupId="sales-team"), "groupId"),
    "GROUP_REQUIRED_WHEN_SELECTED": (document(scope="selected"), "groupId"),
    "GROUP_ONLY_WHEN_SELECTED": (document(scope="all", groupId=GROUP), "groupId"),
    "APP_NOTIFICATION_NOT_OFFERED": (
        document(**{"methodsAllowed.appNotification": True}), "methodsAllowed.appNotification"
    ),
    "SECURITY_QUESTIONS_NOT_ALONE": (
        document(methodsAllowed={"email": False, "mobilePhone": False, "officePhone": False,
                                       "authenticatorApp": False, "appNotification": False, "securityQuestions": True}),
        "methodsAllowed.securityQuestions",
    ),
    "METHODS_REQUIRED_ONE_OR_TWO": (document(methodsRequired=3), "methodsRequired"),
    "ENOUGH_METHODS_ALLOWED": (
        document(methodsRequired=2, methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "mobilePhone": False,
                                                    "authenticatorApp": False}),
        "methodsRequired",
    ),
    "SECURITY_QUESTIONS_NEED_TWO_METHODS": (document(**{"methodsAllowed.securityQuestions": True}), "methodsRequired"),
    "REGISTER_COUNT_RANGE": (document(**{"securityQuestions.registerCount": 6}), "securityQuestions.registerCount"),
    "RESET_COUNT_RANGE": (document(**{"securityQuestions.resetCount": 2}), "securityQuestions.resetCount"),
    "RESET_COUNT_NOT_ABOVE_REGISTER_COUNT": (
        document(**{"securityQuestions.registerCount": 3, "securityQuestions.resetCount": 4}),
        "securityQuestions.resetCount",
    ),
    "CUSTOM_QUESTIONS_AT_MOST_20": (
        document(**{"securityQuestions.customQuestions": [f"Question number {i}?" for i in range(21)]}),
        "securityQuestions.customQuestions",
    ),
    "CUSTOM_QUESTION_LENGTH": (
        document(**{"securityQuestions.customQuestions": ["What was your first car?", "x" * 201]}),
        "securityQuestions.customQuestions[1]",
    ),
    "CUSTOM_QUESTION_ONE_LINE": (
        document(**{"securityQuestions.customQuestions": ["Line one\nline two?"]}),
        "securityQuestions.customQuestions[0]",
    ),
    "CUSTOM_QUESTIONS_UNIQUE": (
        document(**{"securityQuestions.customQuestions": ["Favourite  teacher?", "Best friend?",
                                                          "favourite TEACHER? "]}),
        "securityQuestions.customQuestions",
    ),
    "DAYS_USER_MAY_SKIP_RANGE": (document(daysUserMaySkip=15), "daysUserMaySkip"),
    "RECONFIRM_DAYS_RANGE": (document(reconfirmDays=731), "reconfirmDays"),
    "HELPDESK_URL_HTTPS": (document(helpdesk={"url": "http://help.contoso.com"}), "helpdesk.url"),
    "HELPDESK_EMAIL_ADDRESS": (document(helpdesk={"email": "helpdesk at contoso"}), "helpdesk.email"),
    "HELPDESK_URL_OR_EMAIL": (
        document(helpdesk={"url": "https://help.contoso.com", "email": "helpdesk@contoso.com"}), "helpdesk.email"
    ),
    "PROTECTED_GROUP_IS_GUID": (document(helpdesk={"protectedGroupId": "Admins"}), "helpdesk.protectedGroupId"),
    "CODE_LENGTH_RANGE": (document(**{"codes.length": 5}), "codes.length"),
    "EMAIL_CODE_TTL_RANGE": (document(**{"codes.emailTtlMinutes": 16}), "codes.emailTtlMinutes"),
    "SMS_CODE_TTL_RANGE": (document(**{"codes.smsTtlMinutes": 11}), "codes.smsTtlMinutes"),
    "VOICE_CODE_TTL_RANGE": (document(**{"codes.voiceTtlMinutes": 0}), "codes.voiceTtlMinutes"),
    "UNLOCK_NEEDS_WRITEBACK": (
        document(onPremises={"writeback": False, "unlockWithoutReset": True}), "onPremises.unlockWithoutReset"
    ),
    "EXPIRY_STAGES_RANGE": (document(**{"expiryReminders.stages": [14, 91]}), "expiryReminders.stages"),
    "EXPIRY_STAGES_UNIQUE": (document(**{"expiryReminders.stages": [7, 3, 7]}), "expiryReminders.stages"),
    "PASSKEY_TWICE_FOR_ADMINS_NEEDS_TWICE": (
        document(passkeys={"countsAsTwoMethods": False, "countsAsTwoForAdministrators": True}),
        "passkeys.countsAsTwoForAdministrators",
    ),
    "TAP_LIFETIME_RANGE": (document(**{"temporaryAccessPass.lifetimeMinutes": 9}), "temporaryAccessPass.lifetimeMinutes"),
}


def test_every_rule_has_a_case_here() -> None:
    assert sorted(CASES) == sorted(rule.name for rule in RULES)


@pytest.mark.parametrize("rule_name", sorted(CASES))
def test_a_broken_rule_is_reported_alone_at_its_field(rule_name: str) -> None:
    doc, field = CASES[rule_name]
    rule = getattr(rules, rule_name)
    [(kind, path, message)] = violations(doc)
    assert (kind, path) == (rule_name, field)
    assert message.startswith(rule.message.split("{")[0])
    assert "{" in rule.message or message == rule.message


def test_the_rule_table_names_the_field_it_reports_on() -> None:
    for name, (_, field) in CASES.items():
        rule = getattr(rules, name)
        assert rule.field.replace("[i]", "") == field.split("[")[0], name


def test_every_violation_is_reported_at_once() -> None:
    doc = document(
        scope="selected",
        includeGuests="yes",
        methodsAllowed={**DEFAULT_DOCUMENT["methodsAllowed"], "appNotification": True},
        securityQuestions={"registerCount": 3, "resetCount": 4, "customQuestions": ["Pet?", "pet ?", "PET?"]},
        daysUserMaySkip=-1,
        reconfirmDays=1000,
        helpdesk={"url": "ftp://help"},
        codes={"length": 4, "emailTtlMinutes": 30, "smsTtlMinutes": 11, "voiceTtlMinutes": 11},
        surprise=True,
    )
    found = {(kind, path) for kind, path, _ in violations(doc)}
    assert found == {
        ("GROUP_REQUIRED_WHEN_SELECTED", "groupId"),
        ("bool_type", "includeGuests"),
        ("APP_NOTIFICATION_NOT_OFFERED", "methodsAllowed.appNotification"),
        ("RESET_COUNT_NOT_ABOVE_REGISTER_COUNT", "securityQuestions.resetCount"),
        ("CUSTOM_QUESTIONS_UNIQUE", "securityQuestions.customQuestions"),
        ("DAYS_USER_MAY_SKIP_RANGE", "daysUserMaySkip"),
        ("RECONFIRM_DAYS_RANGE", "reconfirmDays"),
        ("HELPDESK_URL_HTTPS", "helpdesk.url"),
        ("CODE_LENGTH_RANGE", "codes.length"),
        ("EMAIL_CODE_TTL_RANGE", "codes.emailTtlMinutes"),
        ("SMS_CODE_TTL_RANGE", "codes.smsTtlMinutes"),
        ("VOICE_CODE_TTL_RANGE", "codes.voiceTtlMinutes"),
        ("extra_forbidden", "surprise"),
    }


def test_messages_carry_the_numbers_that_explain_them() -> None:
    [(_, _, message)] = violations(CASES["RESET_COUNT_NOT_ABOVE_REGISTER_COUNT"][0])
    assert message.startswith("must not be more than registerCount (3)")
    [(_, _, message)] = violations(CASES["ENOUGH_METHODS_ALLOWED"][0])
    assert message.startswith("is 2 but only 1 method(s) are allowed")
    [(_, _, message)] = violations(CASES["CUSTOM_QUESTIONS_UNIQUE"][0])
    assert message.startswith("question [2] repeats question [0]")


@pytest.mark.parametrize(
    ("path", "bad"),
    [("methodsRequired", True), ("methodsRequired", "2"), ("reconfirmDays", 180.0), ("notifyUsersOnReset", 1),
     ("scope", "everyone"), ("groupId", 42), ("securityQuestions.customQuestions", "Pet?"),
     ("methodsAllowed.email", "true")],
)
def test_wrong_types_are_refused_not_coerced(path: str, bad: Any) -> None:
    found = violations(document(**{path: bad}))
    assert [p for _, p, _ in found] == [path]


def test_every_setting_but_the_empty_ones_is_required() -> None:
    doc = document()
    for key in ("groupId", "helpdesk"):
        del doc[key]
    del doc["securityQuestions"]["customQuestions"]
    assert Policy.model_validate(doc) == DEFAULT_POLICY
    del doc["reconfirmDays"], doc["codes"]["length"]
    assert {(k, p) for k, p, _ in violations(doc)} == {("missing", "reconfirmDays"), ("missing", "codes.length")}


def test_snake_case_names_are_unknown_fields() -> None:
    doc = document()
    doc["reconfirm_days"] = doc.pop("reconfirmDays")
    found = {(kind, path) for kind, path, _ in violations(doc)}
    assert found == {("missing", "reconfirmDays"), ("extra_forbidden", "reconfirm_days")}


def test_the_limits_themselves_are_accepted() -> None:
    edges = [
        document(daysUserMaySkip=0), document(daysUserMaySkip=14),
        document(reconfirmDays=0), document(reconfirmDays=730),
        document(codes={"length": 6, "emailTtlMinutes": 1, "smsTtlMinutes": 1, "voiceTtlMinutes": 1}),
        document(codes={"length": 10, "emailTtlMinutes": 15, "smsTtlMinutes": 10, "voiceTtlMinutes": 10}),
        document(**QUESTIONS_ON, securityQuestions={"registerCount": 5, "resetCount": 5,
                                                    "customQuestions": [f"Q{i}" + "?" * 190 for i in range(20)]}),
        document(**QUESTIONS_ON,
                 securityQuestions={"registerCount": 3, "resetCount": 3, "customQuestions": ["x" * 200]}),
        document(scope="selected", groupId=GROUP),
        document(helpdesk={"email": "help.desk+sspr@it.contoso.com"}),
        document(helpdesk={"url": "https://contoso.sharepoint.com/sites/it/help?x=1"}),
    ]
    for doc in edges:
        assert violations(doc) == [], doc


def test_defaults_are_the_secure_ones() -> None:
    assert DEFAULT_POLICY.scope is Scope.NONE
    assert DEFAULT_POLICY.methods_required == 1
    assert Method.SECURITY_QUESTIONS not in DEFAULT_POLICY.methods_allowed.methods()
    assert DEFAULT_POLICY.include_guests is False
    assert (DEFAULT_POLICY.codes.length, DEFAULT_POLICY.codes.sms_ttl_minutes) == (8, 5)
    assert DEFAULT_POLICY.reconfirm_days == 180
    assert DEFAULT_POLICY.as_document() == DEFAULT_DOCUMENT


def test_a_group_id_is_kept_lower_case_and_the_document_round_trips_through_json() -> None:
    policy = Policy.model_validate(document(scope="selected", groupId=GROUP))
    assert policy.group_id == GROUP.lower()
    assert Policy.model_validate_json(json.dumps(policy.as_document())) == policy


def test_a_policy_cannot_be_changed_in_place() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_POLICY.reconfirm_days = 0  # type: ignore[misc]


def test_admins_need_two_methods_and_never_questions_whatever_the_policy_says() -> None:
    policy = Policy.model_validate(document(**QUESTIONS_ON))
    user = effective_requirements(policy, is_admin=False)
    admin = effective_requirements(policy, is_admin=True)
    assert user.methods_required == 2 and Method.SECURITY_QUESTIONS in user.methods_allowed
    assert admin.methods_required == 2 and Method.SECURITY_QUESTIONS not in admin.methods_allowed
    assert admin.methods_allowed == {Method.EMAIL, Method.MOBILE_PHONE, Method.AUTHENTICATOR_APP}
    assert effective_requirements(DEFAULT_POLICY, is_admin=True).methods_required == 2
    assert effective_requirements(DEFAULT_POLICY, is_admin=False).methods_required == 1


def test_admins_cannot_reset_when_the_policy_leaves_them_one_method() -> None:
    only_email_and_questions = {**DEFAULT_DOCUMENT["methodsAllowed"], "mobilePhone": False, "authenticatorApp": False,
                                "securityQuestions": True}
    policy = Policy.model_validate(document(methodsAllowed=only_email_and_questions, methodsRequired=2))
    assert effective_requirements(policy, is_admin=False).satisfiable
    assert not effective_requirements(policy, is_admin=True).satisfiable


def test_changed_settings_lists_only_what_changed_with_old_and_new_values() -> None:
    new = Policy.model_validate(
        document(scope="all", **{"codes.length": 6, "securityQuestions.customQuestions": ["Pet?"]})
    )
    old_values, new_values = changed_settings(DEFAULT_POLICY, new)
    assert old_values == {"scope": "none", "codes.length": 8, "securityQuestions.customQuestions": []}
    assert new_values == {"scope": "all", "codes.length": 6, "securityQuestions.customQuestions": ["Pet?"]}
    assert changed_settings(DEFAULT_POLICY, DEFAULT_POLICY) == ({}, {})

