"""An async view on the a* cache API: no thread, several commands in flight at once."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect

from ._common import now, render_demo

ASYNC_KEYS = [f"async:item:{n}" for n in range(5)]


async def _slow_item(n: int) -> str:
    """Build one item slowly (0.2 s): an awaited call to some other service."""
    await asyncio.sleep(0.2)
    return f"item {n} built at {now()}"


async def _async_work() -> dict[str, Any]:
    """Fetch five items through the cache concurrently, building the missing ones."""
    started = time.perf_counter()
    cached = await cache.aget_many(ASYNC_KEYS)
    missing = [key for key in ASYNC_KEYS if key not in cached]
    # The missing items are built concurrently: five 0.2 s builds take 0.2 s, not 1 s.
    built = await asyncio.gather(*(_slow_item(ASYNC_KEYS.index(key)) for key in missing))
    await cache.aset_many(dict(zip(missing, built, strict=True)), timeout=30)
    visits = await cache.aget_or_set("async:visits", 0, timeout=None)
    visits = await cache.aincr("async:visits")
    return {
        "items": [cached.get(key) or built[missing.index(key)] for key in ASYNC_KEYS],
        "hits": len(cached),
        "misses": len(missing),
        "visits": visits,
        "elapsed_ms": round((time.perf_counter() - started) * 1000),
        "thread": threading.current_thread().name,
    }


async def async_demo(request: HttpRequest) -> HttpResponse:
    """Run the async cache calls; show what came from Redis and how long it took."""
    # The auth context processor reads request.user; resolve it here, in a thread, rather
    # than letting the template query the database from async code (Django >= 5.0 also has
    # ``await request.auser()``).
    request.user = await sync_to_async(get_user)(request)
    context = await _async_work()
    return render_demo(
        request,
        "reference/async.html",
        context,
        guide="Native async: the a* cache API in async views",
        code=[_async_work, async_demo],
    )


async def async_clear(request: HttpRequest) -> HttpResponse:
    """Delete the async demo's items so the next visit builds them again (POST only)."""
    # Checked here: Django < 5.0's require_POST cannot wrap an async view.
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    await cache.adelete_many(ASYNC_KEYS)
    return redirect("async")
