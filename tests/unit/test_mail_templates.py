"""The mail templates: every value escaped, comments and indentation left out of the mail, and the template
files shipped with the app (not excluded by .funcignore)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from shared.adapters.mail import mail_texts
from shared.services.notifications import bodies

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert('x')</script> & \"co\""


@pytest.mark.parametrize("language", ["en", "sv"])
def test_code_mail_is_one_line_of_html_with_the_code(language: str) -> None:
    texts = mail_texts(language)
    body = bodies.code_mail(texts, "Casey", "01234567", 10, texts["code.intro"])
    assert body.startswith('<!DOCTYPE html><html><body style="font-family:Segoe UI,Arial,sans-serif"><p>')
    assert body.endswith("</p></body></html>") and "\n" not in body and "<!--" not in body
    assert '<p><strong style="font-size:1.5em;letter-spacing:0.2em">01234567</strong></p>' in body


def test_every_value_is_escaped_even_in_an_attribute() -> None:
    texts = mail_texts("en")
    reminder = bodies.reminder_mail(texts, HOSTILE, 'https://x.example/?a="1"&b=<2>')
    assert "<script>" not in reminder and "&lt;script&gt;" in reminder
    assert '<a href="https://x.example/?a=&quot;1&quot;&amp;b=&lt;2&gt;">' in reminder
    notice = bodies.reset_mail(texts, HOSTILE, "2026-01-01 10:00 UTC",
                               bodies.help_line(texts, "https://help.example/<x>", None))
    assert "<script>" not in notice and "https://help.example/&lt;x&gt;" in notice
    assert "<script>" not in bodies.admin_reset_mail(texts, HOSTILE, "now")


def test_a_placeholder_without_a_value_fails_rather_than_mailing_it() -> None:
    with pytest.raises(KeyError):
        bodies.render("reminder", greeting="Hello")


def test_the_templates_ship_with_the_app() -> None:
    templates = sorted(bodies.TEMPLATE_DIR.glob("*.html"))
    assert {t.stem for t in templates} >= {"code", "reset_notice", "admin_reset_notice", "reminder"}
    patterns = [line.strip().rstrip("/") for line in (REPO / ".funcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for template in templates:
        relative = template.relative_to(REPO)
        prefixes = [str(Path(*relative.parts[:n])) for n in range(1, len(relative.parts) + 1)]
        excluded = [p for p in patterns for prefix in prefixes
                    if fnmatch.fnmatch(prefix, p) or fnmatch.fnmatch(Path(prefix).name, p)]
        assert not excluded, f"{relative} is excluded from the package by .funcignore {excluded}"
