"""Receive: one blocking reader per list key and event loop, handing messages to mailboxes.

A consumer's ``receive`` never talks to Redis. It waits on its channel's ``Mailbox`` in
this process; a ``Reader`` task pops messages from the channel's list with ``BLMPOP``
(up to ``BATCH`` at once) on a dedicated connection of its own (``adedicated``) and puts
each into the mailbox of the channel it names. All process-local channels of a layer
(``specific.<id>!...``) share one list, so one reader and one connection serve all the
consumers of a process on a loop, whatever their number.

Why this shape:

- a cancelled ``receive`` loses nothing: it only stopped waiting on a mailbox; the message
  stays there for the next ``receive`` (the waiter is a wake-up, never a hand-over);
- the reader runs while somebody waits and finishes its current pop before it stops, so a
  pop is never abandoned with a message in flight;
- ``BLMPOP``'s timeout (``block``) stays below the socket timeout, and the dedicated
  connection waits ``block + socket_timeout`` for the reply, so an idle consumer never sees
  a timeout whatever the client library's default (channels_redis#422);
- mailboxes nobody has read for ``expiry`` seconds are dropped (channels#1361); messages
  past their deadline are dropped when read;
- on a connection error, the reader asks the topology again for the key's primary
  (Sentinel failover, Cluster failover or resharding) and reconnects with backoff; what
  Redis still holds is read then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from djredis._config.server import ServerConfig
from djredis._core.errors import BurstLogger
from djredis._io.dedicated import AsyncDedicatedConnection, adedicated
from djredis._io.loops import loop_state
from djredis._routing.base import Topology

__all__ = ["BATCH", "Mailbox", "Reader", "block_seconds"]

logger = logging.getLogger("djredis.channels")

BATCH = 4096  # messages popped per round trip (a whole backlog at once)
MAX_BLOCK = 2.0
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)


def block_seconds(config: ServerConfig) -> float:
    """Return how long one ``BLMPOP`` blocks: below the socket timeout, at most 2 s."""
    timeout = config.socket_timeout
    if timeout is None:
        return MAX_BLOCK
    return max(0.01, min(MAX_BLOCK, timeout / 2))


class Mailbox:
    """The messages of one channel popped by this process, waiting for ``receive``."""

    __slots__ = ("items", "touched", "waiters")

    def __init__(self, now: float) -> None:
        self.items: deque[tuple[float, Any]] = deque()  # (deadline, loop clock; message)
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.touched = now

    def put(self, deadline: float, message: Any) -> None:
        self.items.append((deadline, message))
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def get(self) -> Any:
        """Return the oldest message that has not expired, waiting for one."""
        loop = asyncio.get_running_loop()
        while True:
            self.touched = loop.time()
            while self.items:
                deadline, message = self.items.popleft()
                if deadline > self.touched:
                    return message
            waiter = loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Woken and then cancelled: pass the wake-up on, the message stays here.
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                elif waiter in self.waiters:
                    self.waiters.remove(waiter)
                raise


class Reader:
    """Pop one list's messages into the mailboxes of the channels they name."""

    def __init__(
        self,
        topology: Topology,
        key: str,
        non_local: str,
        purpose: str,
        decode: Callable[[bytes], Any],
        expiry: float,
        callbacks: tuple[Callable[[], Any] | None, Callable[[], Any] | None],
    ) -> None:
        self.topology = topology
        self.key = key
        self.non_local = non_local
        self.purpose = purpose
        self.decode = decode
        self.expiry = expiry
        self.on_disconnect, self.on_reconnect = callbacks
        self.mailboxes: dict[str, Mailbox] = {}
        self.loop = asyncio.get_running_loop()
        self.waiting = 0
        self.task: asyncio.Task[None] | None = None
        self.pops = 0  # BLMPOP round trips, for tests and benchmarks
        self._conn: AsyncDedicatedConnection | None = None
        self._offset_ms = 0.0  # server clock minus ours
        self._swept = 0.0
        self._garbage = BurstLogger(logger)
        self._failures = 0

    def mailbox(self, channel: str) -> Mailbox:
        box = self.mailboxes.get(channel)
        if box is None:
            box = self.mailboxes[channel] = Mailbox(self.loop.time())
        return box

    async def receive(self, channel: str) -> Any:
        """Return the next message for ``channel``."""
        box = self.mailboxes.get(channel) or self.mailbox(channel)
        if box.items:
            loop_now = self.loop.time()
            if box.items[0][0] > loop_now:
                box.touched = loop_now
                return box.items.popleft()[1]
        self.waiting += 1
        try:
            if self.task is None or self.task.done():
                self.task = self.loop.create_task(self._run())
            return await box.get()
        finally:
            self.waiting -= 1

    async def stop(self) -> None:
        """Cancel the reader (a pop in flight may be lost: used by flush and close)."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    # -- the reader task ---------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting > 0:
            try:
                conn = await self._connection()
                block = block_seconds(conn._config)
                reply = await conn.call(
                    "BLMPOP", block, 1, self.key, "LEFT", "COUNT", BATCH, block=block
                )
                self.pops += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die: receivers wait on this task
                await self._failed(exc)
                continue
            if self._failures:
                self._failures = 0
                logger.info("djredis.channels: reading %s again", self.key)
                _call(self.on_reconnect)
            if reply is not None:
                self._dispatch(reply[1], loop.time())
            self._sweep(loop.time())

    async def _connection(self) -> AsyncDedicatedConnection:
        conn = self._conn
        if conn is None or not conn.connected:
            config = await self.topology.aprimary_for(
                self.key, loop_state(), fresh=self._failures > 0
            )
            if conn is not None and conn._config != config:
                await conn.aclose()
            conn = self._conn = adedicated(config, self.purpose)
            seconds, micros = await conn.call("TIME")
            self._offset_ms = int(seconds) * 1000 + int(micros) / 1000 - time.time() * 1000
        return conn

    async def _failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            logger.warning(
                "djredis.channels: reading %s failed (%s: %s); reconnecting",
                self.key,
                type(exc).__name__,
                exc,
            )
            _call(self.on_disconnect)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()
        await asyncio.sleep(_BACKOFF[min(self._failures, len(_BACKOFF)) - 1])

    def _dispatch(self, elements: list[bytes], now: float) -> None:
        server_ms = time.time() * 1000 + self._offset_ms
        for element in elements:
            try:
                deadline, parts, payload = element.split(b"|", 2)
                left = (int(deadline) - server_ms) / 1000
                if left <= 0:
                    continue
                message = self.decode(payload)
                if not isinstance(message, dict):
                    raise TypeError(f"a message must be a dict, got {type(message).__name__}")
                # One element for every channel of this list a group_send reached: each
                # gets a copy of its own.
                names = parts.decode().split(",")
            except Exception as exc:  # garbage in Redis: a log line, never a crash
                self._garbage.log(
                    logging.WARNING,
                    "djredis.channels: dropped an undecodable message from %s (%s: %s)",
                    self.key,
                    type(exc).__name__,
                    exc,
                )
                continue
            for index, name in enumerate(names):
                channel = self.non_local + name
                box = self.mailboxes.get(channel)
                if box is None:
                    box = self.mailboxes[channel] = Mailbox(now)
                box.put(now + left, message if index == 0 else dict(message))

    def _sweep(self, now: float) -> None:
        if now - self._swept < min(self.expiry, 1.0):
            return
        self._swept = now
        stale = [
            name
            for name, box in self.mailboxes.items()
            if not box.waiters and now - box.touched > self.expiry
        ]
        for name in stale:
            del self.mailboxes[name]


def _call(callback: Callable[[], Any] | None) -> None:
    if callback is not None:
        try:
            callback()
        except Exception:
            logger.exception("djredis.channels: on_disconnect/on_reconnect callback failed")
