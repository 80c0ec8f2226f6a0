"""Every mail carries the organisation's marks: its name and, when its Entra branding has one, its banner logo
(an inline image), the same as its pages show (shared/services/branding.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from shared.adapters.graph.mail import InlineImage
from shared.adapters.mail import MailSender
from shared.services.branding import Brand, BrandingService
from shared.services.notifications.bodies import brand_header

LOGO_CONTENT_ID = "organisation-logo"
_BODY = re.compile(r"(<body[^>]*>)", re.IGNORECASE)


class Mailer(Protocol):
    """What the notifications send mail through."""

    async def send(self, to: list[str], subject: str, html: str, language: str = "en") -> None: ...


def with_brand(html: str, brand: Brand) -> tuple[str, list[InlineImage]]:
    """`html` with the organisation's name (and logo) at the top of its body, and the images it refers to."""
    if not brand.name and brand.logo is None:
        return html, []
    header = brand_header(brand.name, f"cid:{LOGO_CONTENT_ID}" if brand.logo else None)
    inline = [] if brand.logo is None else [InlineImage(LOGO_CONTENT_ID, "logo." + brand.logo.content_type[6:],
                                                        brand.logo.content_type, brand.logo.data)]
    branded, found = _BODY.subn(lambda m: m.group(1) + header, html, count=1)
    return (branded if found else header + html), inline


@dataclass(frozen=True)
class BrandedMail:
    mail: MailSender
    branding: BrandingService | None = None

    async def send(self, to: list[str], subject: str, html: str, language: str = "en") -> None:
        if self.branding is None:
            await self.mail.send(to, subject, html)
            return
        branded, inline = with_brand(html, await self.branding.brand(language))
        await self.mail.send(to, subject, branded, inline)
