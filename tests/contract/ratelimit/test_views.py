"""The decorator, the middleware and the DRF throttle on real Redis: 429 and its header
fields, block=False, async views without a thread hop, class-based views, spoofing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.utils.decorators import method_decorator
from django.views import View

from djredis.ratelimit import (
    HttpResponseTooManyRequests,
    Ratelimited,
    RateLimitMiddleware,
    aget_usage,
    get_usage,
    is_ratelimited,
    ratelimit,
)
from tests._topologies import Topology


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def test_the_decorator_answers_429_with_retry_after_and_ratelimit_fields(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    view = ratelimit(key="ip", rate="2/m")(ok)
    first, second, third = (view(make_request()) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert isinstance(third, HttpResponseTooManyRequests)
    assert first["RateLimit-Policy"] == '"default";q=2;w=60'
    assert first["RateLimit"] == '"default";r=1;t=60'
    assert second["RateLimit"] == '"default";r=0;t=60'
    assert third["Retry-After"] == "60"
    assert third["RateLimit"] == '"default";r=0;t=60'
    assert "Retry-After" not in first


@pytest.mark.parametrize(
    ("accept", "json_body"),
    [
        ("application/json", True),
        ("application/problem+json, */*;q=0.1", True),
        ("text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_the_default_429_is_json_for_a_client_that_asks_for_json(
    on_redis: Topology, make_request: Callable[..., HttpRequest], accept: str, json_body: bool
) -> None:
    """An API client (``Accept: application/json``) gets a JSON 429; a browser the text."""
    view = ratelimit(key="ip", rate="1/m")(ok)
    meta = {"HTTP_ACCEPT": accept} if accept else {}
    view(make_request(**meta))
    refused = view(make_request(**meta))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    if json_body:
        assert refused["Content-Type"] == "application/json"
        assert json.loads(refused.content) == {
            "detail": "Too many requests. Please try again later.",
            "retry_after": 60,
        }
    else:
        assert refused["Content-Type"].startswith("text/plain")


def test_header_fields_can_be_switched_off_but_retry_after_stays(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    settings.RATELIMIT_HEADERS = False
    view = ratelimit(key="ip", rate="1/m")(ok)
    allowed, refused = view(make_request()), view(make_request())
    assert "RateLimit" not in allowed
    assert "RateLimit-Policy" not in allowed
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "RateLimit" not in refused


def test_views_are_counted_per_group_and_per_key(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    a = ratelimit(key="ip", rate="1/m")(ok)
    b = ratelimit(key="ip", rate="1/m", group="b")(lambda r: HttpResponse("b"))
    assert a(make_request()).status_code == 200
    assert b(make_request()).status_code == 200  # another group
    assert a(make_request(ip="198.51.100.1")).status_code == 200  # another client
    assert a(make_request()).status_code == 429


def test_block_false_runs_the_view_and_sets_request_ratelimit(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    seen: list[tuple[bool, Any]] = []

    @ratelimit(key="ip", rate="1/m", block=False)
    def view(request: HttpRequest) -> HttpResponse:
        seen.append((request.limited, request.ratelimit))  # type: ignore[attr-defined]
        return HttpResponse("ok")

    assert view(make_request()).status_code == 200
    assert view(make_request()).status_code == 200
    assert [limited for limited, _ in seen] == [False, True]
    assert seen[1][1].limited
    assert seen[1][1].retry_after == pytest.approx(60, abs=1)


def test_methods_filter_what_is_counted(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    view = ratelimit(key="ip", rate="1/m", method=ratelimit.UNSAFE)(ok)  # type: ignore[attr-defined]
    assert all(view(make_request()).status_code == 200 for _ in range(3))
    assert view(make_request(method="POST")).status_code == 200
    assert view(make_request(method="POST")).status_code == 429
    get_only = ratelimit(key="ip", rate="1/m", method=["get"], group="g")(ok)
    assert get_only(make_request(method="POST")).status_code == 200
    assert get_only(make_request(method="POST")).status_code == 200


def test_async_views_decide_on_the_event_loop_thread(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    threads: list[int] = []

    def key(group: str, request: HttpRequest) -> str:
        threads.append(threading.get_ident())
        return "one-client"

    @ratelimit(key=key, rate="2/m")
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    async def run() -> list[int]:
        assert asyncio.iscoroutinefunction(view)
        loop_thread = threading.get_ident()
        codes = [(await view(make_request())).status_code for _ in range(3)]
        assert set(threads) == {loop_thread}
        return codes

    assert asyncio.run(run()) == [200, 200, 429]


def test_async_views_key_by_user_through_auser(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    class User:
        pk = 42
        is_authenticated = True

    @ratelimit(key="user_or_ip", rate="1/m")
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    async def auser() -> User:
        return User()

    def with_user(ip: str) -> HttpRequest:
        request = make_request(ip=ip)
        request.auser = auser  # type: ignore[attr-defined]
        return request

    async def run() -> list[int]:
        return [(await view(with_user(ip))).status_code for ip in ("1.1.1.1", "2.2.2.2")]

    assert asyncio.run(run()) == [200, 429]  # one user, two addresses: one bucket


def test_class_based_views_sync_and_async(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    @ratelimit(key="ip", rate="1/m")
    class Whole(View):
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    class Method(View):
        @method_decorator(ratelimit(key="ip", rate="1/m"))
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    @ratelimit(key="ip", rate="1/m")
    class Async(View):
        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    for cls in (Whole, Method):
        view = cls.as_view()
        assert [view(make_request()).status_code for _ in range(2)] == [200, 429]

    async def run() -> list[int]:
        view = Async.as_view()
        return [(await view(make_request())).status_code for _ in range(2)]

    assert asyncio.run(run()) == [200, 429]


def test_the_429_page_is_configurable_as_a_view(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    def custom(request: HttpRequest, exception: Exception) -> HttpResponse:
        assert isinstance(exception, Ratelimited)
        assert exception.result is not None
        return HttpResponse("slow down", status=429)

    settings.RATELIMIT_VIEW = custom
    view = ratelimit(key="ip", rate="1/m")(ok)
    view(make_request())
    refused = view(make_request())
    assert refused.content == b"slow down"
    assert refused["Retry-After"] == "60"


def test_the_429_page_is_configurable_as_a_template(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any, tmp_path: Any
) -> None:
    (tmp_path / "429.html").write_text("wait {{ ratelimit.retry_after|floatformat:0 }}s")
    settings.TEMPLATES = [
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(tmp_path)]}
    ]
    settings.RATELIMIT_TEMPLATE = "429.html"
    view = ratelimit(key="ip", rate="1/m")(ok)
    view(make_request())
    refused = view(make_request())
    assert refused.status_code == 429
    assert refused.content == b"wait 60s"


def test_django_ratelimits_exception_class_setting_raises_instead(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    settings.RATELIMIT_EXCEPTION_CLASS = "djredis.ratelimit.Ratelimited"
    view = ratelimit(key="ip", rate="1/m")(ok)
    view(make_request())
    with pytest.raises(Ratelimited):
        view(make_request())


def test_is_ratelimited_and_get_usage_keep_django_ratelimits_arguments(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    args = {"group": "login", "key": "post:username", "rate": "2/m", "method": "POST"}

    def attempt() -> HttpRequest:
        return make_request(method="POST", data={"username": "ann"})

    assert not is_ratelimited(attempt(), **args)  # peeking counts nothing
    assert not is_ratelimited(attempt(), increment=True, **args)
    assert not is_ratelimited(attempt(), increment=True, **args)
    assert is_ratelimited(attempt(), **args)
    usage = get_usage(attempt(), **args)
    assert usage is not None
    assert usage["limit"] == 2
    assert usage["should_limit"]
    assert 0 < usage["time_left"] <= 60
    assert get_usage(make_request(), **args) is None  # GET is not counted
    assert asyncio.run(aget_usage(attempt(), **args))["should_limit"]  # type: ignore[index]


def test_the_middleware_applies_per_path_rules_sync_and_async(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    settings.RATELIMIT_RULES = [
        {"path": r"^/api/", "rate": "2/m"},
        {"path": r"^/api/login", "rate": "1/m", "method": "POST", "algorithm": "fixed"},
    ]
    middleware = RateLimitMiddleware(ok)
    codes = [middleware(make_request("/api/x")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert middleware(make_request("/home")).status_code == 200
    assert "RateLimit" not in middleware(make_request("/home"))
    login = [middleware(make_request("/api/login", "POST", ip="1.1.1.1")) for _ in range(2)]
    assert [r.status_code for r in login] == [200, 429]

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    amiddleware = RateLimitMiddleware(aok)

    async def run() -> list[int]:
        assert asyncio.iscoroutinefunction(amiddleware)
        return [
            (await amiddleware(make_request("/api/y", ip="2.2.2.2"))).status_code for _ in range(3)
        ]

    assert asyncio.run(run()) == [200, 200, 429]


def test_the_middleware_turns_a_raised_ratelimited_into_429(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    middleware = RateLimitMiddleware(ok)
    response = middleware.process_exception(make_request(), Ratelimited())
    assert response is not None
    assert response.status_code == 429


def test_a_forged_x_forwarded_for_does_not_escape_the_limit(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    view = ratelimit(key="ip", rate="2/m")(ok)
    codes = [
        view(make_request(HTTP_X_FORWARDED_FOR=f"10.9.8.{n}, 1.2.3.{n}")).status_code
        for n in range(4)
    ]
    assert codes == [200, 200, 429, 429]


def test_behind_a_trusted_proxy_clients_are_told_apart(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    view = ratelimit(key="ip", rate="1/m")(ok)
    with override_settings(RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]):
        first = view(make_request(ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1"))
        other = view(make_request(ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.2"))
        again = view(make_request(ip="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1"))
    assert [first.status_code, other.status_code, again.status_code] == [200, 200, 429]


def test_forged_and_garbage_headers_are_counted_not_crashed_on(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    view = ratelimit(key="header:x-api-key", rate="1/m")(ok)
    garbage = ["\x00\xff", "{}" * 500, "rl:{evil}", "*", "\r\n", "é" * 100]
    assert [view(make_request(HTTP_X_API_KEY=g)).status_code for g in garbage] == [200] * 6
    assert [view(make_request(HTTP_X_API_KEY=g)).status_code for g in garbage] == [429] * 6
    assert all(k.startswith(b"rl:{") for k in on_redis.client().keys("*"))


def test_a_non_djredis_cache_is_a_clear_error(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.RATELIMIT_USE_CACHE = "locmem"
    with pytest.raises(ImproperlyConfigured, match=r"djredis\.cache\.RedisCache"):
        ratelimit(key="ip", rate="1/m")(ok)(make_request())
    settings.RATELIMIT_USE_CACHE = "missing"
    with pytest.raises(ImproperlyConfigured, match="no cache of that name"):
        ratelimit(key="ip", rate="1/m")(ok)(make_request())


def test_the_drf_throttle_is_exact_and_sends_retry_after(on_redis: Topology, settings: Any) -> None:
    pytest.importorskip("rest_framework")
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    from djredis.ratelimit.drf import RedisRateThrottle

    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"search": "2/min"}}

    class Search(APIView):
        throttle_classes = (RedisRateThrottle,)
        throttle_scope = "search"
        permission_classes = ()
        authentication_classes = ()

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    factory = APIRequestFactory()
    view = Search.as_view()
    responses = [view(factory.get("/search", REMOTE_ADDR="203.0.113.5")) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2]["Retry-After"] == "60"
