"""The pages' own data files stay true to what the service uses: the phone countries and the audit activities."""

from __future__ import annotations

import re
from pathlib import Path

import phonenumbers

from shared import i18n
from shared.domain.audit import Activity, Outcome

ASSETS = Path(__file__).resolve().parents[2] / "web" / "assets"


def test_the_phone_countries_are_the_libraries_with_their_calling_codes() -> None:
    text = (ASSETS / "phone-regions.js").read_text(encoding="utf-8")
    listed = dict(re.findall(r"\b([A-Z]{2}):(\d+)\b", text.split("`")[1]))
    assert listed == {r: str(phonenumbers.country_code_for_region(r)) for r in phonenumbers.SUPPORTED_REGIONS}


def test_every_audit_activity_and_outcome_is_offered_and_has_words_in_every_language() -> None:
    script = (ASSETS / "admin.js").read_text(encoding="utf-8")
    offered = re.search(r"const ACTIVITIES = \[(.*?)\];", script, re.S)
    assert offered is not None
    assert set(re.findall(r'"([^"]+)"', offered.group(1))) == {a.value for a in Activity}
    for language in i18n.LANGUAGES:
        texts = i18n.catalog("pages", language)
        missing = [a.value for a in Activity if f"activity.{a.value}" not in texts]
        missing += [o.value for o in Outcome if f"outcome.{o.value}" not in texts]
        assert not missing, f"pages.{language}.json lacks {missing}"
