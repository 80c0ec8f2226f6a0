"""Languages and message catalogs: English and Swedish, one JSON file per catalog and language in web/i18n
(`<catalog>.<language>.json`, identical keys in both languages; tests/unit/test_i18n.py checks every pair)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "sv")
DEFAULT_LANGUAGE = "en"
CATALOG_DIR = Path(__file__).resolve().parents[1] / "web" / "i18n"


@cache
def catalog(name: str, language: str) -> dict[str, str]:
    """The texts of catalog `name` in `language` (any other language reads English), read once per process."""
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    with (CATALOG_DIR / f"{name}.{chosen}.json").open(encoding="utf-8") as file:
        return dict(json.load(file))


def choose_language(accept_language: str | None) -> str:
    """Swedish ("sv") when the caller's Accept-Language prefers it over English, else "en" (RFC 9110 q-values)."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:  # strictly greater: on a tie the earlier tag wins
            best, best_q = primary, q
    return best


def language_of(preferred_language: str | None) -> str:
    """A directory user's preferredLanguage (e.g. "sv-SE") as one of ours."""
    return "sv" if (preferred_language or "").lower().startswith("sv") else DEFAULT_LANGUAGE
