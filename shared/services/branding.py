"""The organisation's own marks on every page and mail: its name and its Entra company branding (banner logo,
background colour and image, sign-in page text), per language where the tenant localised it.

An employee taught to distrust look-alike pages should find the marks they know from Microsoft's sign-in page. The
branding is read from Graph once and kept for `ttl` (an hour: it changes rarely), by one reader at a time; when
Graph cannot be read, or the tenant has no branding, the pages fall back to the plain look with the tenant's name
(or none), and that answer is kept only `retry_after`, so a passing outage does not stick.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.errors import DependencyUnavailable, GraphError

log = logging.getLogger("sspr.branding")

COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
MAX_TEXT = 1024  # Entra's limit of signInPageText
DEFAULT = "0"


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Brand:
    """What a page or mail shows of the organisation, in one language."""

    name: str
    background_colour: str | None = None
    sign_in_text: str | None = None
    logo: Image | None = None
    background: Image | None = None

    @property
    def ink(self) -> str:
        """Black or white, whichever reads better on the background colour (WCAG relative luminance)."""
        if not self.background_colour:
            return "#1b1b1f"
        channels = [int(self.background_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
        return "#1b1b1f" if luminance > 0.179 else "#ffffff"


class BrandingDirectory(Protocol):
    """What the branding reads of Graph."""

    async def organization(self) -> Any: ...

    async def company_branding(self, organization_id: str) -> dict[str, Any] | None: ...

    async def branding_localizations(self, organization_id: str) -> list[dict[str, Any]]: ...

    async def branding_image(self, organization_id: str, locale: str, stream: str) -> tuple[bytes, str] | None: ...


@dataclass
class _Kept:
    brands: dict[str, Brand]  # by our language ("en", "sv")
    until: datetime


def _text(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str) else ""
    return text[:MAX_TEXT] or None


def _colour(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and COLOUR.match(value) else None


def localisation_for(language: str, localisations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The tenant's localisation for one of our languages ("sv" -> sv-SE, sv-FI, ...); English is the default."""
    if language == "en":
        return None
    return next((loc for loc in localisations if str(loc.get("id") or "").lower().split("-")[0] == language), None)


@dataclass
class BrandingService:
    directory: BrandingDirectory
    clock: Callable[[], datetime]
    languages: tuple[str, ...] = ("en", "sv")
    ttl: timedelta = timedelta(hours=1)
    retry_after: timedelta = timedelta(minutes=5)
    _kept: _Kept | None = None
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def brand(self, language: str) -> Brand:
        """The organisation's marks in `language` (English for any other); the plain fallback when it has none."""
        kept = self._kept
        if kept is None or kept.until <= self.clock():
            async with self._reading:
                kept = self._kept
                if kept is None or kept.until <= self.clock():
                    kept = self._kept = await self._read()
        return kept.brands.get(language) or kept.brands.get("en") or Brand("")

    async def _read(self) -> _Kept:
        now = self.clock()
        name = ""
        try:
            organization = await self.directory.organization()
            name = str(getattr(organization, "display_name", "") or "")
            org_id = str(getattr(organization, "id", "") or "")
            default = await self.directory.company_branding(org_id)
            if default is None:
                return _Kept({lang: Brand(name) for lang in self.languages}, now + self.ttl)
            localisations = await self.directory.branding_localizations(org_id)
            brands = {}
            for language in self.languages:
                brands[language] = await self._brand(org_id, name, default, localisation_for(language, localisations))
            return _Kept(brands, now + self.ttl)
        except (GraphError, DependencyUnavailable) as error:
            log.warning("company branding unreadable, pages show the plain look: %s", error)
            return _Kept({lang: Brand(name) for lang in self.languages}, now + self.retry_after)

    async def _brand(self, org_id: str, name: str, default: dict[str, Any], local: dict[str, Any] | None) -> Brand:
        """A localisation's own values where it sets them, the default branding's elsewhere (as Entra does)."""

        def pick(key: str) -> tuple[Any, str]:
            if local is not None and local.get(key):
                return local[key], str(local.get("id"))
            return default.get(key), DEFAULT

        async def image(stream: str) -> Image | None:
            relative, locale = pick(f"{stream}RelativeUrl")
            if not relative:
                return None
            found = await self.directory.branding_image(org_id, locale, stream)
            return None if found is None else Image(*found)

        logo, background = await asyncio.gather(image("bannerLogo"), image("backgroundImage"))
        return Brand(name, _colour(pick("backgroundColor")[0]), _text(pick("signInPageText")[0]), logo, background)
