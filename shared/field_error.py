"""One violated rule of one input field, as `InvalidRequest` (shared/errors.py) lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One violated rule of one input field; `field` is a path such as `answers[1].answer`.

    `message` is the rule in English for logs and API clients; `code` names the rule's plain words for a person in
    web/i18n/fields.<lang>.json (filled with `values`), which functions/api.py adds as `text` in the caller's
    language. Every code raised anywhere has its words in every language (tests/unit/test_i18n.py)."""

    field: str
    message: str
    code: str = "invalid"
    values: tuple[tuple[str, str | int], ...] = ()

    @classmethod
    def of(cls, field: str, code: str, message: str, **values: str | int) -> FieldError:
        return cls(field, message, code, tuple(sorted(values.items())))

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}
