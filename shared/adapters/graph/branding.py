"""The organisation's company branding in Entra (organizationalBranding): the texts of its default branding and of
each localisation, and their images (streams).

https://learn.microsoft.com/graph/api/organizationalbranding-get: `GET /organization/{id}/branding` answers the
default branding when `Accept-Language` is `0` (404 when the tenant has none) and only its non-stream properties;
the streams (`bannerLogo`, `backgroundImage`) come from
`GET /organization/{id}/branding/localizations/{0|locale}/<stream>`, as image bytes, or `{}` when not set.
Application permission: OrganizationalBranding.Read.All, or Organization.Read.All, which the service holds.
"""

from __future__ import annotations

from typing import Any, ClassVar

from shared.adapters.graph.client import GraphPart

BRANDING_TEXTS = ("id", "backgroundColor", "signInPageText", "bannerLogoRelativeUrl", "backgroundImageRelativeUrl")
IMAGE_LIMIT = 2 * 1024 * 1024  # Entra's own limits are far below: a bigger answer is not an image of the branding


def image_type(data: bytes) -> str | None:
    """The content type of a PNG or JPEG (the only types Entra takes for branding images), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


class GraphBranding(GraphPart):
    """The default branding, its localisations and their images."""

    STREAMS: ClassVar[frozenset[str]] = frozenset({"bannerLogo", "backgroundImage"})

    async def company_branding(self, organization_id: str) -> dict[str, Any] | None:
        """The default branding's texts, or None when the tenant has no branding."""
        info = self._sdk.organization.by_organization_id(organization_id).branding.to_get_request_information()
        info.headers.try_add("Accept-Language", "0")
        body = await self._found(lambda: self._graph.get_json(info))
        return None if body is None else {k: body.get(k) for k in BRANDING_TEXTS}

    async def branding_localizations(self, organization_id: str) -> list[dict[str, Any]]:
        """Every localisation's texts (`id` is its locale, e.g. sv-SE)."""
        builder = self._sdk.organization.by_organization_id(organization_id).branding.localizations
        body = await self._graph.get_json(builder.to_get_request_information())
        return [{k: item.get(k) for k in BRANDING_TEXTS} for item in body.get("value") or [] if isinstance(item, dict)]

    async def branding_image(self, organization_id: str, locale: str, stream: str) -> tuple[bytes, str] | None:
        """The image `stream` (bannerLogo or backgroundImage) of localisation `locale` ("0": the default), with its
        content type; None when it is not set or is not a PNG or JPEG."""
        if stream not in self.STREAMS:
            raise ValueError(f"not a branding image: {stream}")
        item = (self._sdk.organization.by_organization_id(organization_id).branding.localizations
                .by_organizational_branding_localization_id(locale))
        builder = item.banner_logo if stream == "bannerLogo" else item.background_image
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        send: Any = self._sdk.request_adapter.send_primitive_async
        info = builder.to_get_request_information()
        data = await self._graph.call(lambda: send(info, "bytes", {"XXX": ODataError}))
        if not data or len(data) > IMAGE_LIMIT:
            return None
        kind = image_type(data)
        return None if kind is None else (bytes(data), kind)
