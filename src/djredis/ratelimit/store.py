"""Where decisions are made: the Redis of a djredis cache alias, and what its failures become.

By default the rules use the cache alias ``RATELIMIT_USE_CACHE`` (django-ratelimit's setting,
default ``"default"``), which must be a ``djredis.cache.RedisCache``: its topology (one
server, replicas, Sentinel or Cluster) runs the decision scripts. When Redis cannot be
reached, the rule's ``fail_open`` decides (allow by default), and a log line says so once
per burst.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from django.core.cache import InvalidCacheBackendError, caches
from django.core.exceptions import ImproperlyConfigured

from djredis._core.errors import BurstLogger, ErrorPolicy
from djredis._routing.base import Topology
from djredis.ratelimit.conf import conf, forget

__all__ = ["UNAVAILABLE", "cache_alias", "logger", "topology_for"]

logger = logging.getLogger("djredis.ratelimit")
T = TypeVar("T")
_topologies: dict[str, Topology] = {}
forget(_topologies.clear)


def cache_alias() -> str:
    """Return ``RATELIMIT_USE_CACHE`` (default ``"default"``)."""
    alias: Any = conf().use_cache
    if not isinstance(alias, str):
        raise ImproperlyConfigured(
            f"RATELIMIT_USE_CACHE must be the name of a cache in CACHES, not {alias!r}."
        )
    return alias


def topology_for(alias: str, setting: str = "RATELIMIT_USE_CACHE") -> Topology:
    """Return the topology of the djredis cache ``alias`` (``ImproperlyConfigured`` if none).

    Found once per alias: Django builds a cache object per thread and, under ASGI, per
    request; the topology (its pools, the loop's connections) is shared by all of them.
    """
    topology = _topologies.get(alias)
    if topology is None:
        topology = _topologies[alias] = _find_topology(alias, setting)
    return topology


def _find_topology(alias: str, setting: str) -> Topology:
    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        raise ImproperlyConfigured(
            f"{setting} = {alias!r}, but CACHES has no cache of that name."
        ) from None
    topology = getattr(cache, "topology", None)
    if not isinstance(topology, Topology):
        raise ImproperlyConfigured(
            f"{setting} = {alias!r} names a {type(cache).__module__}.{type(cache).__name__}; "
            "rate limiting needs a 'djredis.cache.RedisCache' (its Redis runs the decisions)."
        )
    return topology


class _Unavailable(ErrorPolicy):
    """Turn a connection or timeout error into "no decision" (the rule then fails open or
    closed) and log the first of each burst."""

    def __init__(self) -> None:
        super().__init__(ignore=True, logger=logger, where="RATELIMIT_USE_CACHE")
        self._log = BurstLogger(logger)

    def handle(self, exc: Exception, operation: str, fallback: T) -> T:
        self._log.log(
            logging.WARNING,
            "djredis.ratelimit: Redis is unavailable (%s: %s); %s",
            type(exc).__name__,
            exc,
            operation,
        )
        return fallback


UNAVAILABLE = _Unavailable()
