"""Every catalog exists in English and Swedish with the same keys and the same placeholders."""

from __future__ import annotations

import re
import string
from collections import defaultdict

from shared import i18n


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_catalog_has_both_languages_with_the_same_keys_and_placeholders() -> None:
    files = sorted(i18n.CATALOG_DIR.glob("*.json"))
    languages: dict[str, set[str]] = defaultdict(set)
    for path in files:
        name, _, language = path.stem.rpartition(".")
        languages[name].add(language)
    assert languages, "no catalogs found"
    for name, found in languages.items():
        assert found == set(i18n.LANGUAGES), f"{name}: languages {sorted(found)}"
        english, swedish = i18n.catalog(name, "en"), i18n.catalog(name, "sv")
        assert set(english) == set(swedish), f"{name}: keys differ: {sorted(set(english) ^ set(swedish))}"
        for key in english:
            assert _placeholders(english[key]) == _placeholders(swedish[key]), f"{name}.{key}: placeholders differ"
            assert english[key].strip() and swedish[key].strip(), f"{name}.{key}: empty text"


def test_accept_language_picks_swedish_only_when_preferred() -> None:
    assert i18n.choose_language("sv-SE,sv;q=0.9,en;q=0.8") == "sv"
    assert i18n.choose_language("en-US,sv;q=0.5") == "en"
    assert i18n.choose_language("de-DE") == "en"
    assert i18n.choose_language(None) == "en"


def test_a_directory_language_maps_to_ours() -> None:
    assert i18n.language_of("sv-SE") == "sv"
    assert i18n.language_of("en-GB") == "en"
    assert i18n.language_of(None) == "en"


def test_every_text_key_the_pages_use_exists_in_the_pages_catalog() -> None:
    import re

    web = i18n.CATALOG_DIR.parent
    used: set[str] = set()
    for page in web.glob("pages/**/*.html"):
        used |= set(re.findall(r'data-i18n(?:-placeholder|-label)?="([^"]+)"', page.read_text(encoding="utf-8")))
    for script in web.glob("assets/*.js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', script.read_text(encoding="utf-8")))
    assert used, "no text keys found in the pages"
    missing = sorted(used - set(i18n.catalog("pages", "en")))
    assert not missing, f"keys used by the pages but missing from pages.en.json: {missing}"


# ---- field errors: every rule the API can break has plain words in every language ---------------------------------

def _raised_field_codes() -> set[str]:
    """The codes of every FieldError and ContactError the service can raise, read from its source: a string
    constant, or a rule's `.name`. A FieldError built without a code (the constructor, not `FieldError.of`) fails."""
    import ast
    from pathlib import Path

    from shared.domain import security_questions
    from shared.domain.policy import RULES

    rules = {r.name for r in RULES} | {v.name for v in vars(security_questions).values()
                                        if isinstance(v, security_questions.Rule)}
    root = Path(__file__).resolve().parents[2]
    codes: set[str] = set()
    for path in [*root.glob("shared/**/*.py"), *root.glob("functions/*.py")]:
        if path.name in ("errors.py", "field_errors.py"):  # field_errors.py maps pydantic's types: PYDANTIC_CODES
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name == "FieldError":
                raise AssertionError(f"{path}:{node.lineno}: FieldError without a code: use FieldError.of")
            if name == "PydanticCustomError" and node.args and isinstance(node.args[0], ast.Constant):
                codes.add(str(node.args[0].value))
            if name in ("FieldError.of", "ContactError") and len(node.args) >= 2:
                code = node.args[1]
                if isinstance(code, ast.Constant):
                    codes.add(str(code.value))
                elif isinstance(code, ast.Attribute) and code.attr == "name":
                    codes.add(str(getattr(security_questions, ast.unparse(code.value), None).name)
                              if hasattr(security_questions, ast.unparse(code.value)) else ast.unparse(code.value))
                elif not (isinstance(code, ast.Attribute) and code.attr == "code"):
                    raise AssertionError(f"{path}:{node.lineno}: a field error's code must be a literal or a rule")
    return codes | rules


def test_every_field_error_the_service_raises_has_words_in_every_language() -> None:
    from functions.field_errors import PYDANTIC_CODES

    wanted = _raised_field_codes() | set(PYDANTIC_CODES.values()) | {"invalid", "value.type", "contact.invalid"}
    for language in i18n.LANGUAGES:
        missing = sorted(wanted - set(i18n.catalog("fields", language)))
        assert not missing, f"fields.{language}.json lacks {missing}"


def test_a_field_error_reaches_a_swedish_page_in_swedish_and_never_as_a_code_name() -> None:
    from functions.field_errors import field_text
    from shared.errors import FieldError

    english, swedish = i18n.catalog("fields", "en"), i18n.catalog("fields", "sv")
    for code in english:
        error = FieldError.of("answers[1].questionId", code, "an English rule", count=3, first=1, low=3, high=5,
                              required=2, allowed=1, register_count=3, days=90, domain="x.example", max=32,
                              max_length=10, min_length=2, ge=1, le=9)
        text = field_text(error, "sv")
        assert text == swedish[code].format(**dict(error.values)), code
        assert "answers[" not in text and "an English rule" not in text, (code, text)
        assert not re.search(r"\{\w*\}", text), f"{code}: a placeholder was left: {text}"
        assert text != english[code].format(**dict(error.values)) or code in {"id.guid"}, f"{code}: not translated"
    unknown = FieldError.of("number", "no.such.code", "is bad")
    assert field_text(unknown, "sv") == swedish["invalid"]
    assert field_text(FieldError.of("n", "text.tooLong", "too long"), "sv") == swedish["invalid"]  # its value missing
