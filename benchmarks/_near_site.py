"""A tiny Django ASGI site for ``benchmarks.near_cache``: an async view reading 5 hot keys.

Configured from the environment (one uvicorn process per contender):
``DJREDIS_BENCH_NEAR`` is ``near`` (djredis with ``NEAR_CACHE``), ``plain`` (djredis
without) or ``none`` (no cache: the ceiling); ``DJREDIS_BENCH_REDIS`` is the server URL.
Views: ``/five/`` awaits five ``cache.aget`` of hot keys; ``/plain/`` touches no cache.
"""

from __future__ import annotations

import json
import os

from benchmarks._sites import DUMMY_CACHE, configure, redis_cache

KEYS = ["site", "flags", "menu", "footer", "settings"]
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}

_mode = os.environ.get("DJREDIS_BENCH_NEAR", "near")
if _mode == "none":
    configure(__name__, DUMMY_CACHE)
else:
    location = os.environ["DJREDIS_BENCH_REDIS"]
    options = {"NEAR_CACHE": True} if _mode == "near" else {}
    configure(__name__, redis_cache("djredis.cache.RedisCache", location, "near-site", options))

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


async def five(request: HttpRequest) -> HttpResponse:
    """Await five hot cache reads."""
    found = 0
    for key in KEYS:
        found += await cache.aget(key) is not None
    return HttpResponse(str(found))


async def plain(request: HttpRequest) -> HttpResponse:
    """Touch no cache: Django's own request handling, the ceiling."""
    return HttpResponse("5")


async def stats(request: HttpRequest) -> HttpResponse:
    """The near-cache's counters, for the benchmark's report."""
    return HttpResponse(json.dumps(getattr(cache, "near_stats", lambda: None)()))


urlpatterns = [path("five/", five), path("plain/", plain), path("stats/", stats)]

if _mode != "none":
    cache.set_many(dict.fromkeys(KEYS, VALUE), None)
application = get_asgi_application()
