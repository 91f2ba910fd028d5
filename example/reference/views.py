"""Demo pages: each shows one way of using djredis from a Django project."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.core.cache.utils import make_template_fragment_key
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_page
from django.views.decorators.http import require_POST

from djredis import get_redis_connection

DEMOS = [
    ("cache-page", "Per-view caching", "cache_page: the whole response is stored in Redis."),
    ("fragment", "Template fragment caching", "{% cache %}: one block of a page is stored."),
    ("counter", "Low-level cache API", "cache.incr on a counter, with its TTL from cache.ttl."),
    ("leaderboard", "Direct Redis access", "get_redis_connection and a sorted set."),
]

PAGE_SECONDS = 30
FRAGMENT_SECONDS = 60
FRAGMENT_NAME = "demo_fragment"
COUNTER_KEY = "demo:counter"
COUNTER_SECONDS = 60
# Keys written through the raw redis-py client get no KEY_PREFIX: name them yourself.
LEADERBOARD_KEY = "example:leaderboard"
SOURCE_MARK = b"<!--page-source-->"
NOW_MARK = b"<!--now-->"


def _now() -> str:
    """Return the current time as HH:MM:SS.mmm (UTC)."""
    return datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _slow_work(seconds: float = 0.4) -> None:
    """Pretend to run an expensive query."""
    time.sleep(seconds)


def home(request: HttpRequest) -> HttpResponse:
    """List the demos and the Redis the site talks to."""
    info = get_redis_connection("default").info("server")
    context = {
        "demos": DEMOS,
        "redis_url": settings.CACHES["default"]["LOCATION"],
        "redis_version": info.get("redis_version", "?"),
    }
    return render(request, "reference/home.html", context)


# -- per-view caching --------------------------------------------------------------------


def show_cache_source(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Fill in the status line and the clock of a cached page, outside the cache.

    The inner view marks the request when its body runs. When it did not run, the response
    came out of Redis. The stored copy keeps the placeholders, so every response says how
    it was made this time.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.view_body_ran = False  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        fresh = request.view_body_ran  # type: ignore[attr-defined]
        status = b"Freshly rendered (cache miss)" if fresh else b"Served from cache"
        response.content = response.content.replace(SOURCE_MARK, status).replace(
            NOW_MARK, _now().encode()
        )
        return response

    return wrapper


@show_cache_source
@cache_page(PAGE_SECONDS)
def cache_page_demo(request: HttpRequest) -> HttpResponse:
    """Render a slow page once; cache_page serves it from Redis for PAGE_SECONDS."""
    request.view_body_ran = True  # type: ignore[attr-defined]
    started = time.perf_counter()
    _slow_work()
    context = {
        "rendered_at": _now(),
        "render_ms": round((time.perf_counter() - started) * 1000),
        "seconds": PAGE_SECONDS,
    }
    return render(request, "reference/cache_page.html", context)


# -- template fragment caching -----------------------------------------------------------


def _popular_items() -> list[str]:
    """Return the fragment's items, slowly: the template calls this only on a cache miss."""
    _slow_work()
    return ["Caching a whole page", "Caching a fragment", "Counting with incr", "Sorted sets"]


def fragment_demo(request: HttpRequest) -> HttpResponse:
    """Render a page whose slow block is cached with {% cache %} for FRAGMENT_SECONDS."""
    key = make_template_fragment_key(FRAGMENT_NAME)
    context = {
        "page_rendered_at": _now(),
        "popular_items": _popular_items,
        "fragment_seconds": FRAGMENT_SECONDS,
        "fragment_name": FRAGMENT_NAME,
        "fragment_key": key,
        # Read before rendering: 0 means this very render is filling the fragment.
        "fragment_ttl": cache.ttl(key),
    }
    return render(request, "reference/fragment.html", context)


@require_POST
def fragment_invalidate(request: HttpRequest) -> HttpResponse:
    """Delete the cached fragment so that the next view renders it again."""
    cache.delete(make_template_fragment_key(FRAGMENT_NAME))
    return redirect("fragment")


# -- the low-level cache API -------------------------------------------------------------


def counter_demo(request: HttpRequest) -> HttpResponse:
    """Count clicks with cache.incr in a COUNTER_SECONDS window; show the TTL."""
    if request.method == "POST":
        if request.POST.get("action") == "reset":
            cache.delete(COUNTER_KEY)
        else:
            # add() opens the window (it sets the TTL only when the key is new); incr()
            # is atomic on the server and keeps that TTL.
            cache.add(COUNTER_KEY, 0, timeout=COUNTER_SECONDS)
            try:
                cache.incr(COUNTER_KEY)
            except ValueError:  # the window closed between add() and incr()
                cache.set(COUNTER_KEY, 1, timeout=COUNTER_SECONDS)
        return redirect("counter")
    context = {
        "value": cache.get(COUNTER_KEY, 0),
        "ttl": cache.ttl(COUNTER_KEY),
        "key": cache.make_key(COUNTER_KEY),
        "seconds": COUNTER_SECONDS,
    }
    return render(request, "reference/counter.html", context)


# -- direct Redis access -----------------------------------------------------------------


class ScoreForm(forms.Form):
    """A player's name and score."""

    name = forms.CharField(max_length=40)
    score = forms.IntegerField(min_value=0, max_value=1_000_000)


def leaderboard_demo(request: HttpRequest) -> HttpResponse:
    """Add scores to a Redis sorted set and show the top ten."""
    redis_conn = get_redis_connection("default")
    form = ScoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        redis_conn.zadd(LEADERBOARD_KEY, {form.cleaned_data["name"]: form.cleaned_data["score"]})
        return redirect("leaderboard")
    top = redis_conn.zrevrange(LEADERBOARD_KEY, 0, 9, withscores=True)
    rows = [(rank, name.decode(), int(score)) for rank, (name, score) in enumerate(top, 1)]
    context = {"form": form, "rows": rows, "key": LEADERBOARD_KEY}
    return render(request, "reference/leaderboard.html", context)
