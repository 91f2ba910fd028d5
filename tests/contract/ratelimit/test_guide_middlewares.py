"""The guides' two rate limiters: as written (with djredis's package paths), and as
djredis reproduces them with settings or a few lines, exact and not spoofable.

Guide "How to Use Redis with Django", "Rate Limiting": a sliding window on a sorted set in
a middleware, keyed by the left-most X-Forwarded-For value. Guide "Django and Redis:
Mastering Caching and Session Storage", "1. Rate Limiting": a fixed counter (INCR +
EXPIRE) in a view, keyed by the user or REMOTE_ADDR, 100 per 60 s, 403 when over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from djredis.ratelimit import RateLimitMiddleware, ratelimit
from tests._topologies import Topology


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("API Response")


def guide_middleware() -> type:
    """The first guide's middleware, as written; only the import paths are djredis's."""
    from djredis import get_redis_connection
    from djredis.ratelimit import HttpResponseTooManyRequests

    class RateLimitMiddleware:
        def __init__(self, get_response):  # type: ignore[no-untyped-def]
            self.get_response = get_response
            self.redis = get_redis_connection("default")

        def __call__(self, request):  # type: ignore[no-untyped-def]
            if not self.is_rate_limited(request):
                return self.get_response(request)
            return HttpResponseTooManyRequests("Rate limit exceeded")

        def is_rate_limited(self, request):  # type: ignore[no-untyped-def]
            # Get client identifier
            client_ip = self.get_client_ip(request)
            key = f"rate_limit:{client_ip}"

            # Sliding window rate limiting
            now = time.time()
            window = 60  # 1 minute
            max_requests = 100

            pipe = self.redis.pipeline()
            pipe.zremrangebyscore(key, 0, now - window)
            pipe.zadd(key, {str(now): now})
            pipe.zcard(key)
            pipe.expire(key, window)
            results = pipe.execute()

            request_count = results[2]
            return request_count > max_requests

        def get_client_ip(self, request):  # type: ignore[no-untyped-def]
            x_forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR")
            if x_forwarded_for:
                return x_forwarded_for.split(",")[0]
            return request.META.get("REMOTE_ADDR")

    return RateLimitMiddleware


def test_the_guides_middleware_runs_but_any_client_escapes_it_with_a_forged_header(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    middleware = guide_middleware()(ok)
    codes = [middleware(make_request()).status_code for _ in range(101)]
    assert codes.count(429) == 1  # the 101st
    forged = [
        middleware(make_request(HTTP_X_FORWARDED_FOR=f"10.0.{n // 256}.{n % 256}"))
        for n in range(150)
    ]
    assert all(r.status_code == 200 for r in forged)  # the counter-example


def test_the_guides_middleware_is_one_setting_with_djredis(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    # MIDDLEWARE += ["djredis.ratelimit.RateLimitMiddleware"], and:
    settings.RATELIMIT_RULES = [{"rate": "100/m", "key": "ip"}]  # sliding, exact
    middleware = RateLimitMiddleware(ok)
    codes = [middleware(make_request()).status_code for _ in range(101)]
    assert codes.count(429) == 1
    forged = [
        middleware(make_request(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")).status_code for n in range(20)
    ]
    assert forged == [429] * 20
    assert on_redis.client().llen(on_redis.client().keys("rl:*")[0]) == 100


def test_the_second_guides_counter_is_one_decorator_with_djredis(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    class Anonymous:
        id = pk = None
        is_authenticated = False

    def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
        return HttpResponseForbidden("Rate limit exceeded. Please try again later.")

    settings.RATELIMIT_VIEW = forbidden  # the guide answers 403; djredis's default is 429
    protected_api = ratelimit(key="user_or_ip", rate="100/60s", algorithm="fixed")(ok)

    def call() -> int:
        request = make_request()
        request.user = Anonymous()  # type: ignore[attr-defined]
        return protected_api(request).status_code

    codes = [call() for _ in range(102)]
    assert codes[:100] == [200] * 100
    assert codes[100:] == [403, 403]
    [key] = on_redis.client().keys("rl:*")
    assert 0 < on_redis.client().pttl(key) <= 60_000  # INCR + PEXPIRE, one atomic script
