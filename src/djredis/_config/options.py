"""Parse Redis locations and OPTIONS into frozen connection settings, in one place.

Every component (cache, sessions, rate limiter, channel layer) describes the Redis it talks
to with the same two things Django users already write: a LOCATION and an OPTIONS dict
mixing redis-py keyword arguments (Django's builtin backend style, lowercase) with
django-redis's uppercase names. The LOCATION picks the topology:

- a URL, a socket path, ``host:port``, or a list of those whose first item is the primary
  and the rest read replicas → ``ConnectionSettings``;
- ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/<service>/<db>``, or
  django-redis's ``redis://<service>/<db>`` with ``OPTIONS['SENTINELS']`` →
  ``SentinelSettings``;
- ``redis+cluster://[[user]:password@]host1:7000,host2:7001`` (seed nodes), or any
  location with ``OPTIONS['CLUSTER'] = True`` → ``ClusterSettings``.

(``rediss+...`` for TLS.) The result is hashable, complete and validated, so that a typo
fails at startup with ``ImproperlyConfigured`` instead of being silently ignored.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from queue import LifoQueue
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from redis._parsers import _HiredisParser, _RESP2Parser, _RESP3Parser
from redis.backoff import AbstractBackoff, NoBackoff
from redis.client import Redis
from redis.cluster import RedisCluster
from redis.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

__all__ = [
    "DEFAULT_CONNECTION_OPTIONS",
    "ClusterSettings",
    "ConnectionSettings",
    "SentinelSettings",
    "ServerConfig",
    "Settings",
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
# redis-py's BlockingConnectionPool holds 50 connections unless told otherwise; djredis's own
# pool imitating it must block at the same point.
DEFAULT_BLOCKING_MAX_CONNECTIONS = 50

DEFAULT_SENTINEL_PORT = 26379
DEFAULT_PORT = 6379

# scheme -> (topology, TLS). Their host part lists several servers, so a LOCATION string
# in one of these schemes is never split on commas.
_MULTI_HOST_SCHEMES: Mapping[str, tuple[str, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
# django-redis's SentinelClient names its pool class; djredis manages Sentinel pools itself.
_SENTINEL_POOL_PATHS = frozenset(
    {"django_redis.pool.SentinelConnectionPool", "redis.sentinel.SentinelConnectionPool"}
)
# Connection arguments a Sentinel connection takes from the data nodes' settings unless
# SENTINEL_KWARGS says otherwise (as redis-py's Sentinel does when it has no
# sentinel_kwargs): how long to wait, never the credentials.
_SENTINEL_INHERITED = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
        "retry_on_timeout",
        "protocol",
    }
)

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
# Uppercase OPTIONS that choose or tune the topology.
_TOPOLOGY_OPTIONS = frozenset({"SENTINELS", "SENTINEL_KWARGS", "READ_FROM_REPLICAS", "CLUSTER"})
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
}
# Lowercase keys that Django's builtin RedisCache gives a meaning of its own.
_DJANGO_LOWERCASE = frozenset({"serializer", "pool_class", "parser_class"})

# Connection arguments redis-py takes but djredis's own connections (the sync pool and the
# multiplexed connection) cannot honour. Accepting them would make the redis-py clients and
# djredis's connections behave differently, silently; so a value that asks for anything
# (not None, False, 0 or empty: redis-py's defaults) is an error saying what to do instead.
_NO_OCSP = (
    "djredis's connections cannot validate certificates with OCSP, and OCSP that is "
    "silently off is worse than none; remove it and verify the server's certificate against "
    "your CA with ssl_ca_certs (or ssl_ca_path/ssl_ca_data) and ssl_cert_reqs='required'"
)
_RESP3_ONLY = "it needs RESP3 (protocol=3), and djredis's connections speak RESP2; remove it"
_UNSUPPORTED_KWARGS: Mapping[str, str] = {
    "ssl_validate_ocsp": _NO_OCSP,
    "ssl_validate_ocsp_stapled": _NO_OCSP,
    "ssl_ocsp_context": _NO_OCSP,
    "ssl_ocsp_expected_cert": _NO_OCSP,
    "ssl_include_verify_flags": (
        "djredis's TLS connections do not apply extra X.509 verify flags (such as CRL "
        "checks); remove it, or terminate TLS in a proxy that checks them"
    ),
    "ssl_exclude_verify_flags": (
        "djredis's TLS connections keep Python's default X.509 verify flags; remove it"
    ),
    "redis_connect_func": (
        "djredis's connections run their own handshake (AUTH, SELECT, CLIENT SETNAME); "
        "remove it and use username/password or credential_provider, db and client_name"
    ),
    "command_packer": "djredis's connections encode commands themselves; remove it",
    "socket_type": (
        "djredis's connections try every address the host name resolves to; to force IPv4 "
        "or IPv6, put an address of that family in LOCATION (127.0.0.1, [::1])"
    ),
    "event_dispatcher": "djredis's connections dispatch no redis-py events; remove it",
    "maint_notifications_config": _RESP3_ONLY,
    "oss_cluster_maint_notifications_handler": _RESP3_ONLY,
    "cache_factory": f"client-side caching: {_RESP3_ONLY}",
}
# Arguments redis-py's own objects pass to each other (maintenance notifications, HIMPORT
# state); they are not settings, so any value is an error.
_REDIS_PY_INTERNAL = frozenset(
    {
        "himport_registry",
        "maint_notifications_pool_handler",
        "maintenance_notification_hash",
        "maintenance_state",
        "orig_host_address",
        "orig_socket_connect_timeout",
        "orig_socket_timeout",
    }
)
_RESP2_ONLY = (
    "djredis's connections speak RESP2, and the redis-py clients from "
    "get_redis_connection() follow them so that every reply has one shape"
)
# redis-py's parser classes (one class under several import paths in redis-py 5..8) -> the
# reply reader djredis's connections use.
_READERS: Mapping[type, str] = {_HiredisParser: "hiredis", _RESP2Parser: "python"}
# Names of redis-py < 5, still in Django's documentation of parser_class.
_PARSER_PATHS: Mapping[str, type] = {
    "redis.connection.HiredisParser": _HiredisParser,
    "redis.connection.PythonParser": _RESP2Parser,
}
_POOL_CLASSES = (ConnectionPool, BlockingConnectionPool)
# What a resend may follow: the one resend rule (``_errors.may_resend``) covers connection
# errors, and timeouts when retry_on_timeout is on; no other error is ever resent.
_TIMEOUT_ERRORS: tuple[type[Exception], ...] = (RedisTimeoutError, TimeoutError)
_RESENDABLE_ERRORS = (*_TIMEOUT_ERRORS, RedisConnectionError, ConnectionError)
# What redis.Redis still reads from its keyword arguments when it is given a connection
# pool, as djredis builds it; it silently drops every other connection argument.
_POOLED_CLIENT_KWARGS = frozenset({"single_connection_client", "event_dispatcher"})


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
    # Configurations key dicts on every command (pools, per-loop connections): hash once.
    _hash: int = field(init=False, repr=False, compare=False)
    # Typed views of the connection policy, derived once from the kwargs above and read by
    # djredis's own connections (the sync pool and the multiplexed connection).
    connect_timeout: float | None = field(init=False, repr=False, compare=False)
    socket_timeout: float | None = field(init=False, repr=False, compare=False)
    # How many times a command that failed may be sent again (only when that is safe), and
    # what to sleep before each resend: ``backoff.compute(failures)`` seconds, None = none.
    retries: int = field(init=False, repr=False, compare=False)
    backoff: AbstractBackoff | None = field(init=False, repr=False, compare=False)
    retry_on_timeout: bool = field(init=False, repr=False, compare=False)
    health_check_interval: float = field(init=False, repr=False, compare=False)
    # "hiredis", "python", or None: the RESP reader (None: hiredis when installed).
    reader: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = (
            self.connection_class,
            self.pool_class,
            self.client_class,
            self.connection_kwargs,
            self.client_kwargs,
        )
        object.__setattr__(self, "_hash", hash(identity))
        kw = self.kwargs()
        timeout = kw.get("socket_timeout")
        # redis-py retries what the Retry's supported_errors and retry_on_error name, and
        # timeouts with retry_on_timeout: djredis's connections follow the same settings.
        retry = kw.get("retry")
        errors = list(kw.get("retry_on_error") or ())
        backoff = None
        if isinstance(retry, Retry):
            errors += retry._supported_errors
            if not isinstance(retry._backoff, NoBackoff):
                backoff = retry._backoff
        policy = {
            "connect_timeout": kw.get("socket_connect_timeout") or timeout,
            "socket_timeout": timeout,
            "retries": retry._retries if isinstance(retry, Retry) else DEFAULT_RETRIES,
            "backoff": backoff,
            "retry_on_timeout": bool(kw.get("retry_on_timeout")) or _names_timeouts(errors),
            "health_check_interval": float(kw.get("health_check_interval") or 0),
            "reader": _READERS.get(kw["parser_class"]) if "parser_class" in kw else None,
        }
        for name, value in policy.items():
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:
        return self._hash

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

    @property
    def address(self) -> tuple[str, int]:
        """Return ``(host, port)``."""
        kw = dict(self.connection_kwargs)
        return str(kw.get("host", "localhost")), int(kw.get("port", DEFAULT_PORT))

    def at(self, host: str, port: int) -> ServerConfig:
        """Return this configuration for the server at ``host:port`` (a discovered node)."""
        kwargs = dict(self.connection_kwargs)
        kwargs.update(host=host, port=port)
        return replace(self, connection_kwargs=tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class ConnectionSettings:
    """One server, or a primary and its read replicas, all named in LOCATION."""

    primary: ServerConfig
    replicas: tuple[ServerConfig, ...] = ()
    # Whether reads may go to the replicas (OPTIONS['READ_FROM_REPLICAS'], default True).
    read_from_replicas: bool = True


@dataclass(frozen=True)
class SentinelSettings:
    """A service whose primary and replicas Redis Sentinel names."""

    service_name: str
    sentinels: tuple[ServerConfig, ...]
    # Every data node: this configuration at the address the Sentinels give.
    node: ServerConfig
    # Whether reads may go to the replicas (OPTIONS['READ_FROM_REPLICAS'], default False).
    read_from_replicas: bool = False


@dataclass(frozen=True)
class ClusterSettings:
    """A Redis Cluster, found through one or more seed nodes."""

    # Full configurations of the seeds; discovered nodes are ``seeds[0].at(host, port)``.
    seeds: tuple[ServerConfig, ...]
    # The redis-py class (RedisCluster or a subclass) handed to user code.
    client_class: type[Any] = RedisCluster
    client_kwargs: tuple[tuple[str, Any], ...] = ()


Settings = ConnectionSettings | SentinelSettings | ClusterSettings


def parse_locations(location: str | Iterable[str]) -> list[dict[str, Any]]:
    """Return redis-py connection kwargs for each server named in a LOCATION.

    Accepts ``redis://``, ``rediss://`` and ``unix://`` URLs (credentials, ``/db`` and
    ``?db=`` included), a bare socket path, ``host:port``, ``host``, a list of any of those,
    or one string of them separated by commas or semicolons.
    """
    return [_parse_one(item) for item in _location_items(location)]


def _location_items(location: str | Iterable[str]) -> list[str]:
    if isinstance(location, str):
        if _multi_host_scheme(location) is not None:
            items = [location.strip()]  # its host part is a comma-separated list
        else:
            items = [part.strip() for part in location.replace(";", ",").split(",")]
    else:
        items = [str(part).strip() for part in location]
    items = [item for item in items if item]
    if not items:
        raise ImproperlyConfigured("LOCATION names no Redis server.")
    return items


def _multi_host_scheme(item: str) -> tuple[str, bool] | None:
    scheme = item.strip().split("://", 1)[0].lower() if "://" in item else ""
    return _MULTI_HOST_SCHEMES.get(scheme)


def _parse_one(item: str) -> dict[str, Any]:
    if "://" in item:
        scheme = item.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"LOCATION {item!r} has an unsupported scheme {scheme!r}; use redis://, "
                "rediss:// or unix:// (redis+sentinel:// and redis+cluster:// name a whole "
                "Sentinel or Cluster deployment on their own)."
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
    host, port = _host_port(item, item, DEFAULT_PORT)
    return {"host": host, "port": port, "connection_class": Connection}


def _host_port(item: str, text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port`` or ``[v6]:port`` (``item`` is quoted in errors)."""
    host, port = text, default_port
    if text.startswith("["):  # [::1]:6379
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(item, rest[1:])
    elif text.count(":") == 1:
        host, raw_port = text.split(":")
        port = _port(item, raw_port)
    if not host:
        raise ImproperlyConfigured(f"LOCATION {item!r} names a server without a host.")
    return host, port


def _port(item: str, raw: str) -> int:
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
    kind, tls = _multi_host_scheme(item) or ("", False)
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
    hosts = [_host_port(item, h.strip(), default_port) for h in host_list.split(",") if h.strip()]
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
    try:
        kwargs: dict[str, Any] = parse_url(one)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ImproperlyConfigured(f"LOCATION {item!r} is not a valid URL: {exc}") from exc
    for name in ("host", "port", "connection_class"):
        kwargs.pop(name, None)
    return _MultiHost(kind, tls, hosts, service, kwargs)


def _merge_multi_host(items: list[str]) -> _MultiHost:
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


def _bool(options: Mapping[str, Any], name: str, setting: str) -> bool | None:
    value = options.get(name)
    if value is not None and not isinstance(value, bool):
        raise ImproperlyConfigured(f"{setting}[{name!r}] must be True or False, got {value!r}.")
    return value


def parse_connection_settings(
    location: str | Iterable[str],
    options: Mapping[str, Any] | None,
    *,
    setting: str,
    component_options: frozenset[str] = _COMPONENT_OPTIONS,
) -> Settings:
    """Validate LOCATION + OPTIONS and return the complete connection settings.

    Uppercase OPTIONS in ``component_options`` belong to the calling component (which reads
    them itself); every other key must be a connection option. ``setting`` names where
    the OPTIONS came from (``"CACHES['default']['OPTIONS']"``) so every error can point at
    the exact place to fix.
    """
    options = dict(options or {})
    accepted_upper = set(_UPPER_TO_KWARG) | _POOL_OPTIONS | _TOPOLOGY_OPTIONS | component_options
    for name in options:
        if name in _REJECTED_OPTIONS:
            raise ImproperlyConfigured(f"{setting}[{name!r}]: {_REJECTED_OPTIONS[name]}.")
        if name.isupper() and name not in accepted_upper:
            raise ImproperlyConfigured(
                f"{setting}[{name!r}] is not a djredis option. Accepted uppercase options: "
                f"{', '.join(sorted(accepted_upper))}; lowercase keys are redis-py "
                "connection arguments."
            )
    items = _location_items(location)
    kind = _topology_kind(items, options, setting)

    pool_class = _pool_class(options, kind, setting)
    default_client = "redis.cluster.RedisCluster" if kind == "cluster" else "redis.client.Redis"
    client_class = _import(
        options.get("REDIS_CLIENT_CLASS", default_client), f"{setting}['REDIS_CLIENT_CLASS']"
    )
    expected_client = RedisCluster if kind == "cluster" else Redis
    if not (isinstance(client_class, type) and issubclass(client_class, expected_client)):
        raise ImproperlyConfigured(
            f"{setting}['REDIS_CLIENT_CLASS'] must be a {expected_client.__module__}."
            f"{expected_client.__qualname__} subclass here, got {client_class!r}."
        )
    client_kwargs = _client_kwargs(options, kind, setting)

    # Connection keyword arguments from every place users put them; the same knob given
    # twice with different values is an error rather than a silent precedence rule. Each
    # remembers where it was set (``[...]`` after ``setting``), for error messages.
    explicit: dict[str, tuple[Any, str]] = {}

    def put(name: str, value: Any, source: str) -> None:
        if name in explicit and explicit[name][0] != value:
            raise ImproperlyConfigured(
                f"{setting}: {name!r} is set twice with different values: "
                f"{explicit[name][0]!r} in {setting}{explicit[name][1]} and {value!r} in "
                f"{setting}{source}."
            )
        explicit[name] = (value, source)

    for upper, kwarg in _UPPER_TO_KWARG.items():
        if upper in options:
            put(kwarg, options[upper], f"[{upper!r}]")
    for group in ("CONNECTION_POOL_KWARGS", "CONNECTION_POOL_CLASS_KWARGS"):
        for name, value in dict(options.get(group) or {}).items():
            put(name, value, f"[{group!r}][{name!r}]")
    for name, value in options.items():
        if not name.isupper() and name not in _DJANGO_LOWERCASE:
            put(name, value, f"[{name!r}]")
    for name in ("PARSER_CLASS", "parser_class"):
        if name in options:
            put("parser_class", options[name], f"[{name!r}]")

    def server(url_kwargs: dict[str, Any], client: type[Any] = client_class) -> ServerConfig:
        url_kwargs = dict(url_kwargs)
        connection_class = url_kwargs.pop("connection_class")
        merged: dict[str, Any] = dict(DEFAULT_CONNECTION_OPTIONS)
        sources: dict[str, str] = {}
        for name, value in url_kwargs.items():
            if name in explicit and explicit[name][0] != value:
                raise ImproperlyConfigured(
                    f"{setting}: {name!r} is {value!r} in LOCATION but "
                    f"{explicit[name][0]!r} in {setting}{explicit[name][1]}."
                )
            merged[name] = value
            sources[name] = f"LOCATION's query option {name!r}"
        for name, (value, source) in explicit.items():
            merged[name] = value
            sources[name] = f"{setting}{source}"
        return _server(
            connection_class, pool_class, client, client_kwargs, merged, setting, sources
        )

    read_from_replicas = _bool(options, "READ_FROM_REPLICAS", setting)
    if kind == "sentinel":
        return _sentinel_settings(items, options, server, read_from_replicas, setting)
    if kind == "cluster":
        if read_from_replicas:
            raise ImproperlyConfigured(
                f"{setting}['READ_FROM_REPLICAS']: in a Redis Cluster djredis reads from the "
                "primaries (a replica answers with MOVED unless every connection says "
                "READONLY); remove the option."
            )
        return _cluster_settings(items, client_class, client_kwargs, server, setting)
    servers = [server(url_kwargs) for url_kwargs in parse_locations(items)]
    return ConnectionSettings(
        primary=servers[0],
        replicas=tuple(servers[1:]),
        read_from_replicas=True if read_from_replicas is None else read_from_replicas,
    )


def _topology_kind(items: list[str], options: Mapping[str, Any], setting: str) -> str:
    """Return "standalone", "sentinel" or "cluster" and reject contradictory settings."""
    multi = [_multi_host_scheme(item) for item in items]
    cluster_option = _bool(options, "CLUSTER", setting)
    kinds = {found[0] for found in multi if found is not None}
    if kinds and (len(kinds) > 1 or None in multi):
        raise ImproperlyConfigured(
            f"LOCATION {items!r} mixes redis+sentinel:// or redis+cluster:// URLs with other "
            "locations; list the Sentinels or the seed nodes in one URL "
            "(host1:port,host2:port) or give only URLs of that one kind."
        )
    if kinds == {"sentinel"} or "SENTINELS" in options:
        if kinds and "SENTINELS" in options:
            raise ImproperlyConfigured(
                f"{setting}['SENTINELS'] and a redis+sentinel:// LOCATION both name the "
                "Sentinels; keep one (the URL, or SENTINELS with LOCATION "
                "'redis://<service>/<db>')."
            )
        if cluster_option:
            raise ImproperlyConfigured(
                f"{setting}['CLUSTER'] = True contradicts the Sentinel settings; a "
                "deployment is either Sentinel or Cluster."
            )
        return "sentinel"
    if "SENTINEL_KWARGS" in options:
        raise ImproperlyConfigured(
            f"{setting}['SENTINEL_KWARGS'] only applies to Sentinel: use a "
            "redis+sentinel://host:26379/<service>/<db> LOCATION or OPTIONS['SENTINELS']."
        )
    if kinds == {"cluster"}:
        if cluster_option is False:
            raise ImproperlyConfigured(
                f"{setting}['CLUSTER'] = False contradicts the redis+cluster:// LOCATION."
            )
        return "cluster"
    return "cluster" if cluster_option else "standalone"


def _sentinel_settings(
    items: list[str],
    options: Mapping[str, Any],
    server: Any,
    read_from_replicas: bool | None,
    setting: str,
) -> SentinelSettings:
    if _multi_host_scheme(items[0]) is not None:
        parsed = _merge_multi_host(items)
        service, hosts, tls = parsed.service or "", parsed.hosts, parsed.tls
        node_kwargs = dict(parsed.kwargs)
        replica_reads = read_from_replicas
    else:
        # django-redis: LOCATION 'redis://<service>/<db>' (several with ?is_master=0|1),
        # the Sentinels in OPTIONS['SENTINELS'].
        hosts = _sentinel_hosts(options["SENTINELS"], setting)
        urls = [_parse_one(item) for item in items]
        services = {kwargs.pop("host", None) for kwargs in urls}
        wants_replicas = {
            kwargs.pop("is_master", "1") in ("0", "false", "False") for kwargs in urls
        }
        for kwargs in urls:
            kwargs.pop("port", None)
        if len(services) != 1 or None in services or any(u != urls[0] for u in urls[1:]):
            raise ImproperlyConfigured(
                f"LOCATION {items!r}: with OPTIONS['SENTINELS'], LOCATION is "
                "'redis://<service>/<db>' (the service as the host), the same for every item."
            )
        service = str(services.pop())
        node_kwargs = urls[0]
        tls = issubclass(node_kwargs.pop("connection_class"), SSLConnection)
        url_replicas = True in wants_replicas
        if read_from_replicas is not None and url_replicas and not read_from_replicas:
            raise ImproperlyConfigured(
                f"{setting}['READ_FROM_REPLICAS'] = False contradicts the LOCATION with "
                "?is_master=0 (reads from replicas)."
            )
        replica_reads = read_from_replicas or url_replicas
    node_kwargs["connection_class"] = SSLConnection if tls else Connection
    node: ServerConfig = server(node_kwargs)
    return SentinelSettings(
        service_name=service,
        sentinels=tuple(
            _sentinel_config(host, port, node, tls, options, setting) for host, port in hosts
        ),
        node=node,
        read_from_replicas=bool(replica_reads),
    )


def _sentinel_hosts(value: Any, setting: str) -> list[tuple[str, int]]:
    where = f"{setting}['SENTINELS']"
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ImproperlyConfigured(
            f"{where} must be a list of (host, port) pairs or 'host:port' strings, got {value!r}."
        )
    hosts = []
    for entry in value:
        if isinstance(entry, str):
            hosts.append(_host_port(where, entry, DEFAULT_SENTINEL_PORT))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            hosts.append((str(entry[0]), _port(where, str(entry[1]))))
        else:
            raise ImproperlyConfigured(f"{where}: {entry!r} is not a (host, port) pair.")
    if not hosts:
        raise ImproperlyConfigured(f"{where} names no Sentinel.")
    return hosts


def _sentinel_config(
    host: str, port: int, node: ServerConfig, tls: bool, options: Mapping[str, Any], setting: str
) -> ServerConfig:
    """Return the connection settings for one Sentinel.

    A Sentinel has its own credentials (``SENTINEL_KWARGS = {"password": ...}``), never the
    data nodes'; it inherits their timeouts, and their TLS settings when the scheme is
    ``rediss+sentinel://`` (``SENTINEL_KWARGS['ssl']`` decides otherwise).
    """
    where = f"{setting}['SENTINEL_KWARGS']"
    given = options.get("SENTINEL_KWARGS") or {}
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict of connection arguments.")
    own = dict(given)
    ssl = own.pop("ssl", tls)
    inherited = {k: v for k, v in node.kwargs().items() if k in _SENTINEL_INHERITED}
    if ssl and tls:
        inherited.update({k: v for k, v in node.kwargs().items() if k.startswith("ssl_")})
    kwargs: dict[str, Any] = {**DEFAULT_CONNECTION_OPTIONS, **inherited, **own}
    kwargs.update(host=host, port=port)
    connection_class = SSLConnection if ssl else Connection
    return _server(connection_class, ConnectionPool, Redis, {}, kwargs, where)


def _cluster_settings(
    items: list[str],
    client_class: type[Any],
    client_kwargs: dict[str, Any],
    server: Any,
    setting: str,
) -> ClusterSettings:
    if _multi_host_scheme(items[0]) is not None:
        parsed = _merge_multi_host(items)
        connection_class = SSLConnection if parsed.tls else Connection
        urls = [
            {**parsed.kwargs, "host": host, "port": port, "connection_class": connection_class}
            for host, port in parsed.hosts
        ]
    else:
        urls = parse_locations(items)
        if any(kwargs["connection_class"] is UnixDomainSocketConnection for kwargs in urls):
            raise ImproperlyConfigured(
                f"LOCATION {items!r}: Redis Cluster nodes are reached over TCP; give seed "
                "nodes as redis://host:port URLs."
            )
    seeds = tuple(server(kwargs, Redis) for kwargs in urls)
    if any(dict(seed.connection_kwargs).get("db", 0) != 0 for seed in seeds):
        raise ImproperlyConfigured(
            f"{setting}: Redis Cluster has only database 0; remove the /db from LOCATION "
            "(or DB from OPTIONS) and give each cache a KEY_PREFIX instead."
        )
    return ClusterSettings(
        seeds=seeds,
        client_class=client_class,
        client_kwargs=tuple(sorted((k, _freeze(v)) for k, v in client_kwargs.items())),
    )


def _server(
    connection_class: type[AbstractConnection],
    pool_class: type[ConnectionPool],
    client_class: type[Any],
    client_kwargs: dict[str, Any],
    kwargs: dict[str, Any],
    setting: str,
    sources: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Validate one server's connection arguments and return its ``ServerConfig``.

    ``sources`` says where each argument was set (``"CACHES['default']['OPTIONS']['x']"``),
    for the error messages; an argument missing from it is named as ``setting[name]``.
    """
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
            f"{', '.join(sorted(accepted - set(_UNSUPPORTED_KWARGS) - _REDIS_PY_INTERNAL))}."
        )
    _check_timeout(kwargs, "socket_timeout", setting)
    _check_timeout(kwargs, "socket_connect_timeout", setting)
    _check_policy(kwargs, lambda name: (sources or {}).get(name, f"{setting}[{name!r}]"))
    if kwargs.get("max_connections") is None:
        kwargs["max_connections"] = (
            DEFAULT_BLOCKING_MAX_CONNECTIONS
            if pool_class is BlockingConnectionPool
            else DEFAULT_MAX_CONNECTIONS
        )
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


def _check_policy(kwargs: dict[str, Any], where: Callable[[str], str]) -> None:
    """Reject what djredis's connections cannot honour; normalise what they can.

    ``where(name)`` names the setting that holds ``name``. Every argument left in ``kwargs``
    is then honoured by djredis's connections, or concerns only the redis-py clients handed
    to user code (``decode_responses``, ``encoding``, ``lib_name``...).
    """
    for name, value in kwargs.items():
        if name in _REDIS_PY_INTERNAL:
            raise ImproperlyConfigured(
                f"{where(name)}: {name!r} is set by redis-py itself, not a setting; remove it."
            )
        if name in _UNSUPPORTED_KWARGS and value:
            raise ImproperlyConfigured(f"{where(name)} = {value!r}: {_UNSUPPORTED_KWARGS[name]}.")
    protocol = kwargs.get("protocol")
    if protocol not in (None, 2, "2"):
        raise ImproperlyConfigured(
            f"{where('protocol')} = {protocol!r}: {_RESP2_ONLY}; remove it or set 2."
        )
    # redis-py 8 reads None as "negotiate RESP3"; djredis's RESP2 is what it must speak.
    kwargs["protocol"] = 2
    if "parser_class" in kwargs:
        kwargs["parser_class"] = _parser_class(kwargs["parser_class"], where("parser_class"))
    if "retry" in kwargs:
        _check_retry(kwargs["retry"], where("retry"))
    if "retry_on_error" in kwargs:
        _check_resendable(kwargs["retry_on_error"], where("retry_on_error"))
    interval = kwargs.get("health_check_interval", 0)
    if _not_seconds(interval) or interval < 0:
        raise ImproperlyConfigured(
            f"{where('health_check_interval')} must be a number of seconds (0 turns the "
            f"health check off), got {interval!r}."
        )
    limit = kwargs.get("max_connections")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ImproperlyConfigured(
            f"{where('max_connections')} must be a positive whole number or None, got {limit!r}."
        )
    wait = kwargs.get("timeout")
    if wait is not None and (_not_seconds(wait) or wait < 0):
        raise ImproperlyConfigured(
            f"{where('timeout')} (how long BlockingConnectionPool waits for a free "
            f"connection) must be a number of seconds or None, got {wait!r}."
        )
    queue = kwargs.get("queue_class")
    if queue is not None and queue is not LifoQueue:
        raise ImproperlyConfigured(
            f"{where('queue_class')} = {queue!r}: djredis's pool always hands out the most "
            "recently used idle connection, as queue.LifoQueue does; remove it."
        )


def _not_seconds(value: Any) -> bool:
    return (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    )


def _parser_class(spec: Any, where: str) -> type:
    """Return the redis-py parser class ``spec`` names, if djredis can read replies that way."""
    parser = _PARSER_PATHS.get(spec) if isinstance(spec, str) else None
    if parser is None:
        parser = _import(spec, where)
    if parser is _RESP3Parser:
        raise ImproperlyConfigured(f"{where} = {spec!r}: {_RESP2_ONLY}; remove it.")
    if parser not in _READERS:
        raise ImproperlyConfigured(
            f"{where} = {spec!r}: djredis's connections read replies either with hiredis "
            "('redis._parsers.hiredis._HiredisParser', the default when hiredis is installed) "
            "or in pure Python ('redis._parsers.resp2._RESP2Parser'); use one of those or "
            "remove it."
        )
    if _READERS[parser] == "hiredis":
        try:
            import hiredis  # noqa: F401
        except ImportError:
            raise ImproperlyConfigured(
                f"{where} = {spec!r} needs hiredis, which is not installed: "
                "pip install 'djredis[hiredis]'."
            ) from None
    result: type = parser
    return result


def _check_retry(retry: Any, where: str) -> None:
    if type(retry) is not Retry:
        raise ImproperlyConfigured(
            f"{where} must be a redis.retry.Retry, e.g. Retry(ExponentialBackoff(), 3), got "
            f"{retry!r}."
        )
    retries = retry._retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ImproperlyConfigured(
            f"{where} retries {retries!r} times: give a number of retries >= 0 (retrying "
            "forever would make a command wait without bound)."
        )
    if not isinstance(retry._backoff, AbstractBackoff):
        raise ImproperlyConfigured(
            f"{where}'s backoff must be a redis.backoff backoff (ExponentialBackoff, "
            f"NoBackoff...), got {retry._backoff!r}."
        )
    _check_resendable(retry._supported_errors, f"{where}'s supported_errors")


def _check_resendable(errors: Any, where: str) -> None:
    """Reject retrying any error other than connection errors and timeouts."""
    if (
        isinstance(errors, (str, bytes))
        or not isinstance(errors, Iterable)
        or not all(isinstance(error, type) for error in errors)
    ):
        raise ImproperlyConfigured(
            f"{where} must be a list of exception classes (so it cannot be given in a URL), "
            f"got {errors!r}."
        )
    for error in errors:
        if not issubclass(error, _RESENDABLE_ERRORS):
            name = f"{error.__module__}.{error.__qualname__}"
            raise ImproperlyConfigured(
                f"{where} names {name!r}: djredis's connections resend a command only after "
                "a connection error, or a timeout with retry_on_timeout, and only when it "
                "surely did not run or only reads; retrying any other error could apply a "
                f"write twice. Remove {name!r} (list redis.exceptions.TimeoutError to retry "
                "timeouts)."
            )


def _names_timeouts(errors: Iterable[Any]) -> bool:
    return any(isinstance(e, type) and issubclass(e, _TIMEOUT_ERRORS) for e in errors)


def _pool_class(options: Mapping[str, Any], kind: str, setting: str) -> type[ConnectionPool]:
    """Return redis-py's ConnectionPool or BlockingConnectionPool, as OPTIONS choose."""
    given = [name for name in ("CONNECTION_POOL_CLASS", "pool_class") if name in options]
    if len(given) == 2 and options[given[0]] != options[given[1]]:
        raise ImproperlyConfigured(
            f"{setting} sets 'CONNECTION_POOL_CLASS' and 'pool_class' to different values; "
            "keep one."
        )
    if not given:
        return ConnectionPool
    where = f"{setting}[{given[0]!r}]"
    spec = options[given[0]]
    if kind == "sentinel" and spec in _SENTINEL_POOL_PATHS:
        return ConnectionPool  # django-redis's Sentinel settings name it; we manage it
    pool_class = _import(spec, where)
    if pool_class not in _POOL_CLASSES:
        raise ImproperlyConfigured(
            f"{where} = {spec!r}: djredis's own connections use its own pool, which behaves "
            "like redis.ConnectionPool or, bounded by max_connections and timeout, like "
            "redis.BlockingConnectionPool; another class (a subclass too) would change only "
            "the redis-py clients. Use one of those two."
        )
    result: type[ConnectionPool] = pool_class
    return result


def _client_kwargs(options: Mapping[str, Any], kind: str, setting: str) -> dict[str, Any]:
    """Return OPTIONS['REDIS_CLIENT_KWARGS'], rejecting what the client would not apply."""
    where = f"{setting}['REDIS_CLIENT_KWARGS']"
    given = options.get("REDIS_CLIENT_KWARGS") or {}
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict.")
    if given and kind == "sentinel":
        raise ImproperlyConfigured(
            f"{where}: the clients of a Sentinel-managed service are built by redis-py's "
            "Sentinel, which does not take them; remove it (connection options go in OPTIONS)."
        )
    if kind != "cluster":
        # redis.Redis given a connection pool (as djredis builds it) drops these silently.
        ignored = sorted((set(given) & _init_parameters(Redis)) - _POOLED_CLIENT_KWARGS)
        if ignored:
            raise ImproperlyConfigured(
                f"{where}: {', '.join(map(repr, ignored))} would be ignored, because redis-py "
                "clients built on a connection pool take connection settings from the pool; "
                "put them in OPTIONS instead."
            )
    return dict(given)


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
