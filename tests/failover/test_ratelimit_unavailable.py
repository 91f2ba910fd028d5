"""Rate limiting when Redis gives no decision: killed, paused (SIGSTOP), restarted, not
Redis, or answering with an error. Each rule fails closed (the default, as in
django-ratelimit: 429 with Retry-After, one log line per burst, never a 500) or, when asked,
open; always within the socket timeout."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from djredis._core.errors import BurstLogger
from djredis.ratelimit import RateLimitMiddleware, Rule, get_usage, is_ratelimited, ratelimit, store
from tests._servers import RedisServer

SOCKET_TIMEOUT = 0.3
factory = RequestFactory()


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@pytest.fixture
def own_server(settings: Any) -> Iterator[RedisServer]:
    """A redis-server of the test's own behind CACHES['default'] (short timeouts)."""
    server = RedisServer().start()
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(0),
            "OPTIONS": {"SOCKET_TIMEOUT": SOCKET_TIMEOUT, "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT},
        }
    }
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    caches["default"].close()
    server.stop()


@pytest.fixture(autouse=True)
def fresh_burst_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts a new burst, so its first failed decision is logged."""
    monkeypatch.setattr(store, "failures", BurstLogger(store.logger), raising=False)


def request(ip: str = "203.0.113.9") -> HttpRequest:
    return factory.get("/", REMOTE_ADDR=ip)


def login_attempt() -> HttpRequest:
    return factory.post("/accounts/login/", {"username": "ann"}, REMOTE_ADDR="203.0.113.9")


def ratelimit_log(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "djredis.ratelimit"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_5_per_minute_login_rule_admits_none_of_100_attempts_while_redis_is_down(
    own_server: RedisServer, settings: Any, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """django-ratelimit 4.1 never admits them: ``RATELIMIT_FAIL_OPEN`` "Defaults to False"
    (https://github.com/jsocol/django-ratelimit/blob/main/docs/settings.rst#ratelimit_fail_open).
    """
    settings.RATELIMIT_RULES = [
        {"path": r"^/accounts/login/", "rate": "5/m", "method": "POST", "key": "post:username"}
    ]
    own_server.stop()

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        if mode == "sync":
            middleware = RateLimitMiddleware(ok)
            responses = [middleware(login_attempt()) for _ in range(100)]
        else:
            amiddleware = RateLimitMiddleware(aok)

            async def run() -> list[Any]:
                return [await amiddleware(login_attempt()) for _ in range(100)]

            responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [429] * 100
    assert {r["Retry-After"] for r in responses} == {"1"}
    lines = ratelimit_log(caplog)
    assert len(lines) == 1  # one line for the burst
    assert "fails closed" in lines[0].getMessage()


def test_a_killed_redis_fails_closed_by_default_with_one_log_line(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    view = ratelimit(key="ip", rate="100/m")(ok)
    assert view(request()).status_code == 200
    own_server.stop()
    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        refused = [view(request()) for _ in range(5)]
    assert [r.status_code for r in refused] == [429] * 5
    assert refused[0]["Retry-After"] == "1"
    assert "RateLimit" not in refused[0]  # no quota to advertise when nothing was decided
    lines = ratelimit_log(caplog)
    assert len(lines) == 1
    assert "fails closed" in lines[0].getMessage()


def test_fail_open_admits_per_rule_or_by_the_setting(
    own_server: RedisServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    own_server.stop()
    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        assert ratelimit(key="ip", rate="1/m", fail_open=True)(ok)(request()).status_code == 200
    assert "fails open" in ratelimit_log(caplog)[0].getMessage()
    settings.RATELIMIT_FAIL_OPEN = True  # django-ratelimit's setting
    assert ratelimit(key="ip", rate="1/m")(ok)(request()).status_code == 200
    assert ratelimit(key="ip", rate="1/m", fail_open=False)(ok)(request()).status_code == 429
    settings.RATELIMIT_FAIL_OPEN = False
    settings.RATELIMIT_RULES = [{"rate": "1/m", "fail_open": True}]
    assert RateLimitMiddleware(ok)(request()).status_code == 200


@pytest.mark.parametrize("fail_open", [False, True])
def test_get_usage_without_redis_answers_as_django_ratelimit_does(
    own_server: RedisServer, settings: Any, fail_open: bool
) -> None:
    """django-ratelimit's get_usage: None when failing open, else should_limit with limit 0
    (https://github.com/jsocol/django-ratelimit/blob/main/django_ratelimit/core.py, "Getting
    or setting the count from the cache failed")."""
    settings.RATELIMIT_FAIL_OPEN = fail_open
    own_server.stop()
    args = {"group": "g", "key": "ip", "rate": "5/m", "increment": True}
    usage = get_usage(request(), **args)
    if fail_open:
        assert usage is None
        assert not is_ratelimited(request(), **args)
    else:
        assert usage == {"count": 0, "limit": 0, "should_limit": True, "time_left": -1}
        assert is_ratelimited(request(), **args)


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_error_reply_is_a_failed_decision_never_a_500(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture, fail_open: bool
) -> None:
    """Redis out of memory refuses the script's write: the rule decides, the view never
    500s, sync and async."""
    view = ratelimit(key="ip", rate="100/m", fail_open=fail_open)(ok)
    assert view(request()).status_code == 200
    admin = own_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    aview = ratelimit(key="ip", rate="100/m", fail_open=fail_open)(aok)

    async def async_responses() -> list[Any]:
        return [await aview(request(ip=f"198.51.100.{n}")) for n in range(3)]

    try:
        with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
            responses = [view(request(ip=f"198.51.100.{n}")) for n in range(3)]
            responses += asyncio.run(async_responses())
    finally:
        admin.config_set("maxmemory", 0)
    assert [r.status_code for r in responses] == [200 if fail_open else 429] * 6
    lines = ratelimit_log(caplog)
    assert len(lines) == 1
    assert "OutOfMemoryError" in lines[0].getMessage()
    assert lines[0].levelno == logging.ERROR


def test_a_paused_redis_fails_closed_within_the_socket_timeout_sync_and_async(
    own_server: RedisServer,
) -> None:
    assert own_server.process is not None
    rule = Rule(key="ip", rate="1/m")

    async def decide_async() -> Any:
        return await rule.acheck(request())

    rule.check(request())
    asyncio.run(decide_async())
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        sync_result = rule.check(request())
        async_result = asyncio.run(decide_async())
        elapsed = time.monotonic() - started
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    for result in (sync_result, async_result):
        assert result is not None
        assert result.limited
        assert result.unavailable
        assert result.retry_after == 1
    assert elapsed < 4 * SOCKET_TIMEOUT + 2  # two decisions, each bounded by the timeouts


def test_decisions_resume_exactly_after_a_restart(own_server: RedisServer) -> None:
    rule = Rule(key="ip", rate="2/m")
    assert rule.check(request()).allowed  # type: ignore[union-attr]
    own_server.restart()  # the script cache is gone too: EVALSHA gets NOSCRIPT, then EVAL
    decided = [rule.check(request()) for _ in range(4)]
    live = [r for r in decided if r is not None and not r.unavailable]
    assert [r.allowed for r in live][-2:] == [False, False]
    assert sum(r.allowed for r in live) <= 2


def test_the_async_middleware_fails_closed_when_redis_is_gone(
    own_server: RedisServer, settings: Any
) -> None:
    settings.RATELIMIT_RULES = [{"path": "^/", "rate": "1/m"}]

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    middleware = RateLimitMiddleware(aok)
    own_server.stop()

    async def run() -> list[int]:
        return [(await middleware(request())).status_code for _ in range(3)]

    assert asyncio.run(run()) == [429, 429, 429]


def test_a_server_that_is_not_redis_fails_closed(not_redis: int, settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{not_redis}/0",
            "OPTIONS": {"SOCKET_TIMEOUT": SOCKET_TIMEOUT},
        }
    }
    try:
        result = Rule(key="ip", rate="1/m").check(request())
    finally:
        caches["default"].close()
    assert result is not None
    assert result.limited
    assert result.unavailable


def test_drf_throttles_fail_closed_with_retry_after_when_redis_is_gone(
    own_server: RedisServer, settings: Any
) -> None:
    pytest.importorskip("rest_framework")
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    from djredis.ratelimit.drf import AnonRateThrottle

    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"anon": "100/min"}}

    class Search(APIView):
        throttle_classes = (AnonRateThrottle,)
        permission_classes = ()
        authentication_classes = ()

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    own_server.stop()
    refused = Search.as_view()(APIRequestFactory().get("/", REMOTE_ADDR="203.0.113.5"))
    assert (refused.status_code, refused["Retry-After"]) == (429, "1")
