"""The health view, the deploy check and server_stats while Redis is killed, restarted,
paused (SIGSTOP) or not Redis at all: they report, within the configured timeouts, and
never raise.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from django.test import RequestFactory

from djredis.cache.stats import server_stats
from djredis.health import check_redis_servers, health
from tests._servers import RedisServer


def status() -> tuple[int, dict[str, Any]]:
    """Call the health view; return (HTTP status, JSON body)."""
    response = health(RequestFactory().get("/health/"))
    body: dict[str, Any] = json.loads(response.content)
    return response.status_code, body


def test_health_follows_a_restart_of_redis(default_cache_server: RedisServer) -> None:
    """200, then 503 while the server is down, then 200 again once it is back."""
    assert status()[0] == 200
    default_cache_server.process.terminate()  # type: ignore[union-attr]
    default_cache_server.process.wait(timeout=10)  # type: ignore[union-attr]
    try:
        code, body = status()
        assert code == 503
        assert body["servers"][0]["reachable"] is False
        assert check_redis_servers()[0].id == "djredis.W001"
    finally:
        default_cache_server.restart()
    assert status()[0] == 200  # the cache's connections recover by themselves
    assert check_redis_servers()[0].id == "djredis.I001"


def test_health_answers_within_the_timeout_when_redis_is_paused(
    default_cache_server: RedisServer,
) -> None:
    """A SIGSTOPped server: unreachable (a timeout) after about socket_timeout, not a hang."""
    assert server_stats("default").reachable
    pid = default_cache_server.process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code, body = status()
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert code == 503
    assert "imeout" in body["servers"][0]["error"]
    assert elapsed < 5  # socket_timeout 0.5 s (plus one resend of the idempotent PING)
    assert server_stats("default").reachable  # and fine again once it runs


def test_server_stats_of_something_that_is_not_redis(settings: Any, not_redis: int) -> None:
    """An HTTP server where Redis should be: unreachable with the protocol error, no raise."""
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{not_redis}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    stats = server_stats("default")
    assert not stats.reachable
    assert stats.error
