"""The HTML bodies of the service's mails, from the templates in shared/templates/mail with every value escaped.

A template is a readable HTML file with `$name` placeholders (`string.Template`). A mail's template holds only what
is its own (the lines of its body): the frame every mail shares is `layout.html`, which the mail fills at
`$content`. Lines are trimmed and joined and a line that is only an `<!-- ... -->` comment is dropped, so a
translator or admin may indent and annotate a template without changing the mail. Every value is HTML-escaped
(quotes too, for attributes), so a display name or helpdesk address cannot inject markup.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "mail"


@cache
def _compact(name: str) -> str:
    """`<name>.html`, read once per process, its lines trimmed and joined without the comment lines."""
    text = (TEMPLATE_DIR / f"{name}.html").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return "".join(line for line in lines if not _is_comment(line))


@cache
def template(name: str) -> Template:
    """The mail `<name>.html` in the frame every mail shares (`layout.html`)."""
    return Template(_compact("layout").replace("$content", _compact(name)))


def render(name: str, **values: str) -> str:
    """Mail `name` filled with `values`, each HTML-escaped; a placeholder without a value raises KeyError."""
    return _filled(template(name), values)


def _filled(text: Template, values: dict[str, str]) -> str:
    return text.substitute({key: html.escape(value) for key, value in values.items()})


def _is_comment(line: str) -> bool:
    return line.startswith("<!--") and line.endswith("-->")


def brand_header(name: str, logo: str | None) -> str:
    """The organisation's marks for the top of a mail: its name, with its logo (a cid: URL) when it has one."""
    if logo:
        return _filled(Template(_compact("brand_header_logo")), {"org": name, "logo": logo})
    return _filled(Template(_compact("brand_header")), {"org": name})


def code_mail(texts: dict[str, str], name: str, code: str, minutes: int, intro: str, ignore: str | None = None) -> str:
    return render("code", greeting=texts["code.greeting"].format(name=name or ""), intro=intro, code=code,
                  expires=texts["code.expires"].format(minutes=minutes), ignore=ignore or texts["code.ignore"])


def mail_time(instant: str) -> str:
    """An ISO 8601 UTC instant as a mail tells it: "2026-01-01 10:00 UTC"."""
    return instant.replace("T", " ")[:16] + " UTC"


def help_line(texts: dict[str, str], url: str | None, email: str | None) -> str:
    if url:
        return texts["reset.helpUrl"].format(url=url)
    if email:
        return texts["reset.helpEmail"].format(email=email)
    return texts["reset.helpDefault"]


def reset_mail(texts: dict[str, str], name: str, when: str, help_text: str, action: str = "reset") -> str:
    """The notice after a reset, after an unlock without a new password (`action` "unlock"), or of a Temporary
    Access Pass a reset ended with ("accessPass")."""
    return render("reset_notice", greeting=texts["reset.greeting"].format(name=name or ""),
                  body=texts[f"{action}.body"].format(time=when), not_me=texts["reset.notMe"], help=help_text)


def admin_reset_mail(texts: dict[str, str], name: str, when: str, action: str = "reset") -> str:
    return render("admin_reset_notice", body=texts[f"{action}.adminBody"].format(name=name, time=when))


def reminder_mail(texts: dict[str, str], name: str, link: str) -> str:
    return render("reminder", greeting=texts["reminder.greeting"].format(name=name or ""),
                  body=texts["reminder.body"], link=link, link_text=texts["reminder.link"],
                  footer=texts["reminder.footer"])


def expiry_when(texts: dict[str, str], days: int) -> str:
    """"in 7 days", or "within a day" when less than a day is left."""
    return texts["expiry.inDays"].format(days=days) if days > 1 else texts["expiry.withinDay"]


def expiry_subject(texts: dict[str, str], days: int) -> str:
    return texts["expiry.subject"].format(days=days) if days > 1 else texts["expiry.subjectSoon"]


def expiry_mail(texts: dict[str, str], name: str, account: str, date: str, days: int, synced: bool,
                change_url: str, reset_url: str) -> str:
    """The reminder before a password expires: when, what to do (the change page) and, in case it is forgotten,
    the reset page; both links open pages where the user signs in or proves who they are, never a token."""
    return render("expiry_reminder", greeting=texts["expiry.greeting"].format(name=name or ""),
                  body=texts["expiry.body"].format(account=account, date=date, when=expiry_when(texts, days)),
                  action=texts["expiry.actionSynced" if synced else "expiry.actionCloud"], link=change_url,
                  link_text=texts["expiry.link"], forgot=texts["expiry.forgot"], reset_link=reset_url,
                  reset_text=texts["expiry.resetLink"], safety=texts["expiry.safety"], footer=texts["expiry.footer"])


def helpdesk_notice_mail(texts: dict[str, str], name: str, body: str, help_text: str) -> str:
    return render("helpdesk_notice", greeting=texts["helpdesk.greeting"].format(name=name or ""), body=body,
                  not_me=texts["helpdesk.notMe"], help=help_text)


def helpdesk_link_mail(texts: dict[str, str], name: str, agent: str, link: str, until: str, access_pass: bool) -> str:
    body = texts["helpdesk.link.accessPassBody" if access_pass else "helpdesk.link.body"].format(agent=agent)
    return render("helpdesk_link", greeting=texts["helpdesk.greeting"].format(name=name or ""), body=body, link=link,
                  link_text=texts["helpdesk.link.open"], expires=texts["helpdesk.link.expires"].format(time=until),
                  safety=texts["helpdesk.link.safety"])


def helpdesk_digest_mail(texts: dict[str, str], day: str, rows: list[tuple[str, str, str, str, str]]) -> str:
    """The day's rows (time, agent, user, activity, outcome), each cell escaped here: the table is markup."""
    head = "".join(f"<th>{html.escape(texts[f'helpdesk.digest.{c}'])}</th>"
                   for c in ("time", "agent", "user", "activity", "outcome"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return template("helpdesk_digest").substitute(
        intro=html.escape(texts["helpdesk.digest.intro"].format(day=day)), head=head, rows=body,
        footer=html.escape(texts["helpdesk.digest.footer"]))


def helpdesk_confirm_mail(texts: dict[str, str], name: str, agent: str, link: str) -> str:
    return render("helpdesk_link", greeting=texts["helpdesk.greeting"].format(name=name or ""),
                  body=texts["helpdesk.confirm.body"].format(agent=agent), link=link,
                  link_text=texts["helpdesk.confirm.open"], expires=texts["helpdesk.confirm.device"],
                  safety=texts["helpdesk.link.safety"])
