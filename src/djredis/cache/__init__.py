"""The Django cache backend: ``CACHES = {"default": {"BACKEND": "djredis.cache.RedisCache"}}``.

Also ``memoize`` (cache a function's results, protected against stampedes) and
``Stampede`` (how a recomputation is protected).
"""

from djredis.cache.backend import RedisCache
from djredis.cache.memoize import memoize
from djredis.cache.stampede import RecomputeError, Stampede

__all__ = ["RecomputeError", "RedisCache", "Stampede", "memoize"]
