"""The Django cache backend: ``CACHES = {"default": {"BACKEND": "djredis.cache.RedisCache"}}``."""

from djredis.cache.backend import RedisCache

__all__ = ["RedisCache"]
