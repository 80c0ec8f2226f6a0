"""Every catalog exists in English and Swedish with the same keys and the same placeholders."""

from __future__ import annotations

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
