"""Security questions (security.md A11, contracts.md): normalisation, every registration rule, Argon2id storage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from argon2 import Type
from argon2.low_level import ARGON2_VERSION

from shared.domain import security_questions as sq
from shared.domain.security_questions import Answer, Question

CATALOGS = Path(__file__).resolve().parents[2] / "web" / "i18n"
QUESTIONS = [Question("city-of-birth", "In what city were you born?"), Question("first-pet-name", "Pet?"),
             Question("first-school", "School?"), Question("childhood-street", "Street?"),
             Question(sq.custom_question_id("Our office's first city?"), "Our office's first city?", custom=True)]
CASEY = sq.identity_words("casey.jones@contoso.example", "Casey Jones")


def answers(*pairs: tuple[str, str]) -> list[Answer]:
    return [Answer(q, a) for q, a in pairs]


GOOD = answers(("city-of-birth", "Uppsala"), ("first-pet-name", "Rex"), ("first-school", "Ekbacken"))


def fields(errors: list) -> list[str]:  # type: ignore[type-arg]
    return [e.field for e in errors]


@pytest.mark.parametrize(("typed", "normalised"), [
    ("  New   York ", "new york"),
    ("NEW\tYORK\u00a0", "new york"),
    ("Ｎｅｗ York", "new york"),  # full-width letters (NFKC)
    ("Straße", "strasse"),  # case folding, not lower()
    ("e\u0301cole", "école"),  # composed (NFKC)
])
def test_answers_are_normalised(typed: str, normalised: str) -> None:
    assert sq.normalise_answer(typed) == normalised


def test_good_answers_break_no_rule() -> None:
    assert sq.answer_errors(GOOD, QUESTIONS, 3, CASEY) == []


def test_the_number_of_answers_must_be_the_policys_register_count() -> None:
    assert fields(sq.answer_errors(GOOD[:2], QUESTIONS, 3, CASEY)) == ["answers"]
    assert fields(sq.answer_errors(GOOD, QUESTIONS, 4, CASEY)) == ["answers"]


def test_an_unknown_question_is_refused_at_its_field() -> None:
    given = [*GOOD[:2], Answer("favourite-colour", "blue")]
    assert fields(sq.answer_errors(given, QUESTIONS, 3, CASEY)) == ["answers[2].questionId"]


def test_a_question_answered_twice_is_refused() -> None:
    given = answers(("city-of-birth", "Uppsala"), ("first-pet-name", "Rex"), ("city-of-birth", "Lund"))
    [error] = sq.answer_errors(given, QUESTIONS, 3, CASEY)
    assert error.field == "answers[2].questionId" and "answers[0]" in error.message


def test_the_same_answer_twice_is_refused_whatever_its_case_and_spacing() -> None:
    given = answers(("city-of-birth", "Uppsala"), ("first-pet-name", "Rex"), ("first-school", "  UPPSALA "))
    [error] = sq.answer_errors(given, QUESTIONS, 3, CASEY)
    assert error.field == "answers[2].answer" and "answers[0]" in error.message


@pytest.mark.parametrize("answer", ["ab", "  a  ", " x\t\t ", "x" * 41, "   ", ""])
def test_answers_must_be_3_to_40_characters_after_normalising(answer: str) -> None:
    given = [*GOOD[:2], Answer("first-school", answer)]
    assert fields(sq.answer_errors(given, QUESTIONS, 3, CASEY)) == ["answers[2].answer"]


@pytest.mark.parametrize("answer", ["abc", "   a  b c   ", "x" * 40])
def test_answers_of_3_and_40_characters_are_fine(answer: str) -> None:
    assert sq.answer_errors([*GOOD[:2], Answer("first-school", answer)], QUESTIONS, 3, CASEY) == []


@pytest.mark.parametrize("answer", ["casey.jones@contoso.example", "Casey.Jones", "casey jones", "CASEYJONES"])
def test_an_answer_equal_to_the_users_name_or_upn_is_refused(answer: str) -> None:
    given = [*GOOD[:2], Answer("first-school", answer)]
    [error] = sq.answer_errors(given, QUESTIONS, 3, CASEY)
    assert error.field == "answers[2].answer" and "name" in error.message


def test_an_answer_only_containing_the_name_is_fine() -> None:
    assert sq.answer_errors([*GOOD[:2], Answer("first-school", "Casey High")], QUESTIONS, 3, CASEY) == []


def test_every_broken_rule_is_reported_at_once() -> None:
    given = answers(("city-of-birth", "ab"), ("city-of-birth", "Rex"), ("nope", "rex"), ("first-school", "casey jones"))
    assert sorted(fields(sq.answer_errors(given, QUESTIONS, 3, CASEY))) == sorted([
        "answers", "answers[0].answer", "answers[1].questionId", "answers[2].questionId", "answers[2].answer",
        "answers[3].answer",
    ])


def test_custom_question_ids_follow_the_text_not_its_position() -> None:
    first = sq.available_questions({}, ["Our office's first city?", "Team mascot?"])
    reordered = sq.available_questions({}, ["Team mascot?", "Our  office's FIRST city?"])
    assert {q.id for q in first} == {q.id for q in reordered}
    assert all(q.id.startswith("custom-") and q.custom for q in first)


# ---- storage: Argon2id hashes only ----------------------------------------------------------------------------

def test_answers_are_stored_as_argon2id_hashes_with_the_documented_parameters() -> None:
    stored = sq.protect_answers(GOOD, QUESTIONS)
    registered = sq.registered_questions(stored)
    # Outside the hashes (whose base64 may hold "rex" by chance, about one run in 150) no answer is stored.
    around = stored
    for question in registered:
        around = around.replace(question.answer_hash, "")
    assert "uppsala" not in around.lower() and "ekbacken" not in around.lower() and "rex" not in around.lower()
    assert [q.id for q in registered] == ["city-of-birth", "first-pet-name", "first-school"]
    for question in registered:
        assert question.answer_hash.startswith(f"$argon2id$v={ARGON2_VERSION}$m=32768,t=3,p=1$")
    hasher = sq.ANSWER_HASHER
    assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (Type.ID, 3, 32768, 1)


def test_a_custom_questions_text_is_kept_with_its_hash() -> None:
    custom = QUESTIONS[4]
    stored = sq.protect_answers([*GOOD[:2], Answer(custom.id, "Lund")], QUESTIONS)
    assert sq.registered_questions(stored)[2].text == custom.text
    assert sq.registered_questions(stored)[0].text is None


def test_right_answers_match_whatever_their_case_and_spacing() -> None:
    stored = sq.protect_answers(GOOD, QUESTIONS)
    assert sq.answers_match(stored, {"city-of-birth": "  UPPSALA", "first-school": "ekbacken "}, reset_count=2)
    assert sq.answers_match(stored, {"city-of-birth": "uppsala", "first-pet-name": "REX", "first-school": "Ekbacken"},
                            reset_count=3)


@pytest.mark.parametrize("given", [
    {"city-of-birth": "Uppsala", "first-school": "Lund"},  # one wrong
    {"city-of-birth": "Rex", "first-school": "Ekbacken"},  # another question's answer
    {"city-of-birth": "Uppsala", "childhood-street": "Storgatan"},  # a question not registered
    {},  # nothing
])
def test_wrong_answers_do_not_match(given: dict[str, str]) -> None:
    assert not sq.answers_match(sq.protect_answers(GOOD, QUESTIONS), given, reset_count=2)


@pytest.mark.parametrize("given", [
    {"city-of-birth": "Uppsala"},  # one right answer is not enough when resetCount is 3
    {"city-of-birth": "Uppsala", "first-school": "Ekbacken"},
])
def test_fewer_answers_than_the_reset_count_do_not_match_even_when_right(given: dict[str, str]) -> None:
    assert not sq.answers_match(sq.protect_answers(GOOD, QUESTIONS), given, reset_count=3)


def test_more_answers_than_the_reset_count_are_refused_before_any_hashing() -> None:
    stored = sq.protect_answers(GOOD, QUESTIONS)
    flood = {"city-of-birth": "Uppsala", "first-pet-name": "Rex", "first-school": "Ekbacken",
             **{f"q{i}": "x" * 40 for i in range(500)}}
    started = time.perf_counter()
    assert not sq.answers_match(stored, flood, reset_count=3)
    assert time.perf_counter() - started < 1  # 503 Argon2 verifies would take ~25 s


def test_a_reset_count_above_the_registered_questions_matches_nothing() -> None:
    stored = sq.protect_answers(GOOD, QUESTIONS)
    right = {"city-of-birth": "Uppsala", "first-pet-name": "Rex", "first-school": "Ekbacken", "extra": "x"}
    assert not sq.answers_match(stored, right, reset_count=4)


def test_unreadable_stored_answers_match_nothing() -> None:
    assert not sq.answers_match("not json", {"city-of-birth": "Uppsala"}, reset_count=1)
    assert not sq.answers_match(None, {"city-of-birth": "Uppsala"}, reset_count=1)


def test_a_hash_moved_to_another_question_does_not_match_there() -> None:
    document = json.loads(sq.protect_answers(GOOD, QUESTIONS))
    document["questions"][1]["hash"] = document["questions"][0]["hash"]  # Uppsala's hash under first-pet-name
    assert not sq.answers_match(json.dumps(document), {"first-pet-name": "Uppsala"}, reset_count=1)


# ---- the shipped catalogue -------------------------------------------------------------------------------------

def test_the_catalogue_has_the_same_twenty_ids_in_english_and_swedish() -> None:
    english = json.loads((CATALOGS / "questions.en.json").read_text(encoding="utf-8"))
    swedish = json.loads((CATALOGS / "questions.sv.json").read_text(encoding="utf-8"))
    assert list(english) == list(swedish) and len(english) == 20
    assert all(text.strip().endswith("?") for text in [*english.values(), *swedish.values()])
    assert len(set(english.values())) == 20 and len(set(swedish.values())) == 20
