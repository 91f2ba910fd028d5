"""A tiny Django ASGI site for ``benchmarks.ratelimit``: one async view, limited or not.

``DJREDIS_BENCH_REDIS`` is the server URL; ``DJREDIS_BENCH_ALGORITHM`` the algorithm of the
limited view. ``/limited/`` is behind ``@ratelimit(key="ip", rate=...)`` with a rate no
benchmark reaches (every request is decided, none refused), ``/plain/`` is the same view
without it.
"""

from __future__ import annotations

import os

from benchmarks._sites import configure, redis_cache

location = os.environ["DJREDIS_BENCH_REDIS"]
configure(__name__, redis_cache("djredis.cache.RedisCache", location), RATELIMIT_HEADERS=True)

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from djredis.ratelimit import ratelimit  # noqa: E402

RATE = (10**9, 3600)
ALGORITHM = os.environ.get("DJREDIS_BENCH_ALGORITHM", "gcra")


async def plain(request: HttpRequest) -> HttpResponse:
    """The view, unlimited: the ceiling."""
    return HttpResponse("ok")


limited = ratelimit(key="ip", rate=RATE, algorithm=ALGORITHM, group="bench")(plain)

urlpatterns = [path("limited/", limited), path("plain/", plain)]

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
