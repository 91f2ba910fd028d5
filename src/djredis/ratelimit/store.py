"""Where decisions are made: the Redis of a djredis cache alias, and what its failures become.

By default the rules use the cache alias ``RATELIMIT_USE_CACHE`` (django-ratelimit's setting,
default ``"default"``), which must be a ``djredis.cache.RedisCache``: its topology (one
server, replicas, Sentinel or Cluster) runs the decision scripts. An alias missing from
``CACHES`` is ``InvalidCacheBackendError``; Django's ``DummyCache`` (the "cache nothing"
of development and test settings) turns rate limiting off, as it does for django-ratelimit,
with one log line and the system check ``djredis.ratelimit.W002``.

When Redis cannot decide (unreachable, timed out, or an error reply), the rule's
``fail_open`` decides (refuse by default, like django-ratelimit), and a log line says so
once per burst.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.exceptions import ImproperlyConfigured

from djredis._core.errors import CONNECTION_ERRORS, BurstLogger, ErrorPolicy
from djredis._routing.base import Topology
from djredis.ratelimit.conf import conf, forget

__all__ = [
    "RAISE",
    "cache_alias",
    "decision_failed",
    "failures",
    "logger",
    "topology_for",
    "topology_of",
]

logger = logging.getLogger("djredis.ratelimit")
_topologies: dict[str, Topology | None] = {}
forget(_topologies.clear)

# Errors reach the rule (which fails open or closed) instead of becoming a fallback here:
# the rule knows what to say about them, and nothing is formatted on the fast path.
RAISE = ErrorPolicy(ignore=False, logger=logger, where="RATELIMIT_USE_CACHE")
failures = BurstLogger(logger)  # one line per burst of failed decisions


def cache_alias() -> str:
    """Return ``RATELIMIT_USE_CACHE`` (default ``"default"``)."""
    alias: Any = conf().use_cache
    if not isinstance(alias, str):
        raise ImproperlyConfigured(
            f"RATELIMIT_USE_CACHE must be the name of a cache in CACHES, not {alias!r}."
        )
    return alias


def topology_for(alias: str, setting: str = "RATELIMIT_USE_CACHE") -> Topology | None:
    """Return the topology of the djredis cache ``alias``; None for a ``DummyCache``.

    Found once per alias: Django builds a cache object per thread and, under ASGI, per
    request; the topology (its pools, the loop's connections) is shared by all of them.
    """
    try:
        return _topologies[alias]
    except KeyError:
        pass
    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        raise InvalidCacheBackendError(
            f"{setting} = {alias!r}, but CACHES has no cache of that name."
        ) from None
    topology = _topologies[alias] = topology_of(cache, f"{setting} = {alias!r}")
    return topology


def topology_of(cache: Any, where: str) -> Topology | None:
    """Return the topology of a cache object; None (limits off, logged) for a DummyCache."""
    if isinstance(cache, DummyCache):
        logger.warning(
            "djredis.ratelimit: %s is a DummyCache, so rate limits are not enforced "
            "(as with django-ratelimit); name a djredis.cache.RedisCache to enforce them.",
            where,
        )
        return None
    topology = getattr(cache, "topology", None)
    if not isinstance(topology, Topology):
        raise ImproperlyConfigured(
            f"{where} names a {type(cache).__module__}.{type(cache).__name__}; "
            "rate limiting needs a 'djredis.cache.RedisCache' (its Redis runs the decisions)."
        )
    return topology


def decision_failed(exc: Exception, group: str, fails_open: bool) -> None:
    """Log that Redis gave no decision for ``group`` (the first of each burst)."""
    outcome = "open (allowed)" if fails_open else "closed (refused)"
    if isinstance(exc, CONNECTION_ERRORS):
        failures.log(
            logging.WARNING,
            "djredis.ratelimit: Redis is unavailable (%s: %s); rate limit group %r fails %s",
            type(exc).__name__,
            exc,
            group,
            outcome,
        )
    else:  # an error reply (OOM, READONLY, a script error): worth a traceback
        failures.log(
            logging.ERROR,
            "djredis.ratelimit: Redis could not decide (%s: %s); rate limit group %r fails %s",
            type(exc).__name__,
            exc,
            group,
            outcome,
            exc_info=exc,
        )
