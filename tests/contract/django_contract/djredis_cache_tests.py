"""Django's BaseCacheTests against djredis.cache.RedisCache.

Copied at run time into Django's test tree as ``cache/djredis_cache_tests.py`` (it imports
``cache.tests`` relatively, so it only works there) and run by Django's runtests.py with
the label ``cache.djredis_cache_tests``.

Declared like Django's own ``RedisCacheTests`` in ``cache/tests.py``, except:

- ``incr_decr_type_error`` keeps BaseCacheTests' default, ``TypeError``: djredis adds to
  a non-integer value in Python as the non-Redis backends do, so ``incr`` on a stored
  ``None`` raises ``TypeError`` (Django's builtin Redis backend lets Redis' INCRBY fail
  with ``redis.ResponseError`` instead).
- The tests RedisCacheTests adds beyond BaseCacheTests are not ported: each one inspects
  the builtin backend's internals, which djredis does not have (``RedisCacheClient``,
  ``cache._class``/``cache._cache``, ``_get_connection_pool[_index]``, its serializer,
  the private ``get_backend_timeout`` helper); the list, with reasons, is in ``_harness.py``.
- The ``cull``/``zero_cull`` aliases are excluded exactly as for Django's Redis backend
  (``redis_excluded_caches``): djredis rejects MAX_ENTRIES/CULL_FREQUENCY because Redis
  evicts by its own policy. BaseCacheTests then skips its three culling tests itself
  ("Culling isn't implemented.").
"""

from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import TestCase, override_settings

from djredis.cache import RedisCache

from .tests import BaseCacheTests, caches_setting_for_tests, redis_excluded_caches

DJREDIS_BACKEND = "djredis.cache.RedisCache"
djredis_params = settings.CACHES["default"]
if djredis_params.get("BACKEND") != DJREDIS_BACKEND:
    raise RuntimeError(f"CACHES['default'] must use {DJREDIS_BACKEND}: {djredis_params!r}")


@override_settings(
    CACHES=caches_setting_for_tests(
        base=djredis_params,
        exclude=redis_excluded_caches,
    )
)
class DjredisCacheTests(BaseCacheTests, TestCase):
    pass


class ThroughAsyncAPI(RedisCache):
    """djredis with ``set``/``get`` answered by its native ``aset``/``aget``, each run in an
    event loop (as an async view would), so Django's tests exercise the ``a*`` API."""

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return async_to_sync(self.aset)(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return async_to_sync(self.aget)(*args, **kwargs)


# Pickling a lazy QuerySet queries the database, which Django forbids inside an event
# loop: djredis then encodes in a thread (see djredis.cache.base._arun_encoding).
ASYNC_API_TESTS = (
    "test_cache_write_for_model_instance_with_deferred",
    "test_cache_read_for_model_instance_with_deferred",
)


@override_settings(
    CACHES=caches_setting_for_tests(
        base={**djredis_params, "BACKEND": f"{__name__}.ThroughAsyncAPI"},
        exclude=redis_excluded_caches,
    )
)
class DjredisAsyncApiModelTests(TestCase):
    """Django's tests of caching model instances with deferred fields, via the a* API."""

    test_cache_write_for_model_instance_with_deferred = (
        BaseCacheTests.test_cache_write_for_model_instance_with_deferred
    )
    test_cache_read_for_model_instance_with_deferred = (
        BaseCacheTests.test_cache_read_for_model_instance_with_deferred
    )
