"""Helpers for the session engine tests (fixtures: tests/contract/sessions/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import redis

from djredis.sessions import SessionStore

SESSION_DB = 3
PREFIX = "s"


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


def redis_key(session_key: str) -> str:
    return f"{PREFIX}:{session_key}"


def index_key(uid: Any) -> str:
    return f"{PREFIX}:user={uid}"


def _pool_like(server: redis.Redis) -> redis.ConnectionPool:
    pool = server.connection_pool
    return redis.ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)


@contextmanager
def sent_commands(*servers: redis.Redis) -> Iterator[list[str]]:
    """Collect the names of the commands clients send to ``servers`` during the block.

    Read with MONITOR, which also shows what scripts run (``[0 lua]``): those are left
    out, so one EVALSHA counts once whatever it does inside. The list is complete when
    the block ends.
    """
    sent: list[str] = []
    with ExitStack() as stack:
        # The marker goes over a connection opened before MONITOR, so its handshake is
        # not counted.
        markers = [
            stack.enter_context(redis.Redis(connection_pool=_pool_like(server)))
            for server in servers
        ]
        for marking in markers:
            marking.ping()
        monitors = [stack.enter_context(server.monitor()) for server in servers]
        yield sent
        marker = f"djredis-test-{uuid.uuid4().hex}"
        for marking, monitor in zip(markers, monitors, strict=True):
            marking.echo(marker)
            while True:  # each read is bounded by the client's socket_timeout
                seen = monitor.next_command()
                if seen["command"] == f"ECHO {marker}":
                    break
                if seen["client_type"] != "lua":
                    sent.append(str(seen["command"]).split(" ", 1)[0].upper())
