"""The client address a rate limit counts: forged X-Forwarded-For never moves it, trusted
proxies are walked from the right, IPv6 clients are grouped by prefix."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from djredis.ratelimit.client_ip import client_ip, parse_address

factory = RequestFactory()
ipv4 = st.ip_addresses(v=4).map(str)
any_ip = st.ip_addresses().map(str)
# What a client may put in X-Forwarded-For: addresses, garbage, ports, empty entries.
forged_entry = st.one_of(
    any_ip,
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters=","), max_size=30),
    ipv4.map(lambda ip: f"{ip}:8080"),
)
forged_header = st.lists(forged_entry, max_size=6).map(", ".join)


def request(remote: str = "203.0.113.9", xff: str | None = None, **meta: Any) -> Any:
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return factory.get("/", REMOTE_ADDR=remote, **meta)


@given(remote=ipv4, header=forged_header)
def test_without_trusted_proxies_x_forwarded_for_never_changes_the_key(
    remote: str, header: str
) -> None:
    assert client_ip(request(remote, header)) == remote


@given(client=ipv4, forged=forged_header)
def test_behind_one_trusted_hop_the_address_is_the_one_the_proxy_appended(
    client: str, forged: str
) -> None:
    # The client sent "forged"; our proxy (10.0.0.2) appended the address it saw.
    header = f"{forged}, {client}" if forged else client
    with override_settings(RATELIMIT_TRUSTED_PROXIES=1):
        assert client_ip(request("10.0.0.2", header)) == client


@given(client=ipv4, forged=forged_header)
def test_behind_trusted_networks_the_address_is_the_rightmost_untrusted_one(
    client: str, forged: str
) -> None:
    if ipaddress.ip_address(client) in ipaddress.ip_network("10.0.0.0/8"):
        client = "198.51.100.77"
    # client -> CDN edge 10.1.1.1 -> load balancer 10.0.0.2 -> Django
    header = ", ".join(part for part in (forged, client, "10.1.1.1") if part)
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request("10.0.0.2", header)) == client


def test_the_guides_left_most_value_is_what_the_client_typed() -> None:
    forged = request("10.0.0.2", "1.2.3.4, 198.51.100.7")
    with override_settings(RATELIMIT_TRUSTED_PROXIES=1):
        assert client_ip(forged) == "198.51.100.7"
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(forged) == "198.51.100.7"


def test_a_request_that_skipped_the_proxies_is_keyed_by_its_peer() -> None:
    with override_settings(RATELIMIT_TRUSTED_PROXIES=2):
        assert client_ip(request("198.51.100.7", "1.2.3.4")) == "198.51.100.7"
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request("198.51.100.7", "1.2.3.4")) == "198.51.100.7"


def test_garbage_where_the_proxy_should_have_written_falls_back_to_a_trusted_address() -> None:
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request("10.0.0.2", "1.2.3.4, <script>")) == "10.0.0.2"
    with override_settings(RATELIMIT_TRUSTED_PROXIES=1):
        assert client_ip(request("10.0.0.2", "1.2.3.4, <script>")) == "10.0.0.2"


def test_a_unix_socket_proxy_counts_as_the_first_trusted_hop() -> None:
    with override_settings(RATELIMIT_TRUSTED_PROXIES=1):
        assert client_ip(request("", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request("", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"


def test_an_empty_remote_addr_without_trusted_proxies_says_what_to_set() -> None:
    with pytest.raises(ImproperlyConfigured, match="RATELIMIT_TRUSTED_PROXIES"):
        client_ip(request(""))


@given(prefix=st.integers(0, 2**64 - 1), a=st.integers(0, 2**64 - 1), b=st.integers(0, 2**64 - 1))
def test_ipv6_clients_in_one_64_share_a_key_and_other_64s_do_not(
    prefix: int, a: int, b: int
) -> None:
    first = str(ipaddress.IPv6Address((prefix << 64) | a))
    second = str(ipaddress.IPv6Address((prefix << 64) | b))
    other = str(ipaddress.IPv6Address((((prefix + 1) % 2**64) << 64) | a))
    assert client_ip(request(first)) == client_ip(request(second))
    assert client_ip(request(first)) != client_ip(request(other))


def test_the_ipv6_grouping_is_configurable() -> None:
    with override_settings(RATELIMIT_IPV6_MASK=128):
        assert client_ip(request("2001:db8::1")) != client_ip(request("2001:db8::2"))
    with override_settings(RATELIMIT_IPV6_MASK=48):
        assert client_ip(request("2001:db8:0:1::1")) == client_ip(request("2001:db8:0:2::1"))


def test_ipv4_mapped_ipv6_is_the_ipv4_client() -> None:
    assert client_ip(request("::ffff:198.51.100.7")) == "198.51.100.7"


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("198.51.100.7:4711", "198.51.100.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("fe80::1%eth0", "fe80::1"),
        ("unknown", None),
        ("", None),
        ("[2001:db8::1", None),
    ],
)
def test_forwarded_entries_parse_with_ports_and_brackets(entry: str, address: str | None) -> None:
    found = parse_address(entry)
    assert (None if found is None else str(found)) == address


@pytest.mark.parametrize(
    "value", [-1, True, "10.0.0.0/8", ["not a network"], {"10.0.0.0/8": 1}, 1.5]
)
def test_bad_trusted_proxies_settings_name_the_setting(value: object) -> None:
    with (
        override_settings(RATELIMIT_TRUSTED_PROXIES=value),
        pytest.raises(ImproperlyConfigured, match="RATELIMIT_TRUSTED_PROXIES"),
    ):
        client_ip(request("10.0.0.2", "1.2.3.4"))


def test_django_ratelimits_ip_meta_key_is_honoured() -> None:
    with override_settings(RATELIMIT_IP_META_KEY="HTTP_X_REAL_IP"):
        assert client_ip(request("10.0.0.2", HTTP_X_REAL_IP="198.51.100.7")) == "198.51.100.7"
    with override_settings(RATELIMIT_IP_META_KEY=lambda r: "198.51.100.8"):
        assert client_ip(request("10.0.0.2")) == "198.51.100.8"
