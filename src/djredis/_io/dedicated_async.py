"""The asyncio twin of the exclusive ``BlockingConnection`` (see ``djredis._io.blocking``)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Generator, Sequence
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.driver import adrive
from djredis._core.errors import CommandNotSent
from djredis._io.loops import loop_state
from djredis._io.protocol import (
    Message,
    Session,
    Step,
    check_call,
    checked,
    handshake_error,
    tls_handshake_error,
)
from djredis._io.resp import pack

__all__ = ["AsyncDedicatedConnection", "adedicated"]


class _Socket(asyncio.Protocol):
    """One socket of an ``AsyncDedicatedConnection``: feeds its reader, wakes its reader."""

    def __init__(self, owner: AsyncDedicatedConnection) -> None:
        self.reader = owner.reader
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.error: Exception | None = None  # why the socket is unusable
        self.unasked = False  # bytes arrived while nobody was reading
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        owner = self.owner
        owner.received += len(data)
        owner.received_at = self.closed.get_loop().time()
        try:
            self.reader.feed(data)
        except Exception as exc:
            self.error = self.owner.violation(f"malformed reply ({exc})")
            self.abort()
        if self.waiter is None:
            self.unasked = True
        else:
            _wake(self.waiter, True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = RedisConnectionError(
                f"Connection closed by {self.owner.config.describe()}" + (f": {exc}" if exc else "")
            )
        self.transport = None
        if self.waiter is not None:
            _wake(self.waiter, True)
        if not self.closed.done():
            self.closed.set_result(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _wake(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class AsyncDedicatedConnection(Session):
    """An asyncio RESP2 connection of its own, for one task at a time, on one loop.

    It holds its loop only while a socket is open, so a finished loop is never kept alive.
    """

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self._socket: _Socket | None = None

    @property
    def connected(self) -> bool:
        """Whether the socket is open."""
        return self._socket is not None and self._socket.error is None

    async def call(self, *args: Any, block: float | None = None) -> Any:
        """Send one command and return its reply, waiting up to ``block + socket_timeout``.

        Cancelled after the command was written, the connection is discarded (the reply
        would come later): a blocking pop never pops for nobody, and no later call gets
        another's reply.
        """
        check_call(args)
        await self._ready()
        (reply,) = await self._talk([args], 1, 0, block)
        return checked(reply)

    async def client_id(self) -> int:
        """Return the CLIENT ID of the socket in use (connecting first if needed)."""
        await self._ready()
        if self.id is None:
            (reply,) = await self._talk([("CLIENT", "ID")], 1, 0, None)
            self.id = int(checked(reply))
        return self.id

    async def ping(self) -> None:
        """PING and wait for the answer (a pong message while subscribed)."""
        await self._ready()
        (reply,) = await self._talk([("PING",)], 1, 0, None)
        checked(reply)

    async def subscribe(self, *channels: str | bytes) -> None:
        """Subscribe to ``channels``; return once Redis confirmed it."""
        await self._subscribe("SUBSCRIBE", channels)

    async def psubscribe(self, *patterns: str | bytes) -> None:
        """Subscribe to the channels matching ``patterns``; return once Redis confirmed it."""
        await self._subscribe("PSUBSCRIBE", patterns)

    async def unsubscribe(self, *channels: str | bytes) -> None:
        """Unsubscribe from ``channels`` (all of them if none is named)."""
        await self._subscribe("UNSUBSCRIBE", channels)

    async def punsubscribe(self, *patterns: str | bytes) -> None:
        """Unsubscribe from ``patterns`` (all of them if none is named)."""
        await self._subscribe("PUNSUBSCRIBE", patterns)

    async def get_message(self, timeout: float | None) -> Message | None:
        """Return the next message, or None if none arrived within ``timeout`` seconds.

        Cancelling it loses nothing: no command was written, and bytes received meanwhile
        wait in the reader.
        """
        if self.messages:
            return self.messages.popleft()
        if not (self.channels or self.patterns or self.connected):
            return None
        await self._ready()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        operation = self.next_message()
        try:
            return cast("Message | None", await self._run(operation, deadline, idle=True))
        except Exception as exc:  # cancelled: nothing was written, nothing is owed
            error = self.broken(exc)
            if error is exc:
                raise
            raise error from exc

    async def aclose(self) -> None:
        """Close the socket and forget the subscriptions."""
        self.channels.clear()
        self.patterns.clear()
        self.messages.clear()
        self.gap = None
        sock = self._socket
        self.close_socket()
        if sock is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(sock.closed), 1.0)

    # -- internals ------------------------------------------------------------------------------

    async def _subscribe(self, command: str, names: Sequence[str | bytes]) -> None:
        await self._ready(connect=not command.endswith("UNSUBSCRIBE"))
        commands, confirmations = self.subscription(command, names)
        if commands:
            replies = await self._talk(commands, len(commands) - 1, confirmations, None)
            if replies:
                self.id = int(checked(replies[0]))

    async def _ready(self, *, connect: bool = True) -> None:
        self.take_gap()
        sock = self._socket
        if sock is not None:
            if sock.error is not None or sock.transport is None:
                self.lost_while_idle()
            elif sock.unasked and not (self.count or self.confirming):
                self.close_socket()  # a reply nobody asked for: the stream is out of step
        if connect and self._socket is None:
            await self._connect()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        config, kwargs = self.config, self.kwargs
        timeout = config.connect_timeout
        deadline = None if timeout is None else loop.time() + timeout
        where = config.describe()
        self.forget()
        sock = self._socket = _Socket(self)
        tls = None
        try:
            if config.transport == "unix":
                opening = loop.create_unix_connection(lambda: sock, kwargs["path"])
            else:
                tls = config.ssl_context
                opening = loop.create_connection(
                    lambda: sock, kwargs.get("host", "localhost"), kwargs.get("port", 6379), ssl=tls
                )
            await asyncio.wait_for(opening, timeout)
        except BaseException as exc:
            self.close_socket()
            if tls is not None and isinstance(
                exc, (ssl.SSLError, TimeoutError, asyncio.TimeoutError)
            ):
                raise tls_handshake_error(where, exc, timeout) from exc
            if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # distinct before 3.11
                raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
            if isinstance(exc, (OSError, ValueError)):
                raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
            raise

        async def step(step: Step) -> list[Any]:
            return await self._talk(*step, deadline=deadline)

        try:
            await adrive(self.opening(), step)
        except BaseException as exc:
            self.close_socket()
            error = handshake_error(where, exc)
            if error is exc:
                raise
            raise error from exc

    async def _talk(
        self,
        commands: Sequence[tuple[Any, ...]],
        replies: int,
        confirmations: int,
        block: float | None = None,
        *,
        deadline: float | None = None,
    ) -> list[Any]:
        loop = asyncio.get_running_loop()
        sock = cast(_Socket, self._socket)
        now = loop.time()
        if deadline is None:
            deadline = self.deadline(now, block)
        try:
            if sock.transport is None:
                raise sock.error or RedisConnectionError("not connected")
            sock.transport.write(b"".join(map(pack, commands)))
            result: list[Any] = await self._run(self.exchange(replies, confirmations), deadline)
        except BaseException as exc:
            error = self.broken(exc, block)
            if error is exc:
                raise
            raise error from exc
        sock.unasked = False
        return result

    async def _run(
        self, operation: Generator[None, None, Any], deadline: float | None, *, idle: bool = False
    ) -> Any:
        first, start = deadline, self.received
        try:
            while True:
                next(operation)
                if not await self._fill(deadline):
                    if idle:
                        return None
                    # Late, unless the reply is still arriving (a big value).
                    deadline = self.later(first, start, asyncio.get_running_loop().time())
                    if deadline is None:
                        raise TimeoutError
        except StopIteration as stop:
            return stop.value

    async def _fill(self, deadline: float | None) -> bool:
        """Wait until the socket fed the reader more bytes (True) or ``deadline`` (False)."""
        sock = cast(_Socket, self._socket)
        if sock.error is not None:
            raise sock.error
        loop = asyncio.get_running_loop()
        waiter = sock.waiter = loop.create_future()
        timer = None if deadline is None else loop.call_at(deadline, _wake, waiter, False)
        try:
            woken: bool = await waiter
            return woken
        finally:
            sock.waiter = None
            if timer is not None:
                timer.cancel()

    def close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            if sock.error is None:
                sock.error = RedisConnectionError(f"Connection to {self.config.describe()} closed")
            sock.abort()
        self.forget()


def adedicated(config: ServerConfig, purpose: str) -> AsyncDedicatedConnection:
    """Return the running loop's dedicated connection to ``config`` for ``purpose``,
    created on first use and closed when the loop shuts down.

    Raises RuntimeError when no event loop is running.
    """
    found: AsyncDedicatedConnection = loop_state().shared(
        (AsyncDedicatedConnection, config, purpose), lambda: AsyncDedicatedConnection(config)
    )
    return found
