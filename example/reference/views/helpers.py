"""The cache helpers: memoize with stampede protection, and a page cached per user."""

from __future__ import annotations

import asyncio
import time

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from djredis import get_async_redis_connection
from djredis.cache import memoize
from djredis.views import cache_page_per_user

from ._common import now, render_demo, slow_work
from .caching import PAGE_SECONDS, show_cache_source

CALLS = 50
RUNS_KEY = "example:memoize:runs"


@memoize(30)
async def slow_report() -> str:
    """Build a report slowly (0.3 s), counting each real run in Redis."""
    await get_async_redis_connection("default").incr(RUNS_KEY)
    await asyncio.sleep(0.3)
    return f"report built at {now()}"


async def memoize_demo(request: HttpRequest) -> HttpResponse:
    """Expire the memoized report, then call it 50 times at once; count the real runs."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user

    request.user = await sync_to_async(get_user)(request)
    redis_conn = get_async_redis_connection("default")
    await slow_report.ainvalidate()
    before = int(await redis_conn.get(RUNS_KEY) or 0)
    started = time.perf_counter()
    results = await asyncio.gather(*(slow_report() for _ in range(CALLS)))
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    runs = int(await redis_conn.get(RUNS_KEY) or 0) - before
    context = {
        "calls": CALLS,
        "runs": runs,
        "distinct": len(set(results)),
        "result": results[0],
        "elapsed_ms": elapsed_ms,
    }
    return render_demo(
        request,
        "reference/memoize.html",
        context,
        guide="Custom Cache Key Generation (cached_function) > djredis.cache.memoize",
        code=[slow_report, memoize_demo],
    )


# never_cache outside, as on the cache_page demo: the browser asks every time.
@show_cache_source
@never_cache
@cache_page_per_user(PAGE_SECONDS)
def per_user_demo(request: HttpRequest) -> HttpResponse:
    """A slow page cached once per user (and once for all anonymous visitors)."""
    request.view_body_ran = True  # type: ignore[attr-defined]
    slow_work()
    context = {"rendered_at": now(), "seconds": PAGE_SECONDS}
    return render_demo(
        request,
        "reference/per_user.html",
        context,
        guide="Cache Decorators for Views (Per-user caching) > cache_page_per_user",
        code=[per_user_demo],
    )
