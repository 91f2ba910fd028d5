"""The home page: every demo, grouped as the guides group them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from djredis import get_redis_connection

# (section, [(url name, title, summary)]); the rate-limit, chat, memoize and per-user pages
# join these lists when their components land.
SECTIONS = [
    (
        "Caching",
        [
            ("caches", "Multiple caches", "default, sessions and api_cache on three databases."),
            ("cache-page", "Per-view caching", "cache_page: the whole response is stored."),
            ("cache-class", "Class-based view", "method_decorator(cache_page(...))."),
            ("fragment", "Template fragment caching", "{% cache %}, per user and language."),
            ("counter", "Low-level cache API", "cache.incr on a counter, with its TTL."),
            ("api-tour", "Every basic operation", "set, get, get_many, add, get_or_set, ..."),
            ("articles", "Invalidation on save", "a post_save signal deletes a cached list."),
            ("async", "Async views", "aget_many, aset_many, aincr on the event loop."),
            ("memoize", "memoize", "50 concurrent calls at an expired key: one run."),
            ("per-user", "Per-user pages", "cache_page_per_user, and the vary_on_cookie trap."),
        ],
    ),
    (
        "Sessions",
        [
            ("login", "Log in", "Django's LoginView on djredis.sessions."),
            ("sessions", "Active sessions", "device, IP, last seen; log out others."),
        ],
    ),
    (
        "Redis structures",
        [
            ("leaderboard", "Direct Redis access", "get_redis_connection and a sorted set."),
            ("notifications", "Live notifications", "PUBLISH / SUBSCRIBE to the browser."),
            ("lock", "A lock-protected operation", "redis-py's lock: never twice at once."),
            ("profile", "A profile in a hash", "HSET / HGETALL per user."),
        ],
    ),
    (
        "Rate limiting",
        [
            ("ratelimit", "A rate-limited JSON API", "per IP and per user; 429 + Retry-After."),
        ],
    ),
    (
        "Real time",
        [
            ("chat", "WebSocket chat", "the guide's ChatConsumer on djredis.channels."),
        ],
    ),
    (
        "Celery",
        [
            ("tasks", "Celery tasks", "delay, countdown, ETA, retries, beat; status by id."),
            ("django-tasks", "Django tasks on Celery", "@task, enqueue, run_after; TaskResult."),
        ],
    ),
    (
        "Operations",
        [
            ("dashboard", "Redis dashboard", "hit ratio per alias, keys, memory, queue; live."),
            ("health", "Health check", "which Redis servers answer, with latency (JSON)."),
        ],
    ),
]


def home(request: HttpRequest) -> HttpResponse:
    """List the demos and the Redis the site talks to."""
    info = get_redis_connection("default").info("server")
    context = {
        "sections": SECTIONS,
        "redis_url": settings.CACHES["default"]["LOCATION"],
        "redis_version": info.get("redis_version", "?"),
    }
    return render(request, "reference/home.html", context)


# A red square with "dj": the browser asks every page for /favicon.ico; a 404 there is a
# console error on every page.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#c6302b"/>'
    '<text x="16" y="22" font-family="sans-serif" font-size="15" font-weight="700" '
    'fill="#fff" text-anchor="middle">dj</text></svg>'
)


def favicon(request: HttpRequest) -> HttpResponse:
    """Serve the site's icon (cached by the browser for a day)."""
    response = HttpResponse(FAVICON_SVG, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
