"""A tiny Django ASGI site for ``benchmarks.near_cache_views``: the ``aget_many(20)`` and
three-``aget`` views of ``benchmarks._async_site``, on a djredis cache with or without the
near-cache (``DJREDIS_BENCH_NEAR`` = ``1`` or ``0``; ``DJREDIS_BENCH_REDIS`` the server)."""

from __future__ import annotations

import os

import django
from django.conf import settings

KEYS = [f"bench:{i}" for i in range(20)]
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}
NEAR = os.environ.get("DJREDIS_BENCH_NEAR") == "1"

settings.configure(
    DEBUG=False,
    SECRET_KEY="benchmark",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES={
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": os.environ["DJREDIS_BENCH_REDIS"],
            "KEY_PREFIX": "bench-near",
            "OPTIONS": {"NEAR_CACHE": True} if NEAR else {},
        }
    },
    USE_TZ=True,
)
django.setup()

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


urlpatterns = [path("three/", three), path("many/", many)]

cache.set_many(dict.fromkeys(KEYS, VALUE), None)
application = get_asgi_application()
