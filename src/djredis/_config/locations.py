"""Parse LOCATION strings (URLs, socket paths, ``host:port``, multi-host Sentinel and Cluster
URLs) into redis-py connection keyword arguments."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from redis.connection import (
    Connection,
    UnixDomainSocketConnection,
    parse_url,
)

from djredis._config.server import DEFAULT_PORT, DEFAULT_SENTINEL_PORT

# scheme -> (topology, TLS). Their host part lists several servers, so a LOCATION string
# in one of these schemes is never split on commas.
_MULTI_HOST_SCHEMES: Mapping[str, tuple[str, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}


__all__ = ["parse_locations"]


_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _number(text: str) -> int | float:
    """Return an int when ``text`` is one (as redis-py gives), else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


# The query options a URL may carry, read as redis-py's ``parse_url`` reads them in every
# version djredis supports. Every other option is kept as the text the URL gives: an option
# that needs a Python object (``retry_on_error``: exception classes) or that djredis's
# connections cannot honour (``ssl_validate_ocsp``...) then fails the policy check with its
# advice, whatever the value; redis-py 5-7 read ``ssl_validate_ocsp=False`` as on and 8 as
# off, so a URL naming it has no single meaning. djredis reads the query itself so that
# what a LOCATION means does not change with the installed redis-py.
_QUERY_TYPES: Mapping[str, Callable[[str], Any]] = {
    "db": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "socket_read_size": int,
    "socket_keepalive": _flag,
    "retry_on_timeout": _flag,
    "max_connections": int,
    "health_check_interval": _number,
    "ssl_check_hostname": _flag,
    "timeout": float,
    "protocol": int,
}


def parse_locations(location: str | Iterable[str]) -> list[dict[str, Any]]:
    """Return redis-py connection kwargs for each server named in a LOCATION.

    Accepts ``redis://``, ``rediss://`` and ``unix://`` URLs (credentials, ``/db`` and
    ``?db=`` included), a bare socket path, ``host:port``, ``host``, a list of any of those,
    or one string of them separated by commas or semicolons.
    """
    return [parse_one(item) for item in location_items(location)]


def location_items(location: str | Iterable[str]) -> list[str]:
    if isinstance(location, str):
        if multi_host_scheme(location) is not None:
            items = [location.strip()]  # its host part is a comma-separated list
        else:
            items = [part.strip() for part in location.replace(";", ",").split(",")]
    else:
        items = [str(part).strip() for part in location]
    items = [item for item in items if item]
    if not items:
        raise ImproperlyConfigured("LOCATION names no Redis server.")
    return items


def multi_host_scheme(item: str) -> tuple[str, bool] | None:
    scheme = item.strip().split("://", 1)[0].lower() if "://" in item else ""
    return _MULTI_HOST_SCHEMES.get(scheme)


def parse_one(item: str) -> dict[str, Any]:
    if "://" in item:
        scheme = item.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"LOCATION {item!r} has an unsupported scheme {scheme!r}; use redis://, "
                "rediss:// or unix:// (redis+sentinel:// and redis+cluster:// name a whole "
                "Sentinel or Cluster deployment on their own)."
            )
        kwargs = _parse_url(item, item)
        kwargs.setdefault("connection_class", Connection)
        return kwargs
    if item.startswith(("/", "./", "~")) or item.endswith(".sock"):
        return {"path": item, "connection_class": UnixDomainSocketConnection}
    host, port = host_port(item, item, DEFAULT_PORT)
    return {"host": host, "port": port, "connection_class": Connection}


def _parse_url(url: str, item: str) -> dict[str, Any]:
    """Return the connection kwargs of one ``redis://``, ``rediss://`` or ``unix://`` URL.

    redis-py's ``parse_url`` reads the address, credentials and path (the same in every
    version); the query is read here, by ``_QUERY_TYPES``, which some versions do not.
    """
    try:
        split = urlsplit(url)
        # Everything before the query and fragment: scheme, netloc and path, as written.
        address_only = re.split(r"[?#]", url, maxsplit=1)[0]
        kwargs: dict[str, Any] = parse_url(address_only)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ImproperlyConfigured(f"LOCATION {item!r} is not a valid Redis URL: {exc}") from exc
    for name, values in parse_qs(split.query).items():
        convert = _QUERY_TYPES.get(name)
        if convert is None:
            kwargs[name] = values[0]
            continue
        try:
            kwargs[name] = convert(values[0])
        except ValueError:
            raise ImproperlyConfigured(
                f"LOCATION {item!r}: the query option {name!r} = {values[0]!r} is not a valid "
                f"{'true/false value' if convert is _flag else 'number'}."
            ) from None
    return kwargs


def host_port(item: str, text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port`` or ``[v6]:port`` (``item`` is quoted in errors)."""
    host, port = text, default_port
    if text.startswith("["):  # [::1]:6379
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = port_number(item, rest[1:])
    elif text.count(":") == 1:
        host, raw_port = text.split(":")
        port = port_number(item, raw_port)
    if not host:
        raise ImproperlyConfigured(f"LOCATION {item!r} names a server without a host.")
    return host, port


def port_number(item: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"LOCATION {item!r} has an invalid port {raw!r}.") from None


@dataclass
class _MultiHost:
    """One ``redis+sentinel://`` or ``redis+cluster://`` URL, taken apart."""

    kind: str
    tls: bool
    hosts: list[tuple[str, int]]
    service: str | None
    kwargs: dict[str, Any]  # credentials, db and query options, for the data nodes


def _parse_multi_host(item: str) -> _MultiHost:
    kind, tls = multi_host_scheme(item) or ("", False)
    scheme = item.split("://", 1)[0]
    default_port = DEFAULT_SENTINEL_PORT if kind == "sentinel" else DEFAULT_PORT
    form = (
        f"{scheme}://[[user]:password@]host1:26379,host2:26379/<service>/<db>"
        if kind == "sentinel"
        else f"{scheme}://[[user]:password@]host1:7000,host2:7001"
    )
    try:
        split = urlsplit(item)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"LOCATION {item!r} is not a valid URL ({exc}); {form}."
        ) from exc
    userinfo, _, host_list = split.netloc.rpartition("@")
    hosts = [host_port(item, h.strip(), default_port) for h in host_list.split(",") if h.strip()]
    if not hosts:
        raise ImproperlyConfigured(f"LOCATION {item!r} names no server; use {form}.")
    parts = [unquote(part) for part in split.path.split("/") if part]
    service = None
    if kind == "sentinel":
        if not parts:
            raise ImproperlyConfigured(
                f"LOCATION {item!r} names no Sentinel service (the name in the Sentinels' "
                f"'sentinel monitor' line); use {form}."
            )
        service = parts.pop(0)
    if len(parts) > 1:
        raise ImproperlyConfigured(f"LOCATION {item!r} has an unexpected path; use {form}.")
    # redis-py parses the rest (credentials, /db, ?options) exactly as for one server.
    one = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}localhost"
    one += f"/{parts[0]}" if parts else ""
    one += f"?{split.query}" if split.query else ""
    kwargs = _parse_url(one, item)
    for name in ("host", "port", "connection_class"):
        kwargs.pop(name, None)
    return _MultiHost(kind, tls, hosts, service, kwargs)


def merge_multi_host(items: list[str]) -> _MultiHost:
    """Combine several URLs of one deployment (a LOCATION list) into one."""
    parsed = [_parse_multi_host(item) for item in items]
    first = parsed[0]
    for item, other in zip(items[1:], parsed[1:], strict=True):
        if (other.kind, other.tls, other.service, other.kwargs) != (
            first.kind,
            first.tls,
            first.service,
            first.kwargs,
        ):
            raise ImproperlyConfigured(
                f"LOCATION {item!r} disagrees with {items[0]!r}: the URLs of one deployment "
                "must share scheme, credentials, service, database and options."
            )
        first.hosts += [host for host in other.hosts if host not in first.hosts]
    return first
