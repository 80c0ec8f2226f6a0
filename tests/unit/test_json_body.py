"""The one JSON body reader refuses hostile JSON as a 400 naming the body, never a crash (security.md D9)."""

from __future__ import annotations

import time

import pytest

from functions.json_body import MAX_DEPTH, MAX_NUMBER_CHARS, load_json
from shared.errors import InvalidRequest


def refusal(body: bytes) -> str:
    with pytest.raises(InvalidRequest) as refused:
        load_json(body)
    [error] = refused.value.errors
    assert error.field == "body"
    return error.message


def test_D9_nesting_up_to_the_limit_is_read_and_one_more_level_is_refused() -> None:
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert load_json(b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH) is not None
    assert "nested deeper than" in refusal(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert "nested deeper than" in refusal(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,  # about 10 KB
    b"[" * 5000,  # unterminated
    b'{"a":[' * 3000,
    b"[" * 20 + b"}" * 20,  # closed by the wrong kind
    b'{"a": "' + b"[" * 5000 + b'"',  # a bracket inside an unterminated string
], ids=["5000-deep", "unterminated", "unterminated-objects", "mismatched", "unterminated-string"])
def test_D9_deep_or_unterminated_nesting_is_refused(body: bytes) -> None:
    assert refusal(body)


def test_D9_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert load_json(b'{"a": "' + b"[" * 5000 + b'", "b": "\\"]]]"}') == {"a": "[" * 5000, "b": '"]]]'}


@pytest.mark.parametrize("number", [
    b"1" * 5000, b"-" + b"9" * 4000, b"1." + b"5" * 5000, b"1e" + b"9" * 40, b"1e400", b"-1e400",
], ids=["5000-digits", "negative-4000", "long-fraction", "long-exponent", "overflow", "negative-overflow"])
def test_D9_an_oversized_number_is_refused(number: bytes) -> None:
    assert "number" in refusal(b'{"n": ' + number + b"}")


def test_D9_numbers_up_to_the_limit_are_read() -> None:
    assert load_json(b'{"n": ' + b"1" * MAX_NUMBER_CHARS + b"}") == {"n": int("1" * MAX_NUMBER_CHARS)}
    assert load_json(b'{"n": -1.2345678901234567e-300}') == {"n": -1.2345678901234567e-300}


@pytest.mark.parametrize("body", [b'{"n": NaN}', b'{"n": Infinity}', b'{"n": -Infinity}', b"{", b"\xff{}",
                                  b'{"a": 1, "a": 2}', b"", b"[1,]"])
def test_D9_anything_else_the_parser_refuses_is_a_body_error(body: bytes) -> None:
    assert refusal(body)


def test_D9_a_pathological_body_is_judged_in_linear_time() -> None:
    started = time.perf_counter()
    for body in (b'"\\' * 8000, b'"\\"' * 5000, b"[" * 16000, b"[" + b"[]" * 8000, b'"' * 16001):
        with pytest.raises(InvalidRequest):
            load_json(body)
    assert time.perf_counter() - started < 1.0
