"""Expose the redis-py clients behind a cache, the way django-redis code reaches them.

``cache.client.get_client(write=True)`` and ``djredis.get_redis_connection()`` return the
process-wide redis-py client of the primary (``write=True``) or of a read replica.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.client import Redis

from ._connections import ServerGroup

__all__ = ["CacheClient", "check_client_class"]

_DEFAULT_CLIENTS = frozenset(
    {"django_redis.client.DefaultClient", "django_redis.client.default.DefaultClient"}
)
# django-redis client classes djredis does not imitate, and what to do instead.
_UNSUPPORTED_CLIENTS = {
    "django_redis.client.HerdClient": (
        "djredis has no herd client; remove CLIENT_CLASS and guard expensive recomputation "
        "with cache.lock(key) or cache.get_or_set()"
    ),
    "django_redis.client.ShardClient": (
        "client-side sharding is not supported; one Redis, or Redis Cluster for data that "
        "outgrows one server (Cluster support is not in this version of djredis yet)"
    ),
    "django_redis.client.SentinelClient": (
        "Sentinel is not supported by this version of djredis yet"
    ),
}


class CacheClient:
    """Give access to the redis-py clients of one cache (``cache.client``)."""

    def __init__(self, group: ServerGroup) -> None:
        self._group = group

    def get_client(self, write: bool = True, *, key: str | None = None) -> Redis:
        """Return the client of the primary (``write=True``) or of a read replica."""
        return self._group.client(write)


def check_client_class(spec: Any, setting: str) -> None:
    """Accept django-redis's DefaultClient (or ours); explain what to use for the others."""
    if spec is None or spec is CacheClient:
        return
    path = spec if isinstance(spec, str) else f"{spec.__module__}.{spec.__qualname__}"
    path = path.replace("django_redis.client.herd.", "django_redis.client.")
    path = path.replace("django_redis.client.sharded.", "django_redis.client.")
    path = path.replace("django_redis.client.sentinel.", "django_redis.client.")
    if path in _DEFAULT_CLIENTS or path in ("djredis.client.CacheClient",):
        return
    for unsupported, advice in _UNSUPPORTED_CLIENTS.items():
        if path.startswith(unsupported):
            raise ImproperlyConfigured(f"{setting} = {spec!r}: {advice}.")
    raise ImproperlyConfigured(
        f"{setting} = {spec!r} is not supported. djredis accepts "
        "'django_redis.client.DefaultClient' (its default client does the same job) or no "
        "CLIENT_CLASS at all."
    )
