"""The core's ``Session`` read on an event loop: the exclusive mode of ``aio.AsyncConnection``.

``AsyncSession`` drives the socket-free reading plans of ``protocol.Session`` (a write's
replies and subscription confirmations, pushed messages, a new socket's opening) on the
running loop: whenever a plan needs bytes it waits on a future the connection's
``data_received`` resolves, until the plan's deadline (moved on while a big reply keeps
arriving: ``Session.later``). The opening of both modes is read this way; the exclusive
mode's calls (``call``, ``subscribe``, ``get_message``...) are all read this way, one task
at a time (their promises: ``djredis._io.dedicated``).

It is one half of ``AsyncConnection`` (``aio``), which owns the socket: the attributes
declared below are that class's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from djredis._core.driver import Plan, adrive
from djredis._io.protocol import Message, Session, check_call, checked
from djredis._io.resp import pack

__all__ = ["AsyncSession", "wake"]


class _Quiet(Exception):
    """No message came within ``get_message``'s timeout (nothing is broken)."""


class AsyncSession(Session):
    """The exclusive mode's calls, and the reading of the core's plans on the loop."""

    # Owned by AsyncConnection (the socket): whether it was made exclusive, its transport,
    # why it is unusable, the task waiting for bytes, bytes nobody asked for, whether it
    # is connected, and a socket open or lost but not closed by us. Slots, as every
    # attribute of AsyncConnection: read on every command, they must stay cheap to read.
    __slots__ = ("_failure", "_held", "_transport", "_unasked", "_waiter", "connected", "exclusive")
    exclusive: bool
    _transport: asyncio.Transport | None
    _failure: Exception | None
    _waiter: asyncio.Future[bool] | None
    _unasked: bool
    connected: bool
    _held: bool

    async def ensure_connected(self) -> None:
        """Open the socket and run its opening plan (``AsyncConnection``)."""
        raise NotImplementedError

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
        try:
            message: Message = await self._read(self.next_message(), deadline, idle=True)
        except _Quiet:
            return None
        except Exception as exc:  # cancelled: nothing was written, nothing is owed
            error = self.broken(exc)
            if error is exc:
                raise
            raise error from exc
        return message

    async def _subscribe(self, command: str, names: Sequence[str | bytes]) -> None:
        await self._ready(connect=not command.endswith("UNSUBSCRIBE"))
        commands, confirmations = self.subscription(command, names)
        if commands:
            replies = await self._talk(commands, len(commands) - 1, confirmations, None)
            if replies:
                self.id = int(checked(replies[0]))

    async def _ready(self, *, connect: bool = True) -> None:
        """Report a pending gap; replace a socket the server closed while idle, or one that
        received a reply nobody asked for; connect (and re-subscribe) if asked."""
        if not self.exclusive:
            raise TypeError("a shared connection sends with send(), not call()")
        self.take_gap()
        if self._held:
            if self._failure is not None or self._transport is None:
                self.lost_while_idle()
            elif self._unasked and not (self.count or self.confirming):
                self.close_socket()  # a reply nobody asked for: the stream is out of step
        if connect and not self.connected:
            await self.ensure_connected()

    async def _talk(
        self,
        commands: Sequence[tuple[Any, ...]],
        replies: int,
        confirmations: int,
        block: float | None = None,
        *,
        deadline: float | None = None,
    ) -> list[Any]:
        """Send ``commands`` in one write and read their answer (``Session.exchange``) by
        ``deadline`` (default: ``block + socket_timeout`` from now)."""
        if deadline is None:
            deadline = self.deadline(asyncio.get_running_loop().time(), block)
        try:
            transport = self._transport
            if transport is None or self._failure is not None:
                raise self._failure or RedisConnectionError("not connected")
            transport.write(b"".join(map(pack, commands)))
            result: list[Any] = await self._read(self.exchange(replies, confirmations), deadline)
        except BaseException as exc:
            error = self.broken(exc, block)
            if error is exc:
                raise
            raise error from exc
        self._unasked = False
        return result

    async def _read(
        self, plan: Plan[None, Any], deadline: float | None, *, idle: bool = False
    ) -> Any:
        """Drive a reading plan of the core, waiting for bytes whenever it yields. At
        ``deadline`` raise ``_Quiet`` if ``idle`` (a wait for messages), else
        TimeoutError, unless the reply is still arriving (``Session.later``)."""
        first, start = deadline, self.received
        loop = asyncio.get_running_loop()

        async def more(_: None) -> None:
            nonlocal deadline
            while not await self._fill(loop, deadline):
                if idle:
                    raise _Quiet
                deadline = self.later(first, start, loop.time())
                if deadline is None:
                    raise TimeoutError

        return await adrive(plan, more)

    async def _fill(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
        """Wait until the socket fed the reader more bytes (True) or ``deadline`` (False)."""
        if self._failure is not None or self._transport is None:
            raise self._failure or RedisConnectionError("not connected")
        waiter = self._waiter = loop.create_future()
        timer = None if deadline is None else loop.call_at(deadline, wake, waiter, False)
        try:
            woken: bool = await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return woken  # after a failure too: the reader may hold a last reply


def wake(future: asyncio.Future[bool], value: bool) -> None:
    """Resolve the future a reader waits on (True: bytes came, False: its deadline)."""
    if not future.done():
        future.set_result(value)
