"""Expose the redis-py clients behind a cache, the way django-redis code reaches them.

``cache.client.get_client(write=True)`` and ``djredis.get_redis_connection()`` return the
process-wide redis-py client of the primary (``write=True``) or of a read replica; with
Sentinel, redis-py's Sentinel-managed client (it follows failovers); with Redis Cluster,
redis-py's ``RedisCluster``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import Redis as AsyncRedis
from redis.client import Redis

from djredis._io.loops import loop_state
from djredis._routing.base import Topology

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
        "client-side sharding over independent servers is not supported: data that "
        "outgrows one server belongs in Redis Cluster, which djredis supports "
        "(LOCATION 'redis+cluster://host:7000'; docs/topologies.md has the migration path)"
    ),
}
_SENTINEL_CLIENT = "django_redis.client.SentinelClient"


class CacheClient:
    """Give access to the redis-py clients of one cache (``cache.client``)."""

    def __init__(self, group: Topology) -> None:
        self._group = group

    def get_client(self, write: bool = True, *, key: str | None = None) -> Redis:
        """Return the client of the primary (``write=True``) or of a read replica.

        ``key`` is accepted for Django's ``get_client(key=None, *, write=False)`` signature
        and needs no use: with one primary every key lives there, and with Redis Cluster the
        client is a ``redis.cluster.RedisCluster``, which routes each command by its key.
        """
        client: Redis = self._group.client(write)
        return client

    def get_async_client(self, write: bool = True) -> AsyncRedis:
        """Return the running event loop's ``redis.asyncio`` client (primary or replica)."""
        client: AsyncRedis = self._group.async_client(write, loop_state())
        return client


def check_client_class(spec: Any, setting: str, *, sentinel: bool = False) -> None:
    """Accept django-redis's DefaultClient (or ours), and its SentinelClient when the
    settings name Sentinels; explain what to use for the others."""
    if spec is None or spec is CacheClient:
        return
    path = spec if isinstance(spec, str) else f"{spec.__module__}.{spec.__qualname__}"
    path = path.replace("django_redis.client.herd.", "django_redis.client.")
    path = path.replace("django_redis.client.sharded.", "django_redis.client.")
    path = path.replace("django_redis.client.sentinel.", "django_redis.client.")
    if path in _DEFAULT_CLIENTS or path in ("djredis.client.CacheClient",):
        return
    if path.startswith(_SENTINEL_CLIENT):
        if sentinel:
            return
        raise ImproperlyConfigured(
            f"{setting} = {spec!r} needs Sentinels: add OPTIONS['SENTINELS'] (with LOCATION "
            "'redis://<service>/<db>') or use LOCATION "
            "'redis+sentinel://host1:26379,host2:26379/<service>/<db>' and drop CLIENT_CLASS."
        )
    for unsupported, advice in _UNSUPPORTED_CLIENTS.items():
        if path.startswith(unsupported):
            raise ImproperlyConfigured(f"{setting} = {spec!r}: {advice}.")
    raise ImproperlyConfigured(
        f"{setting} = {spec!r} is not supported. djredis accepts "
        "'django_redis.client.DefaultClient' (its default client does the same job) or no "
        "CLIENT_CLASS at all."
    )
