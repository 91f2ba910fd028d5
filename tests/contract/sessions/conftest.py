"""Fixtures of the session engine's tests: djredis.sessions on db 3 of the test server, and
its operations run through the sync API and then the native async one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests._servers import RedisServer
from tests._sessions import PREFIX, SESSION_DB, Sessions


@pytest.fixture(name="sessions")
def sessions_fixture(
    settings: Any, redis_server: RedisServer, redis_client: redis.Redis
) -> redis.Redis:
    """Use djredis.sessions on db 3 of the test server; return a client of that db."""
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {"url": redis_server.url(SESSION_DB), "prefix": PREFIX}
    client = redis_server.client(SESSION_DB)
    yield client
    client.close()


@pytest.fixture(name="run")
def run_fixture() -> Iterator[Callable[[Any], Any]]:
    """Run a coroutine on one event loop kept for the whole test (as a server would)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@pytest.fixture(name="ops", params=["sync", "async"])
def ops_fixture(request: pytest.FixtureRequest, run: Callable[[Any], Any]) -> Sessions:
    """The session operations through the sync API, then through the native async one."""
    return Sessions(str(request.param), run)
