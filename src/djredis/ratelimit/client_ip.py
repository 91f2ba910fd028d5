"""Find the client's address: ``REMOTE_ADDR``, unless the user says which proxies to trust.

``X-Forwarded-For`` is a list every hop appends to, so only its right end can be believed:
the left-most value is whatever the client typed. With ``RATELIMIT_TRUSTED_PROXIES``
unset (the default) the header is ignored. Set to a hop count ``n``, the address is the
``n``-th from the right of ``X-Forwarded-For`` + ``REMOTE_ADDR`` (the last proxy); set to
a list of networks (``["10.0.0.0/8", "2001:db8::/32"]``), the address is the right-most
one outside them. IPv6 clients are grouped by ``RATELIMIT_IPV6_MASK`` (64 bits by
default: one home or VPS gets a whole /64), IPv4 ones by ``RATELIMIT_IPV4_MASK`` (32).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from djredis.ratelimit.conf import Networks, conf, forget

__all__ = ["client_ip", "parse_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """Return the address in one ``X-Forwarded-For`` entry (ports, brackets allowed), or None."""
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # an IPv6 zone ("fe80::1%eth0") names no client
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _peer(remote: str) -> IPAddress:
    address = parse_address(remote)
    if address is None:
        raise ImproperlyConfigured(
            f"REMOTE_ADDR is {remote!r}, not an IP address: behind a proxy that connects "
            "over a Unix socket, set RATELIMIT_TRUSTED_PROXIES (docs/ratelimit.md, 'Client "
            "IP') so that the address comes from X-Forwarded-For."
        )
    return address


def _forwarded_address(remote: str, header: str, trusted: int | Networks) -> IPAddress:
    """Walk ``X-Forwarded-For`` + ``REMOTE_ADDR`` from the right, past the trusted hops.

    An empty ``REMOTE_ADDR`` (a proxy on a Unix socket) counts as the first trusted hop.
    """
    chain = [entry for entry in header.split(",") if entry.strip()]
    chain.append(remote)
    if isinstance(trusted, int):
        if len(chain) <= trusted:
            # Fewer hops than proxies: the request did not come through them all.
            return _peer(remote)
        found = parse_address(chain[-1 - trusted])
        return found if found is not None else _peer(remote)
    client: IPAddress | None = None
    for index, entry in enumerate(reversed(chain)):
        address = parse_address(entry)
        if address is None:
            if index == 0 and not entry:
                continue  # Unix socket: the proxy is local
            # Garbage where an address should be: the last hop we trust stands for the
            # client (never the forged text, which a client could vary at will).
            break
        client = address
        if not any(address in network for network in trusted):
            break
    return client if client is not None else _peer(remote)


def _masked(address: IPAddress) -> str:
    snapshot = conf()
    mask = snapshot.ipv6_mask if isinstance(address, ipaddress.IPv6Address) else snapshot.ipv4_mask
    if mask == address.max_prefixlen:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/{mask}", strict=False).network_address)


@forget
@lru_cache(maxsize=4096)
def _client_ip(remote: str, header: str) -> str:
    """The key for a peer and an ``X-Forwarded-For`` value (pure, so remembered)."""
    trusted = conf().trusted_proxies
    address = _forwarded_address(remote, header, trusted) if trusted else _peer(remote)
    return _masked(address)


def client_ip(request: HttpRequest) -> str:
    """Return the client's address as the rate limit key: masked, as text."""
    meta_key: Any = conf().ip_meta_key
    if meta_key:  # django-ratelimit's setting: the user takes responsibility for it
        if callable(meta_key):
            text = meta_key(request)
        elif "." in meta_key:
            text = import_string(meta_key)(request)
        elif meta_key in request.META:
            text = request.META[meta_key]
        else:
            raise ImproperlyConfigured(f"RATELIMIT_IP_META_KEY: no {meta_key!r} in request.META")
        found = parse_address(str(text))
        remote = str(request.META.get("REMOTE_ADDR") or "")
        return _masked(found if found is not None else _peer(remote))
    remote = str(request.META.get("REMOTE_ADDR") or "")
    header = str(request.META.get("HTTP_X_FORWARDED_FOR", "")) if conf().trusted_proxies else ""
    key: str = _client_ip(remote, header)
    return key
