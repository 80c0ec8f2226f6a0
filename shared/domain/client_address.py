"""The caller's IP address from the X-Forwarded-For chain, counting only the hops the deployment trusts (G6).

Every proxy appends the address it received the connection from to the right of X-Forwarded-For; whatever a
caller put there itself stays on the left. Azure's front end (App Service, which runs the Functions host) appends
the connection's peer as `ip:port`, so with no proxy in front the last entry is the one the platform wrote. With
`trusted_hops` proxies in front of it (Azure Front Door is one), the client is the entry `trusted_hops + 1` from
the right: each trusted proxy wrote the entry left of its own. A chain shorter than that did not come through
every trusted proxy, and its left part cannot be told from a caller's own text: the last entry (the platform's
peer) is used then, never a client-supplied value. Ports, brackets and zone ids go; an IPv4-mapped IPv6 address
(`::ffff:192.0.2.1`) is its IPv4 address, and IPv6 is written in its one compressed form, so a caller cannot
get a fresh per-IP budget by spelling the same address another way.

A per-IP budget counts an IPv4 address by itself and an IPv6 address by its /64 (`budget_key`): a /64 is the
smallest network a provider hands one customer line or subscriber (RFC 6177, RIPE-690), so a single client holds
2^64 addresses and could otherwise take a fresh budget with every one. The audit keeps the whole address.
"""

from __future__ import annotations

import ipaddress

MAX_TRUSTED_HOPS = 5
IPV6_BUDGET_PREFIX = 64


def client_address(forwarded_for: str | None, trusted_hops: int) -> str | None:
    """The caller's normalised IP address, or None when the chosen entry is not an IP address at all."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",")]
    if not hops[-1]:
        return None  # no entry written by the platform: nothing here can be trusted
    chosen = hops[-1 - trusted_hops] if len(hops) > trusted_hops else hops[-1]
    return normalise_address(chosen)


def normalise_address(text: str) -> str | None:
    """`ip`, `ip:port`, `[ipv6]:port` or `ipv6%zone` as one canonical IP address; None when it is none of them."""
    host = text.strip()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # v4:port
        host = host.split(":", 1)[0]
    host = host.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def budget_key(address: str | None) -> str | None:
    """What a per-IP budget counts by: an IPv4 address itself, an IPv6 address's /64 network (`2001:db8:1:2::/64`);
    None when there is no address (or it is none)."""
    if address is None or (normalised := normalise_address(address)) is None:
        return None
    parsed = ipaddress.ip_address(normalised)
    if isinstance(parsed, ipaddress.IPv4Address):
        return normalised
    return str(ipaddress.ip_network(f"{parsed}/{IPV6_BUDGET_PREFIX}", strict=False))
