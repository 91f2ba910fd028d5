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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.client import Redis
from redis.cluster import RedisCluster
from redis.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)

from djredis._config.locations import (
    host_port,
    location_items,
    merge_multi_host,
    multi_host_scheme,
    parse_locations,
    parse_one,
    port_number,
)
from djredis._config.policy import (
    REDIS_PY_INTERNAL,
    UNSUPPORTED_KWARGS,
    check_policy,
    check_timeout,
    checked_client_kwargs,
    import_setting,
    init_parameters,
    option_bool,
    resolve_pool_class,
)
from djredis._config.server import (
    DEFAULT_BLOCKING_MAX_CONNECTIONS,
    DEFAULT_CONNECTION_OPTIONS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SENTINEL_PORT,
    ClusterSettings,
    ConnectionSettings,
    SentinelSettings,
    ServerConfig,
    Settings,
    freeze,
)

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


def parse_connection_settings(
    location: str | Iterable[str],
    options: Mapping[str, Any] | None,
    *,
    setting: str,
    component_options: frozenset[str] = frozenset(),
) -> Settings:
    """Validate LOCATION + OPTIONS and return the complete connection settings.

    Uppercase OPTIONS in ``component_options`` belong to the calling component (which reads
    them itself); every other key must be a connection option. ``setting`` names where
    the OPTIONS came from (``"CACHES['default']['OPTIONS']"``) so every error can point at
    the exact place to fix.
    """
    options = dict(options or {})
    _check_option_names(options, setting, component_options)
    items = location_items(location)
    kind = _topology_kind(items, options, setting)
    server = _ServerFactory(
        pool_class=resolve_pool_class(options, kind, setting),
        client_class=_client_class(options, kind, setting),
        client_kwargs=checked_client_kwargs(options, kind, setting),
        explicit=_explicit_kwargs(options, setting),
        setting=setting,
    )
    read_from_replicas = option_bool(options, "READ_FROM_REPLICAS", setting)
    if kind == "sentinel":
        return _sentinel_settings(items, options, server, read_from_replicas, setting)
    if kind == "cluster":
        if read_from_replicas:
            raise ImproperlyConfigured(
                f"{setting}['READ_FROM_REPLICAS']: in a Redis Cluster djredis reads from the "
                "primaries (a replica answers with MOVED unless every connection says "
                "READONLY); remove the option."
            )
        return _cluster_settings(items, server.client_class, server.client_kwargs, server, setting)
    servers = [server(url_kwargs) for url_kwargs in parse_locations(items)]
    return ConnectionSettings(
        primary=servers[0],
        replicas=tuple(servers[1:]),
        read_from_replicas=True if read_from_replicas is None else read_from_replicas,
    )


def _check_option_names(
    options: Mapping[str, Any], setting: str, component_options: frozenset[str]
) -> None:
    """Reject django-redis options djredis does not take, and unknown uppercase ones."""
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


def _client_class(options: Mapping[str, Any], kind: str, setting: str) -> type[Any]:
    """Return REDIS_CLIENT_CLASS (redis-py's Redis, or RedisCluster for a Cluster)."""
    default_client = "redis.cluster.RedisCluster" if kind == "cluster" else "redis.client.Redis"
    client_class = import_setting(
        options.get("REDIS_CLIENT_CLASS", default_client), f"{setting}['REDIS_CLIENT_CLASS']"
    )
    expected_client = RedisCluster if kind == "cluster" else Redis
    if not (isinstance(client_class, type) and issubclass(client_class, expected_client)):
        raise ImproperlyConfigured(
            f"{setting}['REDIS_CLIENT_CLASS'] must be a {expected_client.__module__}."
            f"{expected_client.__qualname__} subclass here, got {client_class!r}."
        )
    result: type[Any] = client_class
    return result


# A connection argument's value and where it was set (``[...]`` after the setting's name).
Explicit = dict[str, tuple[Any, str]]


def _explicit_kwargs(options: Mapping[str, Any], setting: str) -> Explicit:
    """Gather the connection arguments from every place users put them in OPTIONS.

    The same knob given twice with different values is an error rather than a silent
    precedence rule; each remembers where it was set, for error messages.
    """
    explicit: Explicit = {}

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
    return explicit


@dataclass(frozen=True)
class _ServerFactory:
    """Build the ``ServerConfig`` of one server named in LOCATION (or found by Sentinel or
    Cluster) from its URL's arguments and the OPTIONS every server shares."""

    pool_class: type[ConnectionPool]
    client_class: type[Any]
    client_kwargs: dict[str, Any]
    explicit: Explicit
    setting: str

    def __call__(self, url_kwargs: dict[str, Any], client: type[Any] | None = None) -> ServerConfig:
        url_kwargs = dict(url_kwargs)
        connection_class = url_kwargs.pop("connection_class")
        merged: dict[str, Any] = dict(DEFAULT_CONNECTION_OPTIONS)
        sources: dict[str, str] = {}
        for name, value in url_kwargs.items():
            if name in self.explicit and self.explicit[name][0] != value:
                raise ImproperlyConfigured(
                    f"{self.setting}: {name!r} is {value!r} in LOCATION but "
                    f"{self.explicit[name][0]!r} in {self.setting}{self.explicit[name][1]}."
                )
            merged[name] = value
            sources[name] = f"LOCATION's query option {name!r}"
        for name, (value, source) in self.explicit.items():
            merged[name] = value
            sources[name] = f"{self.setting}{source}"
        return _server(
            connection_class,
            self.pool_class,
            client or self.client_class,
            self.client_kwargs,
            merged,
            self.setting,
            sources,
        )


def _topology_kind(items: list[str], options: Mapping[str, Any], setting: str) -> str:
    """Return "standalone", "sentinel" or "cluster" and reject contradictory settings."""
    multi = [multi_host_scheme(item) for item in items]
    cluster_option = option_bool(options, "CLUSTER", setting)
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
    if multi_host_scheme(items[0]) is not None:
        parsed = merge_multi_host(items)
        service, hosts, tls = parsed.service or "", parsed.hosts, parsed.tls
        node_kwargs = dict(parsed.kwargs)
        replica_reads = read_from_replicas
    else:
        # django-redis: LOCATION 'redis://<service>/<db>' (several with ?is_master=0|1),
        # the Sentinels in OPTIONS['SENTINELS'].
        hosts = _sentinel_hosts(options["SENTINELS"], setting)
        urls = [parse_one(item) for item in items]
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
            hosts.append(host_port(where, entry, DEFAULT_SENTINEL_PORT))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            hosts.append((str(entry[0]), port_number(where, str(entry[1]))))
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
    if multi_host_scheme(items[0]) is not None:
        parsed = merge_multi_host(items)
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
        client_kwargs=tuple(sorted((k, freeze(v)) for k, v in client_kwargs.items())),
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
    accepted = init_parameters(connection_class) | init_parameters(pool_class)
    accepted -= {"connection_class", "connection_kwargs"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        known_anywhere = set().union(*(init_parameters(c) for c in _CONNECTION_CLASSES))
        hint = (
            " (it only applies to another kind of connection, e.g. ssl_* needs rediss://)"
            if set(unknown) <= known_anywhere
            else ""
        )
        raise ImproperlyConfigured(
            f"{setting}: unknown connection option(s) {', '.join(map(repr, unknown))}{hint}. "
            f"Accepted by {connection_class.__name__}/{pool_class.__name__}: "
            f"{', '.join(sorted(accepted - set(UNSUPPORTED_KWARGS) - REDIS_PY_INTERNAL))}."
        )
    check_timeout(kwargs, "socket_timeout", setting)
    check_timeout(kwargs, "socket_connect_timeout", setting)
    check_policy(kwargs, lambda name: (sources or {}).get(name, f"{setting}[{name!r}]"))
    if kwargs.get("max_connections") is None:
        kwargs["max_connections"] = (
            DEFAULT_BLOCKING_MAX_CONNECTIONS
            if pool_class is BlockingConnectionPool
            else DEFAULT_MAX_CONNECTIONS
        )
    frozen = tuple(sorted((k, freeze(v)) for k, v in kwargs.items()))
    originals = {k: v for k, v in kwargs.items() if freeze(v) is not v}
    return ServerConfig(
        connection_class=connection_class,
        pool_class=pool_class,
        client_class=client_class,
        connection_kwargs=frozen,
        client_kwargs=tuple(sorted((k, freeze(v)) for k, v in client_kwargs.items())),
        originals=originals,
    )
