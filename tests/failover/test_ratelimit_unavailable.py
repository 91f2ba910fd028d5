"""Rate limiting when Redis is away: killed, paused (SIGSTOP), restarted, not Redis. Each
rule fails open (the default, with a log line) or closed, within the socket timeout."""

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

from djredis.ratelimit import RateLimitMiddleware, Rule, ratelimit
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


def request() -> HttpRequest:
    return factory.get("/", REMOTE_ADDR="203.0.113.9")


def test_a_killed_redis_fails_open_by_default_with_one_log_line(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    view = ratelimit(key="ip", rate="1/m")(ok)
    assert view(request()).status_code == 200
    own_server.stop()
    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        codes = [view(request()).status_code for _ in range(5)]
    assert codes == [200] * 5
    lines = [r for r in caplog.records if r.name == "djredis.ratelimit"]
    assert len(lines) == 1
    assert "fails open" in lines[0].getMessage()


def test_a_rule_may_fail_closed(own_server: RedisServer) -> None:
    view = ratelimit(key="ip", rate="100/m", fail_open=False)(ok)
    assert view(request()).status_code == 200
    own_server.stop()
    refused = view(request())
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert "RateLimit" not in refused  # no quota to advertise when nothing was decided


def test_the_fail_open_setting_is_the_default_for_rules(
    own_server: RedisServer, settings: Any
) -> None:
    settings.RATELIMIT_FAIL_OPEN = False
    own_server.stop()
    assert ratelimit(key="ip", rate="100/m")(ok)(request()).status_code == 429
    assert ratelimit(key="ip", rate="100/m", fail_open=True)(ok)(request()).status_code == 200


def test_a_paused_redis_fails_open_within_the_socket_timeout_sync_and_async(
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
    assert sync_result is not None
    assert sync_result.allowed
    assert sync_result.unavailable
    assert async_result is not None
    assert async_result.allowed
    assert async_result.unavailable
    assert elapsed < 4 * SOCKET_TIMEOUT + 2  # two decisions, each bounded by the timeouts


def test_decisions_resume_exactly_after_a_restart(own_server: RedisServer) -> None:
    rule = Rule(key="ip", rate="2/m")
    assert rule.check(request()).allowed  # type: ignore[union-attr]
    own_server.restart()  # the script cache is gone too: EVALSHA gets NOSCRIPT, then EVAL
    decided = [rule.check(request()) for _ in range(4)]
    live = [r for r in decided if r is not None and not r.unavailable]
    assert [r.allowed for r in live][-2:] == [False, False]
    assert sum(r.allowed for r in live) <= 2


def test_the_async_middleware_fails_open_when_redis_is_gone(
    own_server: RedisServer, settings: Any
) -> None:
    settings.RATELIMIT_RULES = [{"path": "^/", "rate": "1/m"}]

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    middleware = RateLimitMiddleware(aok)
    own_server.stop()

    async def run() -> list[int]:
        return [(await middleware(request())).status_code for _ in range(3)]

    assert asyncio.run(run()) == [200, 200, 200]


def test_a_server_that_is_not_redis_fails_open(not_redis: int, settings: Any) -> None:
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
    assert result.allowed
    assert result.unavailable
