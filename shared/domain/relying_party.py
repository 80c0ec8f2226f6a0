"""The WebAuthn relying party: the pages' own origin, and the RP id passkeys are bound to (security.md I1).

The origin is SSPR_PUBLIC_BASE_URL's scheme, host and port: only an assertion made on that origin is accepted.
The RP id is its host, or a registrable suffix of it named by SSPR_PASSKEY_RP_ID (so passkeys survive a move from
sspr.contoso.com to reset.contoso.com when the id is contoso.com). An IP address can be no RP id (WebAuthn
5.1.4.1): then passkeys are unavailable, and the registration page says why.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def rp_id_problem(public_base_url: str, rp_id: str | None) -> str | None:
    """Why `rp_id` cannot be the RP id of pages served at `public_base_url`, or None when it can (or is unset)."""
    if rp_id is None:
        return None
    host = (urlsplit(public_base_url).hostname or "").lower()
    if _is_ip(rp_id) or ("." not in rp_id and rp_id != "localhost"):
        return f"{rp_id!r} is no domain name: use the pages' host ({host}) or a parent domain of it"
    if _is_ip(host) or not (host == rp_id.lower() or host.endswith("." + rp_id.lower())):
        return f"{rp_id!r} is neither the pages' host ({host}) nor a parent domain of it"
    return None


def relying_party(public_base_url: str, rp_id: str | None, name: str) -> RelyingParty | None:
    """The relying party of pages served at `public_base_url`, or None when their host is an IP address."""
    parts = urlsplit(public_base_url)
    host = (parts.hostname or "").lower()
    if _is_ip(host) or not host:
        return None
    return RelyingParty(id=(rp_id or host).lower(), origin=f"{parts.scheme}://{parts.netloc.lower()}", name=name)
