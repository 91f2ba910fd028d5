"""Keep async connections per running event loop, and close them when the loop shuts down.

An asyncio connection belongs to the loop that opened it. Django code meets many loops:
uvicorn/daphne run one per worker, ``async_to_sync`` makes a new one per call, test runners
one per test. So every loop gets its own connections (``aio.AsyncConnection``): one shared
connection per server (``connection``), one exclusive connection per server and purpose
(``exclusive``), and its own ``redis.asyncio`` clients, created on first use and closed
from inside that loop when it shuts down: each loop holds one parked async generator, and
``loop.shutdown_asyncgens()`` — which ``asyncio.run``, asgiref, uvicorn and pytest-asyncio
call before closing a loop — runs its ``finally`` block while the loop can still await.
Nothing patches the loop.

The states are kept in a ``WeakKeyDictionary`` keyed by the loop, so nothing in a state
may hold its loop strongly once the loop is done (an open socket's transport does): a
state is dropped when its loop shuts down, and states of loops closed without shutting
down are dropped when the next loop appears. Otherwise every ``asyncio.run`` and
``async_to_sync`` call would leave its loop alive.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from djredis._config.server import ServerConfig
from djredis._io.aio import AsyncConnection
from djredis._io.bridge import async_client

if TYPE_CHECKING:
    from redis import asyncio as aioredis

__all__ = ["LoopState", "adedicated", "loop_state", "multiplexed_connections"]

T = TypeVar("T")


class LoopState:
    """The async connections and clients one event loop owns."""

    def __init__(self) -> None:
        self.multiplexed: dict[ServerConfig, AsyncConnection] = {}  # the shared ones
        self.exclusives: dict[tuple[ServerConfig, str], AsyncConnection] = {}
        self.clients: dict[ServerConfig, aioredis.Redis] = {}
        # Other per-loop objects with an ``aclose()`` (Sentinel- and Cluster-aware clients).
        self.extras: dict[Hashable, Any] = {}
        self._guard: AsyncGenerator[None, None] | None = None

    def connection(self, config: ServerConfig) -> AsyncConnection:
        """Return this loop's shared connection to ``config`` (not yet connected)."""
        conn = self.multiplexed.get(config)
        if conn is None:
            conn = self.multiplexed[config] = AsyncConnection(config)
        return conn

    def exclusive(self, config: ServerConfig, purpose: str) -> AsyncConnection:
        """Return this loop's exclusive connection to ``config`` for ``purpose`` (e.g.
        ``"channels.reader"``), created on first use: two purposes never share one."""
        key = (config, purpose)
        conn = self.exclusives.get(key)
        if conn is None:
            conn = self.exclusives[key] = AsyncConnection(config, exclusive=True)
        return conn

    def client(self, config: ServerConfig) -> aioredis.Redis:
        """Return this loop's ``redis.asyncio`` client for ``config`` (for pub/sub etc.)."""
        client = self.clients.get(config)
        if client is None:
            client = self.clients[config] = async_client(config)
        return client

    def shared(self, key: Hashable, factory: Callable[[], T]) -> T:
        """Return this loop's object for ``key``, built on first use, closed with the loop."""
        found = self.extras.get(key)
        if found is None:
            found = self.extras[key] = factory()
        result: T = found
        return result

    def watch_shutdown(self) -> None:
        """Park a generator whose ``finally`` closes everything when the loop shuts down."""
        if self._guard is None:
            guard = self._guard = self._closer()

            async def park() -> None:
                await guard.__anext__()

            asyncio.get_running_loop().create_task(park())

    async def _closer(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            global _last
            _states.pop(asyncio.get_running_loop(), None)
            if _last is not None and _last[1] is self:
                _last = None  # a loop still used after its shutdown gets a new state
            await self.aclose()

    async def aclose(self) -> None:
        """Close every connection this loop holds."""
        connections = [*self.multiplexed.values(), *self.exclusives.values()]
        self.multiplexed, self.exclusives = {}, {}
        clients, self.clients = self.clients, {}
        extras, self.extras = self.extras, {}
        for conn in connections:
            conn.close()
        for conn in connections:
            await conn.wait_closed()
        for client in clients.values():
            # The pool was passed in, so closing the client leaves it open: close it too.
            await client.connection_pool.disconnect()
        for extra in extras.values():
            await extra.aclose()


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
    weakref.WeakKeyDictionary()
)


# The loop asked about last, weakly, and its state: every async command asks, nearly always
# about the same loop, and the weak dictionary's lookup costs a new weak reference each time.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], LoopState] | None = None


def loop_state() -> LoopState:
    """Return the running loop's state, creating it (and its shutdown hook) on first use.

    Raises RuntimeError when no event loop is running.
    """
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    state = _states.get(loop)
    if state is None:
        for closed in [other for other in _states if other.is_closed()]:
            del _states[closed]  # closed without shutdown_asyncgens(): let it be collected
        state = _states[loop] = LoopState()
        state.watch_shutdown()
    _last = (weakref.ref(loop), state)
    return state


def adedicated(config: ServerConfig, purpose: str) -> AsyncConnection:
    """Return the running loop's exclusive connection to ``config`` for ``purpose``,
    created on first use and closed when the loop shuts down (the asyncio twin of
    ``dedicated.dedicated``).

    Raises RuntimeError when no event loop is running.
    """
    return loop_state().exclusive(config, purpose)


def multiplexed_connections() -> list[AsyncConnection]:
    """Return every event loop's shared connections (for ``djredis.metrics``; other
    threads' loops may add some meanwhile, so the copy is retried)."""
    for _attempt in range(5):
        try:
            return [conn for state in list(_states.values()) for conn in state.multiplexed.values()]
        except RuntimeError:  # changed size during iteration
            continue
    return []
