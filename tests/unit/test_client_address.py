"""The caller's address is the X-Forwarded-For entry the trusted front end wrote, in one spelling (security.md G6)."""

from __future__ import annotations

import pytest

from shared.domain.client_address import budget_key, client_address, normalise_address


def test_G6_with_no_trusted_proxy_the_client_is_the_entry_the_platform_appended() -> None:
    assert client_address("203.0.113.7:50123", 0) == "203.0.113.7"
    # The caller wrote the left entries itself: they never count.
    assert client_address("198.51.100.1, 10.0.0.9, 203.0.113.7:50123", 0) == "203.0.113.7"


def test_G6_the_first_client_supplied_hop_is_never_the_client() -> None:
    chain = "192.0.2.66, 198.51.100.20:443, 203.0.113.7:50123"  # forged, Front Door's entry, the platform's
    assert client_address(chain, 1) == "198.51.100.20"
    assert client_address(chain, 0) == "203.0.113.7"
    for hops in (0, 1):
        assert client_address(chain, hops) != "192.0.2.66"


def test_G6_a_chain_shorter_than_the_trusted_hops_falls_back_to_the_platforms_own_entry() -> None:
    # The request did not come through every trusted proxy: what is left of the platform's entry is the caller's.
    assert client_address("203.0.113.7:50123", 1) == "203.0.113.7"
    assert client_address("192.0.2.66, 203.0.113.7:50123", 2) == "203.0.113.7"


@pytest.mark.parametrize(("written", "address"), [
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("[::ffff:192.0.2.1]:8080", "192.0.2.1"),
    ("::FFFF:c000:201", "192.0.2.1"),
    ("192.0.2.1:443", "192.0.2.1"),
    ("[2001:DB8:0:0::1]:443", "2001:db8::1"),
    ("2001:db8:0000::1", "2001:db8::1"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_G6_one_address_has_one_spelling(written: str, address: str) -> None:
    assert normalise_address(written) == address


@pytest.mark.parametrize("chain", ["", None, "203.0.113.7, ", "unknown", "203.0.113.7, garbage:1:2:x"])
def test_G6_no_address_when_the_platforms_entry_is_missing_or_not_an_address(chain: str | None) -> None:
    assert client_address(chain, 0) is None


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
    ("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::7", "2001:db8:1:3::/64"),
    (None, None),
    ("unknown", None),
])
def test_G6_a_per_ip_budget_counts_ipv4_by_the_address_and_ipv6_by_its_64(address: str | None,
                                                                          key: str | None) -> None:
    assert budget_key(address) == key
