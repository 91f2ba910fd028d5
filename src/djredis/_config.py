"""Parse Redis locations and OPTIONS into frozen connection settings, in one place.

Every component (cache, sessions, rate limiter, channel layer) describes the Redis it talks
to with the same two things Django users already write: a LOCATION (a URL, a socket path,
``host:port``, or a list of those whose first item is the primary and the rest read
replicas) and an OPTIONS dict mixing redis-py keyword arguments (Django's builtin backend
style, lowercase) with django-redis's uppercase names. This module turns them into a
``ConnectionSettings``: hashable, complete, and validated, so that a typo fails at startup
with ``ImproperlyConfigured`` instead of being silently ignored.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from redis.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)

__all__ = [
    "DEFAULT_CONNECTION_OPTIONS",
    "ConnectionSettings",
    "ServerConfig",
    "parse_connection_settings",
    "parse_locations",
]

# Defaults chosen for a cache that sits on the request path (README: "Connection defaults").
# redis-py 8 waits 5 s for a socket, retries 10 times with backoff, negotiates RESP3 (one
# more round trip per new connection, plus maintenance-notification handshakes) and caps a
# pool at 100 connections. A cache must fail fast instead: a slow cache is worse than none.
DEFAULT_CONNECTION_OPTIONS: Mapping[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "protocol": 2,
}
# redis-py < 8 allowed 2**31 connections; 8.x raises "Too many connections" past 100.
# Threads never hold more than one connection each, so the number in use is bounded by the
# server's concurrency anyway; BlockingConnectionPool + MAX_CONNECTIONS gives a hard cap.
DEFAULT_MAX_CONNECTIONS = 2**31 - 1
# One immediate retry on a broken connection (a pooled socket that the server closed while
# idle, e.g. after a Redis restart); none on timeouts unless RETRY_ON_TIMEOUT asks for it,
# because retrying a timed-out command doubles the time a request is stuck.
DEFAULT_RETRIES = 1

_CONNECTION_CLASSES: tuple[type[AbstractConnection], ...] = (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)

# django-redis OPTIONS that map one-to-one onto a redis-py keyword argument.
_UPPER_TO_KWARG: Mapping[str, str] = {
    "SOCKET_CONNECT_TIMEOUT": "socket_connect_timeout",
    "SOCKET_TIMEOUT": "socket_timeout",
    "RETRY_ON_TIMEOUT": "retry_on_timeout",
    "MAX_CONNECTIONS": "max_connections",
    "PASSWORD": "password",
    "USERNAME": "username",
    "DB": "db",
}
# Uppercase OPTIONS that are not about connecting; the component that owns them reads them.
_COMPONENT_OPTIONS = frozenset(
    {
        "CLIENT_CLASS",
        "SERIALIZER",
        "COMPRESSOR",
        "COMPRESS_MIN_LENGTH",
        "IGNORE_EXCEPTIONS",
        "LOG_IGNORED_EXCEPTIONS",
        "CLOSE_CONNECTION",
    }
)
_POOL_OPTIONS = frozenset(
    {
        "CONNECTION_POOL_CLASS",
        "CONNECTION_POOL_KWARGS",
        "CONNECTION_POOL_CLASS_KWARGS",
        "PARSER_CLASS",
        "REDIS_CLIENT_CLASS",
        "REDIS_CLIENT_KWARGS",
    }
)
# Options of django-redis that djredis deliberately does not take, with what to use instead.
_REJECTED_OPTIONS: Mapping[str, str] = {
    "CONNECTION_FACTORY": (
        "djredis builds its pools itself; use CONNECTION_POOL_CLASS, CONNECTION_POOL_KWARGS "
        "or REDIS_CLIENT_CLASS instead"
    ),
    "MAX_ENTRIES": (
        "Redis evicts keys by its own policy; set maxmemory and maxmemory-policy "
        "(e.g. allkeys-lru) in redis.conf instead"
    ),
    "CULL_FREQUENCY": (
        "Redis evicts keys by its own policy; set maxmemory and maxmemory-policy "
        "(e.g. allkeys-lru) in redis.conf instead"
    ),
    "SENTINELS": "Sentinel is not supported by this version of djredis yet",
    "SENTINEL_KWARGS": "Sentinel is not supported by this version of djredis yet",
}
# Lowercase keys that Django's builtin RedisCache gives a meaning of its own.
_DJANGO_LOWERCASE = frozenset({"serializer", "pool_class", "parser_class"})


def _freeze(value: Any) -> Any:
    """Return a hashable stand-in for an option value, so settings can key a pool."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("<object>", id(value))
    return value


@dataclass(frozen=True)
class ServerConfig:
    """Everything needed to build one connection pool to one Redis server.

    Two caches get the same pool exactly when their ``ServerConfig`` objects are equal: the
    whole configuration is the key, never the URL alone.
    """

    connection_class: type[AbstractConnection]
    pool_class: type[ConnectionPool]
    client_class: type[Any]
    connection_kwargs: tuple[tuple[str, Any], ...]
    client_kwargs: tuple[tuple[str, Any], ...] = ()
    # The unhashable originals (ssl contexts, credential providers...) keyed by name; they
    # take no part in equality because ``connection_kwargs`` already carries their identity.
    originals: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments for the pool class, with unhashable originals."""
        result = dict(self.connection_kwargs)
        result.update(self.originals)
        return result

    def describe(self) -> str:
        """Return ``host:port/db`` or the socket path, for log lines and errors."""
        kw = dict(self.connection_kwargs)
        where = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
        return f"{where}/{kw.get('db', 0)}"


@dataclass(frozen=True)
class ConnectionSettings:
    """A primary and its read replicas."""

    primary: ServerConfig
    replicas: tuple[ServerConfig, ...]


def parse_locations(location: str | Iterable[str]) -> list[dict[str, Any]]:
    """Return redis-py connection kwargs for each server named in a LOCATION.

    Accepts ``redis://``, ``rediss://`` and ``unix://`` URLs (credentials, ``/db`` and
    ``?db=`` included), a bare socket path, ``host:port``, ``host``, a list of any of those,
    or one string of them separated by commas or semicolons.
    """
    if isinstance(location, str):
        items = [part.strip() for part in location.replace(";", ",").split(",")]
    else:
        items = [str(part).strip() for part in location]
    items = [item for item in items if item]
    if not items:
        raise ImproperlyConfigured("LOCATION names no Redis server.")
    return [_parse_one(item) for item in items]


def _parse_one(item: str) -> dict[str, Any]:
    if "://" in item:
        scheme = item.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"LOCATION {item!r} has an unsupported scheme {scheme!r}; "
                "use redis://, rediss:// or unix://."
            )
        try:
            kwargs: dict[str, Any] = parse_url(item)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"LOCATION {item!r} is not a valid Redis URL: {exc}"
            ) from exc
        kwargs.setdefault("connection_class", Connection)
        return kwargs
    if item.startswith(("/", "./", "~")) or item.endswith(".sock"):
        return {"path": item, "connection_class": UnixDomainSocketConnection}
    host, port = item, 6379
    if item.startswith("["):  # [::1]:6379
        host, _, rest = item[1:].partition("]")
        if rest.startswith(":"):
            port = _port(item, rest[1:])
    elif item.count(":") == 1:
        host, raw_port = item.split(":")
        port = _port(item, raw_port)
    return {"host": host, "port": port, "connection_class": Connection}


def _port(item: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"LOCATION {item!r} has an invalid port {raw!r}.") from None


_init_parameter_cache: dict[type, frozenset[str]] = {}


def _init_parameters(cls: type) -> frozenset[str]:
    """Return the keyword arguments a class's ``__init__`` accepts along its MRO."""
    known = _init_parameter_cache.get(cls)
    if known is not None:
        return known
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    names.discard("self")
    result = _init_parameter_cache[cls] = frozenset(names)
    return result


def _import(value: Any, setting: str) -> Any:
    if isinstance(value, str):
        try:
            return import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{setting} = {value!r} cannot be imported: {exc}") from exc
    return value


def parse_connection_settings(
    location: str | Iterable[str],
    options: Mapping[str, Any] | None,
    *,
    setting: str,
    component_options: frozenset[str] = _COMPONENT_OPTIONS,
) -> ConnectionSettings:
    """Validate LOCATION + OPTIONS and return the complete connection settings.

    Uppercase OPTIONS in ``component_options`` belong to the calling component (which reads
    them itself); every other key must be a connection option. ``setting`` names where
    the OPTIONS came from (``"CACHES['default']['OPTIONS']"``) so every error can point at
    the exact place to fix.
    """
    options = dict(options or {})
    accepted_upper = set(_UPPER_TO_KWARG) | _POOL_OPTIONS | component_options
    for name in options:
        if name in _REJECTED_OPTIONS:
            raise ImproperlyConfigured(f"{setting}[{name!r}]: {_REJECTED_OPTIONS[name]}.")
        if name.isupper() and name not in accepted_upper:
            raise ImproperlyConfigured(
                f"{setting}[{name!r}] is not a djredis option. Accepted uppercase options: "
                f"{', '.join(sorted(accepted_upper))}; lowercase keys are redis-py "
                "connection arguments."
            )

    pool_class = _import(
        options.get("CONNECTION_POOL_CLASS", options.get("pool_class", ConnectionPool)),
        f"{setting}['CONNECTION_POOL_CLASS']",
    )
    if not (isinstance(pool_class, type) and issubclass(pool_class, ConnectionPool)):
        raise ImproperlyConfigured(
            f"{setting}['CONNECTION_POOL_CLASS'] must be a redis.ConnectionPool subclass, "
            f"got {pool_class!r}."
        )
    client_class = _import(
        options.get("REDIS_CLIENT_CLASS", "redis.client.Redis"),
        f"{setting}['REDIS_CLIENT_CLASS']",
    )
    client_kwargs = dict(options.get("REDIS_CLIENT_KWARGS") or {})

    # Connection keyword arguments from every place users put them; the same knob given
    # twice with different values is an error rather than a silent precedence rule.
    explicit: dict[str, tuple[Any, str]] = {}

    def put(name: str, value: Any, source: str) -> None:
        if name in explicit and explicit[name][0] != value:
            raise ImproperlyConfigured(
                f"{setting}: {name!r} is set twice with different values: "
                f"{explicit[name][0]!r} in {explicit[name][1]} and {value!r} in {source}."
            )
        explicit[name] = (value, source)

    for upper, kwarg in _UPPER_TO_KWARG.items():
        if upper in options:
            put(kwarg, options[upper], f"OPTIONS[{upper!r}]")
    for group in ("CONNECTION_POOL_KWARGS", "CONNECTION_POOL_CLASS_KWARGS"):
        for name, value in dict(options.get(group) or {}).items():
            put(name, value, f"OPTIONS[{group!r}]")
    for name, value in options.items():
        if not name.isupper() and name not in _DJANGO_LOWERCASE:
            put(name, value, f"OPTIONS[{name!r}]")
    parser = options.get("PARSER_CLASS", options.get("parser_class"))
    if parser is not None:
        put(
            "parser_class", _import(parser, f"{setting}['PARSER_CLASS']"), "OPTIONS['PARSER_CLASS']"
        )

    servers = []
    for url_kwargs in parse_locations(location):
        connection_class = url_kwargs.pop("connection_class")
        merged: dict[str, Any] = dict(DEFAULT_CONNECTION_OPTIONS)
        for name, value in url_kwargs.items():
            if name in explicit and explicit[name][0] != value:
                raise ImproperlyConfigured(
                    f"{setting}: {name!r} is {value!r} in LOCATION but "
                    f"{explicit[name][0]!r} in {explicit[name][1]}."
                )
            merged[name] = value
        merged.update({name: value for name, (value, _) in explicit.items()})
        servers.append(
            _server(connection_class, pool_class, client_class, client_kwargs, merged, setting)
        )

    return ConnectionSettings(primary=servers[0], replicas=tuple(servers[1:]))


def _server(
    connection_class: type[AbstractConnection],
    pool_class: type[ConnectionPool],
    client_class: type[Any],
    client_kwargs: dict[str, Any],
    kwargs: dict[str, Any],
    setting: str,
) -> ServerConfig:
    if connection_class is UnixDomainSocketConnection:
        # A socket path and a TCP address are exclusive; socket options are TCP-only.
        for tcp_only in ("host", "port", "socket_keepalive", "socket_keepalive_options"):
            kwargs.pop(tcp_only, None)
    accepted = _init_parameters(connection_class) | _init_parameters(pool_class)
    accepted -= {"connection_class", "connection_kwargs"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        known_anywhere = set().union(*(_init_parameters(c) for c in _CONNECTION_CLASSES))
        hint = (
            " (it only applies to another kind of connection, e.g. ssl_* needs rediss://)"
            if set(unknown) <= known_anywhere
            else ""
        )
        raise ImproperlyConfigured(
            f"{setting}: unknown connection option(s) {', '.join(map(repr, unknown))}{hint}. "
            f"Accepted by {connection_class.__name__}/{pool_class.__name__}: "
            f"{', '.join(sorted(accepted))}."
        )
    _check_timeout(kwargs, "socket_timeout", setting)
    _check_timeout(kwargs, "socket_connect_timeout", setting)
    max_connections = kwargs.get("max_connections")
    if max_connections is None and not issubclass(pool_class, BlockingConnectionPool):
        kwargs["max_connections"] = DEFAULT_MAX_CONNECTIONS
    frozen = tuple(sorted((k, _freeze(v)) for k, v in kwargs.items()))
    originals = {k: v for k, v in kwargs.items() if _freeze(v) is not v}
    return ServerConfig(
        connection_class=connection_class,
        pool_class=pool_class,
        client_class=client_class,
        connection_kwargs=frozen,
        client_kwargs=tuple(sorted((k, _freeze(v)) for k, v in client_kwargs.items())),
        originals=originals,
    )


def _check_timeout(kwargs: dict[str, Any], name: str, setting: str) -> None:
    value = kwargs.get(name)
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ImproperlyConfigured(
            f"{setting}: {name} must be a positive number of seconds or None, got {value!r}."
        )
