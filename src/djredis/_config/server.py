"""The typed description of one Redis server, and of the topologies made of them.

``ServerConfig`` is what every connection is built from: djredis's own (the sync pool, the
multiplexed connection, dedicated connections) read its typed policy fields, and the
redis-py clients handed to user code get its keyword arguments. Two components share a pool
exactly when their ``ServerConfig`` objects are equal: the whole configuration is the key.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from redis.backoff import AbstractBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# Defaults chosen for a cache that sits on the request path (docs/cache.md: "Connection defaults").
# redis-py 8 waits 5 s for a socket, retries 10 times with backoff, negotiates RESP3 (one
# more round trip per new connection, plus maintenance-notification handshakes) and caps a
# pool at 100 connections. A cache must fail fast instead: a slow cache is worse than none.
DEFAULT_CONNECTION_OPTIONS: Mapping[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "protocol": 2,
}

__all__ = [
    "DEFAULT_CONNECTION_OPTIONS",
    "ClusterSettings",
    "ConnectionSettings",
    "SentinelSettings",
    "ServerConfig",
    "Settings",
    "Transport",
    "tls_context",
]


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


# How djredis's connections reach a server: a TCP socket, a Unix socket, or TLS over TCP.
Transport = Literal["tcp", "unix", "tls"]


# What a resend may follow: the one resend rule (``djredis._core.errors.may_resend``) covers
# connection errors, and timeouts when retry_on_timeout is on; no other error is ever resent.
TIMEOUT_ERRORS: tuple[type[Exception], ...] = (RedisTimeoutError, TimeoutError)


def freeze(value: Any) -> Any:
    """Return a hashable stand-in for an option value, so settings can key a pool."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
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
    # "hiredis", "python", or None: the RESP reader (None: hiredis when installed). The
    # checked settings hold the reader's name as ``parser_class``; the redis-py clients get
    # the matching parser class from ``djredis._io.bridge``.
    reader: str | None = field(init=False, repr=False, compare=False)
    # djredis-native facts about the connection, computed here once so that nothing below
    # the configuration reads redis-py's classes: how to reach the server, and whether a
    # pool at ``max_connections`` makes callers wait (BlockingConnectionPool) or refuses.
    transport: Transport = field(init=False, repr=False, compare=False)
    blocking_pool: bool = field(init=False, repr=False, compare=False)

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
            "reader": kw.get("parser_class"),
            "transport": _transport(self.connection_class),
            "blocking_pool": issubclass(self.pool_class, BlockingConnectionPool),
        }
        for name, value in policy.items():
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:
        return self._hash

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a ``tls`` transport (built once, from the ``ssl_*`` settings,
        as redis-py's SSLConnection builds it), or None."""
        if self.transport != "tls":
            return None
        return tls_context(self.kwargs())

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


def _transport(connection_class: type[AbstractConnection]) -> Transport:
    if issubclass(connection_class, UnixDomainSocketConnection):
        return "unix"
    return "tls" if issubclass(connection_class, SSLConnection) else "tcp"


def tls_context(kwargs: Mapping[str, Any]) -> ssl.SSLContext:
    """Build the TLS context redis-py's SSLConnection would build from the same kwargs."""
    context = ssl.create_default_context(
        cafile=kwargs.get("ssl_ca_certs"),
        capath=kwargs.get("ssl_ca_path"),
        cadata=kwargs.get("ssl_ca_data"),
    )
    reqs = kwargs.get("ssl_cert_reqs", "required")
    if isinstance(reqs, str):
        reqs = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(
            reqs.lower(), ssl.CERT_REQUIRED
        )
    context.check_hostname = bool(kwargs.get("ssl_check_hostname", True)) and (
        reqs != ssl.CERT_NONE
    )
    context.verify_mode = reqs
    if kwargs.get("ssl_certfile"):
        context.load_cert_chain(
            kwargs["ssl_certfile"], kwargs.get("ssl_keyfile"), kwargs.get("ssl_password")
        )
    if kwargs.get("ssl_min_version") is not None:
        context.minimum_version = kwargs["ssl_min_version"]
    if kwargs.get("ssl_ciphers"):
        context.set_ciphers(kwargs["ssl_ciphers"])
    return context


def _names_timeouts(errors: Iterable[Any]) -> bool:
    return any(isinstance(e, type) and issubclass(e, TIMEOUT_ERRORS) for e in errors)
