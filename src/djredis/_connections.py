"""Hold process-wide connection pools and clients, keyed by their full configuration.

A pool is created on first use (never at import or settings time) and shared by every
component whose ``ServerConfig`` is equal, so two cache aliases with the same URL but
different timeouts get two pools, and identical ones share. redis-py pools notice a
``fork()`` (they compare the pid on every checkout) and drop inherited sockets, so a
gunicorn ``--preload`` master that touched the cache hands clean pools to its workers.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from redis.backoff import NoBackoff
from redis.client import Redis
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from ._config import DEFAULT_RETRIES, ConnectionSettings, ServerConfig

__all__ = ["ServerGroup", "get_client", "get_pool", "reset_pools"]

_lock = threading.Lock()
_pools: dict[ServerConfig, ConnectionPool] = {}
_clients: dict[ServerConfig, Redis] = {}


def _new_pool(config: ServerConfig) -> ConnectionPool:
    kwargs = config.kwargs()
    if "retry" not in kwargs:
        # Only connection errors are retried by default; redis-py adds TimeoutError itself
        # when retry_on_timeout=True (RETRY_ON_TIMEOUT).
        kwargs["retry"] = Retry(
            NoBackoff(), DEFAULT_RETRIES, supported_errors=(RedisConnectionError,)
        )
    pool: ConnectionPool = config.pool_class(connection_class=config.connection_class, **kwargs)
    return pool


def get_pool(config: ServerConfig) -> ConnectionPool:
    """Return the process-wide pool for ``config``, creating it on first use."""
    pool = _pools.get(config)
    if pool is None:
        with _lock:
            pool = _pools.get(config)
            if pool is None:
                pool = _pools[config] = _new_pool(config)
    return pool


def get_client(config: ServerConfig) -> Redis:
    """Return the process-wide redis-py client for ``config``."""
    client = _clients.get(config)
    if client is None:
        pool = get_pool(config)
        with _lock:
            client = _clients.get(config)
            if client is None:
                kwargs: dict[str, Any] = dict(config.client_kwargs)
                client = _clients[config] = config.client_class(connection_pool=pool, **kwargs)
    return client


def reset_pools() -> None:
    """Disconnect and forget every pool (tests, and ``CLOSE_CONNECTION``-style shutdowns)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
        _clients.clear()
    for pool in pools:
        pool.disconnect()


class ServerGroup:
    """A primary and its read replicas: routes each command to the right server."""

    __slots__ = ("_settings", "primary", "replicas")

    def __init__(self, settings: ConnectionSettings) -> None:
        self._settings = settings
        self.primary = settings.primary
        self.replicas = settings.replicas

    def config(self, write: bool = True) -> ServerConfig:
        """Return the server for writes (the primary) or for reads (a random replica)."""
        if write or not self.replicas:
            return self.primary
        return random.choice(self.replicas)

    def client(self, write: bool = True) -> Redis:
        """Return the sync client for writes (the primary) or for reads (a replica)."""
        return get_client(self.config(write))

    def all_configs(self) -> tuple[ServerConfig, ...]:
        """Return the primary followed by every replica."""
        return (self.primary, *self.replicas)

    def disconnect(self) -> None:
        """Close the idle connections of this group's pools (they reconnect on next use)."""
        for config in self.all_configs():
            pool = _pools.get(config)
            if pool is not None:
                pool.disconnect(inuse_connections=False)
