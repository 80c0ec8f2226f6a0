"""The HTML bodies of the service's mails, from the templates in shared/templates/mail with every value escaped.

A template is a readable HTML file with `$name` placeholders (`string.Template`). Its lines are trimmed and
joined and a line that is only an `<!-- ... -->` comment is dropped, so a translator or admin may indent and
annotate it without changing the mail. Every value is HTML-escaped (quotes too, for attributes), so a display
name or helpdesk address cannot inject markup.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "mail"


@cache
def template(name: str) -> Template:
    """The template `<name>.html`, read and compacted once per process."""
    text = (TEMPLATE_DIR / f"{name}.html").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return Template("".join(line for line in lines if not _is_comment(line)))


def render(name: str, **values: str) -> str:
    """Template `name` filled with `values`, each HTML-escaped; a placeholder without a value raises KeyError."""
    return template(name).substitute({key: html.escape(value) for key, value in values.items()})


def _is_comment(line: str) -> bool:
    return line.startswith("<!--") and line.endswith("-->")


def code_mail(texts: dict[str, str], name: str, code: str, minutes: int, intro: str) -> str:
    return render("code", greeting=texts["code.greeting"].format(name=name or ""), intro=intro, code=code,
                  expires=texts["code.expires"].format(minutes=minutes), ignore=texts["code.ignore"])


def help_line(texts: dict[str, str], url: str | None, email: str | None) -> str:
    if url:
        return texts["reset.helpUrl"].format(url=url)
    if email:
        return texts["reset.helpEmail"].format(email=email)
    return texts["reset.helpDefault"]


def reset_mail(texts: dict[str, str], name: str, when: str, help_text: str) -> str:
    return render("reset_notice", greeting=texts["reset.greeting"].format(name=name or ""),
                  body=texts["reset.body"].format(time=when), not_me=texts["reset.notMe"], help=help_text)


def admin_reset_mail(texts: dict[str, str], name: str, when: str) -> str:
    return render("admin_reset_notice", body=texts["reset.adminBody"].format(name=name, time=when))


def reminder_mail(texts: dict[str, str], name: str, link: str) -> str:
    return render("reminder", greeting=texts["reminder.greeting"].format(name=name or ""),
                  body=texts["reminder.body"], link=link, link_text=texts["reminder.link"],
                  footer=texts["reminder.footer"])
