"""djredis: Redis for Django — cache, sessions, rate limiting and channels on one connection layer.

Public API: ``get_redis_connection`` and ``__version__``; the components are reached by
their settings paths (``djredis.cache.RedisCache``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis
    from redis.client import Redis

    from djredis.cache import RedisCache

__all__ = ["__version__", "get_async_redis_connection", "get_redis_connection"]

__version__ = "0.1.0.dev0"


def _djredis_cache(alias: str) -> RedisCache:
    from django.core.cache import caches

    from djredis.cache import RedisCache

    backend = caches[alias]
    if not isinstance(backend, RedisCache):
        raise NotImplementedError(
            f"CACHES[{alias!r}] uses {type(backend).__module__}.{type(backend).__qualname__}; "
            "get_redis_connection() needs 'BACKEND': 'djredis.cache.RedisCache'."
        )
    return backend


def get_redis_connection(alias: str = "default", write: bool = True) -> Redis:
    """Return the redis-py client behind the djredis cache ``alias``.

    ``write=True`` gives the primary; ``write=False`` a read replica when LOCATION lists
    some. Same name and arguments as ``django_redis.get_redis_connection``.
    """
    return _djredis_cache(alias).client.get_client(write=write)


def get_async_redis_connection(alias: str = "default", write: bool = True) -> AsyncRedis:
    """Return a ``redis.asyncio`` client for the djredis cache ``alias``, bound to the
    running event loop (call it from a coroutine).

    It has its own connection pool, separate from the connection the cache multiplexes its
    own commands on, so pub/sub, blocking commands and WATCH transactions are safe on it.
    It is closed when the event loop shuts down.
    """
    return _djredis_cache(alias).client.get_async_client(write=write)
