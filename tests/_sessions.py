"""Fixtures for the session engine tests: djredis.sessions pointed at the test server.

Test modules import the fixture functions (``*_fixture``); tests request them by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from djredis.sessions import SessionStore

from ._servers import RedisServer

SESSION_DB = 3
PREFIX = "s"


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


class Sessions:
    """The store's operations behind one face, run with the sync or the async API."""

    def __init__(self, api: str, run: Callable[[Any], Any]) -> None:
        self.api = api
        self._run = run

    def load(self, store: SessionStore) -> dict[str, Any]:
        return store.load() if self.api == "sync" else self._run(store.aload())

    def save(self, store: SessionStore, must_create: bool = False) -> None:
        if self.api == "sync":
            store.save(must_create)
        else:
            self._run(store.asave(must_create))

    def create(self, store: SessionStore) -> None:
        store.create() if self.api == "sync" else self._run(store.acreate())

    def exists(self, store: SessionStore, key: str | None) -> bool:
        return store.exists(key) if self.api == "sync" else self._run(store.aexists(key))

    def delete(self, store: SessionStore, key: str | None = None) -> None:
        store.delete(key) if self.api == "sync" else self._run(store.adelete(key))


@pytest.fixture(name="ops", params=["sync", "async"])
def ops_fixture(request: pytest.FixtureRequest, run: Callable[[Any], Any]) -> Sessions:
    """The session operations through the sync API, then through the native async one."""
    return Sessions(str(request.param), run)


def redis_key(session_key: str) -> str:
    return f"{PREFIX}:{session_key}"


def index_key(uid: Any) -> str:
    return f"{PREFIX}:user={uid}"
