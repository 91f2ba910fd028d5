"""One Redis connection shared by every coroutine of an event loop (auto-pipelining).

Commands issued by any number of coroutines during one iteration of the loop are written
to the socket together in a single ``write()``; replies come back in the same order, so
each is handed to the future of the command at the head of the queue. A hundred
concurrent requests therefore need one connection, not a hundred, and a burst of commands
costs one system call each way.

Only request/reply commands go through here. Blocking commands (BLPOP...), transactions
with WATCH, and pub/sub need a connection of their own and use a regular
``redis.asyncio`` client (``djredis.get_redis_connection(asyncio=True)``).

Failure handling: when the connection breaks, every command waiting on it fails with
``ConnectionError`` and the next command reconnects. A command whose reply does not arrive
within ``socket_timeout`` aborts the connection (its place in the reply stream is lost) and
the commands waiting on it fail with ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, cast

from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.errors import error_from_reply
from djredis._io.handshake import handshake_commands, ssl_context
from djredis._io.resp import ERROR_TYPES, new_reader, pack

__all__ = ["MultiplexedConnection", "error_from_reply"]


class MultiplexedConnection(asyncio.Protocol):
    """A pipelining RESP2 connection owned by one event loop."""

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self._config = config
        self._kwargs = config.kwargs()
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._reader = new_reader()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Future[None] | None = None
        self._broken: Exception | None = None
        self._timeout: float | None = self._kwargs.get("socket_timeout")
        self._timer: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] | None = None  # set by close()
        self._sent = 0  # commands written so far
        self._answered = 0  # replies received so far
        self.connections_made = 0

    # -- public -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is open and usable."""
        return self._transport is not None and self._broken is None

    async def execute(self, args: tuple[Any, ...]) -> Any:
        """Send one command (batched with whatever else this loop iteration sends)."""
        if not self.connected:
            await self._ensure_connected()
        reply = await self.send(args)
        return reply

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command on the connected socket; return the future of its reply."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self._outgoing.append(pack(args))
        self._waiting.append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    async def ensure_connected(self) -> None:
        """Connect (once, even when many coroutines ask at the same time)."""
        if not self.connected:
            await self._ensure_connected()

    def close(self) -> None:
        """Close the socket; waiting commands fail with ConnectionError."""
        if self._transport is not None:
            self._closed = self._loop.create_future()
            self._transport.close()

    async def wait_closed(self, timeout: float = 1.0) -> None:
        """Wait (briefly) until the transport reported the socket closed (TLS needs a few
        loop iterations to shut down cleanly)."""
        closed = self._closed
        if closed is not None and not closed.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), timeout)

    # -- connecting -------------------------------------------------------------------------

    async def _ensure_connected(self) -> None:
        if self._connecting is None:
            self._connecting = self._loop.create_future()
            try:
                await self._connect()
            except BaseException as exc:
                self._connecting.set_exception(exc)
                self._connecting.exception()  # retrieved here; waiters re-raise it
                self._connecting = None
                raise
            self._connecting.set_result(None)
            self._connecting = None
        else:
            await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        kwargs = self._kwargs
        self._reader = new_reader()
        self._waiting.clear()
        self._outgoing.clear()
        self._broken = None
        self._sent = self._answered = 0
        timeout = kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout")
        try:
            async with _timeout(timeout):
                if self._config.connection_class is UnixDomainSocketConnection:
                    await self._loop.create_unix_connection(lambda: self, kwargs["path"])
                else:
                    tls = (
                        ssl_context(kwargs)
                        if issubclass(self._config.connection_class, SSLConnection)
                        else None
                    )
                    await self._loop.create_connection(
                        lambda: self,
                        kwargs.get("host", "localhost"),
                        kwargs.get("port", 6379),
                        ssl=tls,
                    )
                await self._handshake()
        except (OSError, asyncio.TimeoutError) as exc:
            self.close()
            self._transport = None
            kind = (
                RedisTimeoutError if isinstance(exc, asyncio.TimeoutError) else RedisConnectionError
            )
            raise kind(f"Error connecting to {self._config.describe()}: {exc}") from exc
        except BaseException:
            self.close()
            self._transport = None
            raise
        self.connections_made += 1

    async def _handshake(self) -> None:
        commands = handshake_commands(self._kwargs)
        futures = [self.send(command) for command in commands]
        for command, future in zip(commands, futures, strict=True):
            try:
                await future
            except ResponseError as exc:
                if command[0] == "AUTH":
                    raise AuthenticationError(str(exc)) from exc
                raise

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while (reply := reader.gets()) is not False:
            self._answered += 1
            if not waiting:  # pragma: no cover - a reply nobody asked for
                self._fail(RedisConnectionError("Redis sent a reply nobody was waiting for"))
                return
            future = waiting.popleft()
            if future.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, ERROR_TYPES):
                future.set_exception(error_from_reply(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        error = self._broken or RedisConnectionError(
            f"Connection to {self._config.describe()} lost" + (f": {exc}" if exc else "")
        )
        self._transport = None
        self._fail(error)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- internals --------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        outgoing = self._outgoing
        if not outgoing:
            return
        if self._transport is None or self._broken is not None:
            self._fail(self._broken or RedisConnectionError("not connected"))
            return
        self._outgoing = []
        self._transport.write(b"".join(outgoing))
        self._sent += len(outgoing)
        if self._timeout and self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timeout:
            self._timer = self._loop.call_later(self._timeout, self._check_timeout, self._answered)

    def _check_timeout(self, answered_before: int) -> None:
        self._timer = None
        if self._answered == self._sent:
            return  # nothing outstanding
        if self._answered == answered_before:
            # No reply at all for socket_timeout seconds while commands wait: the stream
            # position is unknown, so the connection cannot be reused.
            self._broken = RedisTimeoutError(
                f"Timeout reading from {self._config.describe()} after {self._timeout}s"
            )
            self._fail(self._broken)
            if self._transport is not None:
                self._transport.abort()
            return
        self._arm_timer()

    def _fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        self._outgoing.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _timeout:
    """``async with _timeout(seconds)``: asyncio.timeout on 3.11+, wait_for-free fallback."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False

    async def __aenter__(self) -> None:
        if self._seconds is None:
            return
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError:
            if self._task is not None and hasattr(self._task, "uncancel"):
                self._task.uncancel()
            raise asyncio.TimeoutError
        return False
