"""Where the service's endpoints may point: https, or plain http to this machine only; Azurite's development
storage and its well-known (public) account. Used by the settings' validation and the storage adapter."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https_unless_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute https URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ValueError(f"must use https (plain http is allowed only for localhost), got {url!r}")
    return url.rstrip("/")


def is_development_storage(connection_string: str) -> bool:
    lowered = connection_string.replace(" ", "").lower()
    return lowered.startswith(DEVELOPMENT_STORAGE.lower()) or AZURITE_ACCOUNT in lowered


def expand_development_storage(connection_string: str) -> str:
    """Turn the 'UseDevelopmentStorage=true' shorthand into Azurite's full connection string."""
    if connection_string.replace(" ", "").lower() != DEVELOPMENT_STORAGE.lower():
        return connection_string
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:10000/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:10001/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:10002/{AZURITE_ACCOUNT};"
    )
