"""A tiny Django ASGI site for ``benchmarks.async_cache`` and ``benchmarks.near_cache_views``:
async views reading the cache.

Configured from the environment by the benchmark (one uvicorn process per contender):
``DJREDIS_BENCH_BACKEND`` is ``djredis``, ``djredis-near`` (djredis with ``NEAR_CACHE``),
``django-redis``, ``builtin`` or ``none``, and ``DJREDIS_BENCH_REDIS`` the server URL.
Views: ``/three/`` awaits three ``cache.aget``, ``/many/`` one ``cache.aget_many`` of 20
keys, ``/plain/`` touches no cache (the ceiling). Keys are prefixed ``bench-<backend>``.
"""

from __future__ import annotations

import os

from benchmarks._sites import DUMMY_CACHE, configure, redis_cache

BACKENDS = {
    "djredis": ("djredis.cache.RedisCache", {}),
    "djredis-near": ("djredis.cache.RedisCache", {"NEAR_CACHE": True}),
    "django-redis": ("django_redis.cache.RedisCache", {}),
    "builtin": ("django.core.cache.backends.redis.RedisCache", {}),
}
KEYS = [f"bench:{i}" for i in range(20)]
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}

_backend = os.environ.get("DJREDIS_BENCH_BACKEND", "djredis")
if _backend == "none":
    configure(__name__, DUMMY_CACHE)
else:
    _class, _options = BACKENDS[_backend]
    location = os.environ["DJREDIS_BENCH_REDIS"]
    configure(__name__, redis_cache(_class, location, f"bench-{_backend}", _options))

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


async def three(request: HttpRequest) -> HttpResponse:
    """Await three cache reads."""
    values = [await cache.aget(KEYS[0]), await cache.aget(KEYS[1]), await cache.aget(KEYS[2])]
    return HttpResponse(str(len([v for v in values if v is not None])))


async def many(request: HttpRequest) -> HttpResponse:
    """Await one 20-key cache read."""
    return HttpResponse(str(len(await cache.aget_many(KEYS))))


async def plain(request: HttpRequest) -> HttpResponse:
    """Touch no cache: Django's own request handling, the ceiling."""
    return HttpResponse("20")


urlpatterns = [path("three/", three), path("many/", many), path("plain/", plain)]

if _backend != "none":
    cache.set_many(dict.fromkeys(KEYS, VALUE), None)
application = get_asgi_application()
