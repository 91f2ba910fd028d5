"""Drive a dedicated connection through the same sync-looking calls, sync or async.

``open_face(config, "async", purpose)`` returns an object whose methods run the
exclusive ``AsyncConnection``'s coroutines on one event loop of its own, kept for the whole
test (as a server process keeps its loop); ``close()`` shuts that loop down the way
``asyncio.run`` does, which closes the loop's dedicated connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from djredis._config.options import parse_connection_settings
from djredis._config.server import ServerConfig
from djredis._io.aio import AsyncConnection
from djredis._io.blocking import BlockingConnection
from djredis._io.loops import adedicated
from djredis._io.pool import dedicated
from djredis._io.protocol import Message

APIS = ["sync", "async"]


def server_config(location: str, **options: Any) -> ServerConfig:
    """Return the ServerConfig a cache with these OPTIONS would use."""
    settings = parse_connection_settings(location, options, setting="OPTIONS")
    config: ServerConfig = settings.primary  # type: ignore[union-attr]
    return config


class SyncFace:
    """An exclusive ``BlockingConnection`` from the process's pool."""

    def __init__(self, config: ServerConfig, purpose: str) -> None:
        self.conn: BlockingConnection = dedicated(config, purpose)

    def call(self, *args: Any, block: float | None = None) -> Any:
        return self.conn.call(*args, block=block)

    def client_id(self) -> int:
        return self.conn.client_id()

    def ping(self) -> None:
        self.conn.ping()

    def subscribe(self, *channels: str) -> None:
        self.conn.subscribe(*channels)

    def psubscribe(self, *patterns: str) -> None:
        self.conn.psubscribe(*patterns)

    def unsubscribe(self, *channels: str) -> None:
        self.conn.unsubscribe(*channels)

    def get_message(self, timeout: float | None) -> Message | None:
        return self.conn.get_message(timeout)

    def close(self) -> None:
        self.conn.close()


class AsyncFace:
    """The running loop's exclusive ``AsyncConnection``, on a loop of the face's own."""

    def __init__(self, config: ServerConfig, purpose: str) -> None:
        self.loop = asyncio.new_event_loop()

        async def make() -> AsyncConnection:
            return adedicated(config, purpose)

        self.conn: AsyncConnection = self.run(make())

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def call(self, *args: Any, block: float | None = None) -> Any:
        return self.run(self.conn.call(*args, block=block))

    def client_id(self) -> int:
        return int(self.run(self.conn.client_id()))

    def ping(self) -> None:
        self.run(self.conn.ping())

    def subscribe(self, *channels: str) -> None:
        self.run(self.conn.subscribe(*channels))

    def psubscribe(self, *patterns: str) -> None:
        self.run(self.conn.psubscribe(*patterns))

    def unsubscribe(self, *channels: str) -> None:
        self.run(self.conn.unsubscribe(*channels))

    def get_message(self, timeout: float | None) -> Message | None:
        found: Message | None = self.run(self.conn.get_message(timeout))
        return found

    def close(self) -> None:
        if not self.loop.is_closed():
            self.run(self.loop.shutdown_asyncgens())
            self.loop.close()


def open_face(config: ServerConfig, api: str, purpose: str) -> SyncFace | AsyncFace:
    """Return the ``api`` ("sync" or "async") dedicated connection for ``purpose``."""
    return SyncFace(config, purpose) if api == "sync" else AsyncFace(config, purpose)
