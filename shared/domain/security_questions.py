"""Security questions (security.md A11, contracts.md section 1): which questions a user may pick, the rules their
answers must meet, and how answers are kept (Argon2id hashes only) and checked.

Answers are compared normalised: Unicode NFKC, case-folded, trimmed, inner whitespace collapsed to one space, so
"  New   York" and "new york" are one answer. Each is hashed with the id of its question, so a hash moved to
another question does not match there.

Argon2id parameters (OWASP Password Storage Cheat Sheet 2024 gives m=19 MiB, t=2 as its floor): m=32 MiB, t=3,
p=1. Measured on the 2-core development machine under the load of other work: ~50-56 ms per hash and per
verify (m=19 MiB/t=2: 18 ms; m=64 MiB/t=3: 135 ms). Five answers cost ~0.25 s of one core per registration,
which is why services hash off the event loop.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.errors import FieldError

MIN_ANSWER_LENGTH = 3
MAX_ANSWER_LENGTH = 40
MAX_SUBMITTED_ANSWER_LENGTH = 200  # before normalisation: bounds the work a request can cause
CUSTOM_PREFIX = "custom-"
STORED_FORMAT = 1

ANSWER_HASHER = PasswordHasher(time_cost=3, memory_cost=32 * 1024, parallelism=1, hash_len=32, salt_len=16,
                               type=Type.ID)


@dataclass(frozen=True)
class Question:
    """A question a user may pick: from the shipped catalogue (stable id, text in the user's language) or one of
    the admin's custom questions (id derived from its text, so reordering the policy keeps ids)."""

    id: str
    text: str
    custom: bool = False


@dataclass(frozen=True)
class Answer:
    question_id: str
    answer: str  # as typed; never logged, never stored


@dataclass(frozen=True)
class Rule:
    name: str
    message: str


ANSWER_COUNT = Rule("ANSWER_COUNT", "answer exactly {count} questions")
UNKNOWN_QUESTION = Rule("UNKNOWN_QUESTION", "is not one of the questions you may choose")
DUPLICATE_QUESTION = Rule("DUPLICATE_QUESTION", "repeats the question of answers[{first}]: choose another question")
ANSWER_LENGTH = Rule(
    "ANSWER_LENGTH",
    f"must be {MIN_ANSWER_LENGTH} to {MAX_ANSWER_LENGTH} characters (spaces at the ends and repeated spaces not counted)",
)
DUPLICATE_ANSWER = Rule("DUPLICATE_ANSWER", "is the same as the answer of answers[{first}]: give each question its own answer")
ANSWER_IS_YOUR_NAME = Rule("ANSWER_IS_YOUR_NAME", "must not be your name or your user name")


def normalise_answer(text: str) -> str:
    """NFKC, case-fold (again NFKC, as case folding can un-normalise), trim and collapse inner whitespace."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def custom_question_id(text: str) -> str:
    key = " ".join(text.split()).casefold()  # the policy's own duplicate rule for custom questions
    return CUSTOM_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def available_questions(catalogue: Mapping[str, str], custom: Sequence[str]) -> list[Question]:
    """The catalogue in one language, then the organisation's questions (in the language the admin wrote)."""
    return [Question(qid, text) for qid, text in catalogue.items()] + \
        [Question(custom_question_id(text), text, custom=True) for text in custom]


def identity_words(upn: str | None, name: str | None) -> frozenset[str]:
    """What an answer must not be: the UPN, its local part and the display name, normalised, with and without
    spaces (so "caseyjones" is refused for "Casey Jones")."""
    words = {w for w in (upn, upn.split("@", 1)[0] if upn else None, name) if w}
    normalised = {normalise_answer(w) for w in words}
    return frozenset(normalised | {w.replace(" ", "") for w in normalised}) - {""}


def answer_errors(answers: Sequence[Answer], questions: Sequence[Question], register_count: int,
                  forbidden: frozenset[str]) -> list[FieldError]:
    """Every rule the answers break, each at its field (`answers[2].answer`); empty when they may be saved."""
    errors: list[FieldError] = []
    if len(answers) != register_count:
        errors.append(FieldError.of("answers", ANSWER_COUNT.name, ANSWER_COUNT.message.format(count=register_count),
                                    count=register_count))
    known = {q.id for q in questions}
    first_question: dict[str, int] = {}
    first_answer: dict[str, int] = {}
    for index, given in enumerate(answers):
        where = f"answers[{index}]"
        if given.question_id not in known:
            errors.append(FieldError.of(f"{where}.questionId", UNKNOWN_QUESTION.name, UNKNOWN_QUESTION.message))
        else:
            first = first_question.setdefault(given.question_id, index)
            if first != index:
                errors.append(FieldError.of(f"{where}.questionId", DUPLICATE_QUESTION.name,
                                            DUPLICATE_QUESTION.message.format(first=first), first=first + 1))
        normalised = normalise_answer(given.answer)
        if not MIN_ANSWER_LENGTH <= len(normalised) <= MAX_ANSWER_LENGTH:
            errors.append(FieldError.of(f"{where}.answer", ANSWER_LENGTH.name, ANSWER_LENGTH.message,
                                        low=MIN_ANSWER_LENGTH, high=MAX_ANSWER_LENGTH))
            continue
        if normalised in forbidden or normalised.replace(" ", "") in forbidden:
            errors.append(FieldError.of(f"{where}.answer", ANSWER_IS_YOUR_NAME.name, ANSWER_IS_YOUR_NAME.message))
        first = first_answer.setdefault(normalised, index)
        if first != index:
            errors.append(FieldError.of(f"{where}.answer", DUPLICATE_ANSWER.name,
                                        DUPLICATE_ANSWER.message.format(first=first), first=first + 1))
    return errors


def _hash_input(question_id: str, answer: str) -> str:
    return f"{question_id}\x1f{normalise_answer(answer)}"


@dataclass(frozen=True)
class RegisteredQuestion:
    """A question the user answered: its id, its text if custom (the policy may drop it later), the hash."""

    id: str
    answer_hash: str
    text: str | None = None


def protect_answers(answers: Sequence[Answer], questions: Sequence[Question]) -> str:
    """The stored form (RegisteredMethod.secret): question ids with Argon2id hashes of the answers, as JSON."""
    by_id = {q.id: q for q in questions}
    entries = []
    for given in answers:
        entry = {"id": given.question_id, "hash": ANSWER_HASHER.hash(_hash_input(given.question_id, given.answer))}
        if by_id[given.question_id].custom:
            entry["text"] = by_id[given.question_id].text
        entries.append(entry)
    return json.dumps({"v": STORED_FORMAT, "questions": entries}, separators=(",", ":"), ensure_ascii=False)


def registered_questions(secret: str | None) -> list[RegisteredQuestion]:
    """The questions of a stored answer set (empty if there is none or it is unreadable)."""
    try:
        document = json.loads(secret or "")
        return [RegisteredQuestion(e["id"], e["hash"], e.get("text")) for e in document["questions"]]
    except (ValueError, KeyError, TypeError):
        return []


@cache
def _decoy_hash() -> str:
    """A hash no answer matches, verified in place of an unregistered question so timing stays the same."""
    return ANSWER_HASHER.hash(secrets.token_hex(16))


def answers_match(secret: str | None, answers: Mapping[str, str], reset_count: int) -> bool:
    """True when exactly `reset_count` distinct questions are answered, each is one the user registered, and
    every answer matches (A11: the policy's resetCount, never fewer).

    The number of answers and their lengths are checked before any hashing (each verify costs ~50 ms of CPU), so
    a request with many answers costs nothing. Every answer is then verified even after a mismatch, and an
    unregistered question against a decoy hash, so the time taken does not say which one was wrong.
    """
    registered = {q.id: q for q in registered_questions(secret)}
    if reset_count < 1 or len(answers) != reset_count or len(registered) < reset_count:
        return False
    if any(len(answer) > MAX_SUBMITTED_ANSWER_LENGTH for answer in answers.values()):
        return False
    results = []
    for question_id, answer in answers.items():
        question = registered.get(question_id)
        stored = question.answer_hash if question is not None else _decoy_hash()
        try:
            results.append(ANSWER_HASHER.verify(stored, _hash_input(question_id, answer)) and question is not None)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            results.append(False)
    return all(results)
