"""Build the redis-py clients handed to user code (``get_redis_connection``, locks).

djredis's own commands never use these: they run over ``pool`` and ``multiplex``.
Pools and clients are process-wide and keyed by their full configuration.

A pool is created on first use (never at import or settings time) and shared by every
component whose ``ServerConfig`` is equal, so two cache aliases with the same URL but
different timeouts get two pools, and identical ones share. redis-py pools notice a
``fork()`` (they compare the pid on every checkout) and drop inherited sockets, so a
gunicorn ``--preload`` master that touched the cache hands clean pools to its workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis._parsers import _HiredisParser, _RESP2Parser
from redis.asyncio import connection as aioconnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.client import Redis
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from djredis._config.server import ServerConfig
from djredis._core.once import built_once
from djredis._io.pool import disconnect_pools

__all__ = [
    "async_client",
    "disconnect_idle",
    "get_client",
    "get_pool",
    "get_shared",
    "redis_py_kwargs",
    "resent_errors",
    "reset_pools",
    "retry_policy",
    "sync_kwargs",
]

T = TypeVar("T")

_lock = threading.Lock()
_pools: dict[ServerConfig, ConnectionPool] = {}
_clients: dict[ServerConfig, Redis] = {}
# Other process-wide clients (redis-py's Sentinel and RedisCluster objects handed to user
# code), keyed by the full settings they were built from.
_shared: dict[Hashable, Any] = {}


def retry_policy(config: ServerConfig, *, asyncio: bool = False) -> Retry | AsyncRetry:
    """Return the redis-py ``Retry`` for a client handed to user code, from the same typed
    policy djredis's own connections follow: ``retries`` resends, ``backoff`` between them,
    timeouts only with ``retry_on_timeout`` (redis-py's default backs off for seconds)."""
    backoff = config.backoff or NoBackoff()
    if asyncio:
        return AsyncRetry(backoff, config.retries, supported_errors=resent_errors(config))
    return Retry(backoff, config.retries, supported_errors=resent_errors(config))


def resent_errors(config: ServerConfig) -> tuple[type[RedisError], ...]:
    """The errors a redis-py client for user code retries (its ``retry_on_error`` too:
    redis-py 5 retries nothing that is not listed there, whatever its ``Retry`` says)."""
    if config.retry_on_timeout:
        return (RedisConnectionError, RedisTimeoutError)
    return (RedisConnectionError,)


# The reader a ServerConfig names -> the redis-py parser class of the clients for user code.
_PARSER_CLASSES: dict[str, type] = {"hiredis": _HiredisParser, "python": _RESP2Parser}


def sync_kwargs(config: ServerConfig) -> dict[str, Any]:
    """Return ``config``'s connection arguments as redis-py's sync classes take them (the
    reader named by its redis-py parser class)."""
    kwargs = config.kwargs()
    if config.reader is not None:
        kwargs["parser_class"] = _PARSER_CLASSES[config.reader]
    return kwargs


def _new_pool(config: ServerConfig) -> ConnectionPool:
    kwargs = sync_kwargs(config)
    kwargs.setdefault("retry", retry_policy(config))
    kwargs.setdefault("retry_on_error", list(resent_errors(config)))
    pool: ConnectionPool = config.pool_class(connection_class=config.connection_class, **kwargs)
    return pool


def get_pool(config: ServerConfig) -> ConnectionPool:
    """Return the process-wide pool for ``config``, creating it on first use."""
    pool = _pools.get(config)
    if pool is None:
        pool = built_once(_pools, _lock, config, lambda: _new_pool(config))
    return pool


def get_client(config: ServerConfig) -> Redis:
    """Return the process-wide redis-py client for ``config``."""
    client = _clients.get(config)
    if client is None:
        pool = get_pool(config)
        kwargs: dict[str, Any] = dict(config.client_kwargs)
        client = built_once(
            _clients, _lock, config, lambda: config.client_class(connection_pool=pool, **kwargs)
        )
    return client


def get_shared(key: Hashable, factory: Callable[[], T]) -> T:
    """Return the process-wide object for ``key``, built by ``factory`` on first use."""
    found = _shared.get(key)
    if found is None:
        found = built_once(_shared, _lock, key, factory)
    result: T = found
    return result


def disconnect_idle(configs: Iterable[ServerConfig]) -> None:
    """Close the idle connections of these servers' pools (they reconnect on next use):
    djredis's own and the redis-py ones handed to user code."""
    configs = tuple(configs)
    disconnect_pools(configs)
    for config in configs:
        pool = _pools.get(config)
        if pool is not None:
            pool.disconnect(inuse_connections=False)


def reset_pools() -> None:
    """Disconnect and forget every pool (tests, and ``CLOSE_CONNECTION``-style shutdowns)."""
    with _lock:
        pools = list(_pools.values())
        shared = list(_shared.values())
        _pools.clear()
        _clients.clear()
        _shared.clear()
    for pool in pools:
        pool.disconnect()
    for client in shared:
        close = getattr(client, "close", None)
        if close is not None:
            close()


def redis_py_kwargs(config: ServerConfig) -> dict[str, Any]:
    """Return ``config`` as keyword arguments for redis-py's Sentinel/RedisCluster."""
    kwargs = sync_kwargs(config)
    for name in ("host", "port", "path"):
        kwargs.pop(name, None)
    if config.transport == "tls":
        kwargs["ssl"] = True
    return kwargs


def async_client(config: ServerConfig) -> aioredis.Redis:
    """Return a new ``redis.asyncio`` client for ``config`` (one per event loop: the caller,
    ``djredis._io.loops``, keeps it with the loop's other connections)."""
    kwargs = config.kwargs()
    connection_class: type[Any] = {
        "unix": aioconnection.UnixDomainSocketConnection,
        "tls": aioconnection.SSLConnection,
        "tcp": aioconnection.Connection,
    }[config.transport]
    kwargs.pop("parser_class", None)  # sync parser classes do not fit asyncio connections
    # A sync Retry from OPTIONS would run but never retry here: build the asyncio one.
    kwargs["retry"] = retry_policy(config, asyncio=True)
    kwargs.setdefault("retry_on_error", list(resent_errors(config)))
    if config.blocking_pool:
        pool: aioconnection.ConnectionPool = aioconnection.BlockingConnectionPool(
            connection_class=connection_class, **kwargs
        )
    else:
        pool = aioconnection.ConnectionPool(connection_class=connection_class, **kwargs)
    return aioredis.Redis(connection_pool=pool)
