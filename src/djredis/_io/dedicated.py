"""Connections of their own for blocking reads, pub/sub and invalidation streams.

A ``BZPOPMIN`` that waits five seconds, a ``SUBSCRIBE`` that waits forever, or a
``CLIENT TRACKING`` redirect target must never sit on the multiplexed or pooled
connections: every command queued behind them would wait too, and their socket timeouts
would break the wait (redis-py 8's 5 s default does exactly that to channels_redis).
Components ask for one here, per process (``dedicated``) or per event loop
(``adedicated``), keyed by ``(config, purpose)`` so that two components never share one.

Both kinds speak RESP2 over the same pieces as the pool and the multiplexed connection: the
socket opening and TLS of ``sockets.open_socket``, the handshake of ``handshake`` (nothing
else is written before AUTH/SELECT/SETNAME succeeded), the reader ``config.reader`` names.

Timeouts:

- connecting, the handshake and re-subscribing are bounded by ``connect_timeout``;
- ``call(..., block=b)`` waits for its reply up to ``b + socket_timeout`` (``block=None``:
  ``socket_timeout``; ``block=math.inf``: no bound, for ``BZPOPMIN key 0``), moved on while
  a big reply keeps arriving (``progress``); when the reply does not come, the connection
  is discarded and ``TimeoutError`` raised: the reply may still come, so its place in the
  reply stream is lost;
- ``get_message(timeout)`` returning None breaks nothing: a message half received stays in
  the incremental reader until the rest arrives.

Failures (``ConnectionError`` subclasses, like everywhere in djredis): a protocol violation
discards the connection and raises ``ProtocolError``; a failed connect raises
``CommandNotSent``. Nothing is ever resent once written: a blocking pop whose reply was lost
may have popped (the caller knows whether its command may run twice). An idle connection
is checked before it is written on, and one the server closed is replaced first.

Pub/sub gaps. Redis drops the messages published while a subscriber is disconnected, so
the caller must learn of every gap: the call that finds a subscribed connection broken
(``get_message``, ``ping``, ``subscribe``...) raises ``ConnectionError`` once, with
"messages published meanwhile are lost" in its text. The next call reconnects, fetches the
new ``CLIENT ID`` and re-subscribes every channel and pattern before it does anything else.
Messages received before the break are still handed out first. When the caller itself broke
the connection (an async call cancelled after its command was written, a ``KeyboardInterrupt``
mid-reply), the next call raises that ``ConnectionError`` instead.

A connection is for one thread (or one task) at a time: a component owns its ``purpose``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError

from djredis._config.server import ServerConfig
from djredis._core.driver import drive
from djredis._io.dedicated_async import AsyncDedicatedConnection
from djredis._io.loops import loop_state
from djredis._io.protocol import (
    GAP,
    Message,
    Session,
    Step,
    check_call,
    checked,
    handshake_error,
)
from djredis._io.resp import pack
from djredis._io.sockets import WOULD_BLOCK, open_socket

__all__ = [
    "GAP",
    "AsyncDedicatedConnection",
    "DedicatedConnection",
    "Message",
    "adedicated",
    "dedicated",
]


_READ_SIZE = 65536


class DedicatedConnection(Session):
    """A blocking RESP2 connection of its own, for one thread at a time."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._tls = False
        self._buffer = bytearray(_READ_SIZE)
        self._pid = os.getpid()

    @property
    def connected(self) -> bool:
        """Whether the socket is open (in this process)."""
        return self._sock is not None and self._pid == os.getpid()

    def call(self, *args: Any, block: float | None = None) -> Any:
        """Send one command and return its reply, waiting up to ``block + socket_timeout``.

        An error reply raises the redis-py exception it stands for. While subscribed,
        Redis accepts only PING (see ``ping``) and the (un)subscribe methods.
        """
        check_call(args)
        self._ready()
        (reply,) = self._talk([args], 1, 0, block)
        return checked(reply)

    def client_id(self) -> int:
        """Return the CLIENT ID of the socket in use (connecting first if needed); it
        changes on every reconnect."""
        self._ready()
        if self.id is None:
            (reply,) = self._talk([("CLIENT", "ID")], 1, 0, None)
            self.id = int(checked(reply))
        return self.id

    def ping(self) -> None:
        """PING and wait for the answer (a pong message while subscribed): proof that
        every message published before now has been received."""
        self._ready()
        (reply,) = self._talk([("PING",)], 1, 0, None)
        checked(reply)

    def subscribe(self, *channels: str | bytes) -> None:
        """Subscribe to ``channels``; return once Redis confirmed it."""
        self._subscribe("SUBSCRIBE", channels)

    def psubscribe(self, *patterns: str | bytes) -> None:
        """Subscribe to the channels matching ``patterns``; return once Redis confirmed it."""
        self._subscribe("PSUBSCRIBE", patterns)

    def unsubscribe(self, *channels: str | bytes) -> None:
        """Unsubscribe from ``channels`` (all of them if none is named)."""
        self._subscribe("UNSUBSCRIBE", channels)

    def punsubscribe(self, *patterns: str | bytes) -> None:
        """Unsubscribe from ``patterns`` (all of them if none is named)."""
        self._subscribe("PUNSUBSCRIBE", patterns)

    def get_message(self, timeout: float | None) -> Message | None:
        """Return the next message, or None if none arrived within ``timeout`` seconds
        (None: wait for one). None at once when nothing is subscribed."""
        if self.messages:
            return self.messages.popleft()
        if not (self.channels or self.patterns or self.connected):
            return None
        self._ready()
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        try:
            return cast("Message | None", self._run(self.next_message(), deadline, idle=True))
        except Exception as exc:  # not an interrupt: nothing was written, nothing is owed
            error = self.broken(exc)
            if error is exc:
                raise
            raise error from exc

    def close(self) -> None:
        """Close the socket and forget the subscriptions."""
        self.channels.clear()
        self.patterns.clear()
        self.messages.clear()
        self.gap = None
        self.close_socket()

    # -- internals ------------------------------------------------------------------------------

    def _subscribe(self, command: str, names: Sequence[str | bytes]) -> None:
        self._ready(connect=not command.endswith("UNSUBSCRIBE"))
        commands, confirmations = self.subscription(command, names)
        if commands:
            replies = self._talk(commands, len(commands) - 1, confirmations, None)
            if replies:
                self.id = int(checked(replies[0]))

    def _ready(self, *, connect: bool = True) -> None:
        """Report a pending gap; drop a socket from the parent process or one the server
        closed while idle; connect (and re-subscribe) if asked."""
        if self._pid != os.getpid():
            self.close_socket()  # the parent's conversation: never written on here
            self.messages.clear()
            self._pid = os.getpid()
        self.take_gap()
        sock = self._sock
        if sock is not None and self._poll.poll(0):
            try:
                size = sock.recv_into(self._buffer)
            except WOULD_BLOCK:  # a TLS record with no data in it
                size = -1
            except OSError:
                size = 0
            if size == 0:
                self.lost_while_idle()
            elif size > 0:
                if not (self.count or self.confirming):
                    self.close_socket()  # a reply nobody asked for: the stream is out of step
                else:
                    self._feed(size)
        if connect and self._sock is None:
            self._connect()

    def _connect(self) -> None:
        config = self.config
        timeout = config.connect_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        where = config.describe()
        self.forget()
        sock, self._tls = open_socket(config, self.kwargs, deadline)
        self._sock = sock
        self._poll.register(sock, select.POLLIN)

        def step(step: Step) -> list[Any]:
            return self._talk(*step, deadline=deadline)

        try:
            drive(self.opening(), step)
        except BaseException as exc:
            self.close_socket()
            error = handshake_error(where, exc)
            if error is exc:
                raise
            raise error from exc

    def _talk(
        self,
        commands: Sequence[tuple[Any, ...]],
        replies: int,
        confirmations: int,
        block: float | None = None,
        *,
        deadline: float | None = None,
    ) -> list[Any]:
        """Send ``commands`` in one write and read their answer (see ``_exchange``)."""
        sock = cast(socket.socket, self._sock)
        now = time.monotonic()
        if deadline is None:
            deadline = self.deadline(now, block)
        try:
            self._send(sock, b"".join(map(pack, commands)), deadline)
            result: list[Any] = self._run(self.exchange(replies, confirmations), deadline)
        except BaseException as exc:
            error = self.broken(exc, block)
            if error is exc:
                raise
            raise error from exc
        return result

    def _run(
        self, operation: Generator[None, None, Any], deadline: float | None, *, idle: bool = False
    ) -> Any:
        """Drive ``operation``, reading whenever it needs bytes; at ``deadline`` return
        None if ``idle`` (a wait for messages), else raise TimeoutError."""
        first, start = deadline, self.received
        try:
            while True:
                next(operation)
                if not self._fill(deadline):
                    if idle:
                        return None
                    # Late, unless the reply is still arriving (a big value).
                    deadline = self.later(first, start, time.monotonic())
                    if deadline is None:
                        raise TimeoutError
        except StopIteration as stop:
            return stop.value

    def _fill(self, deadline: float | None) -> bool:
        """Feed the reader what the socket has, waiting until ``deadline``; False if
        nothing came."""
        sock = cast(socket.socket, self._sock)
        if not (self._tls and sock.pending()):  # type: ignore[attr-defined]
            if deadline is None:
                self._poll.poll()
            else:
                remaining = max(deadline - time.monotonic(), 0.0)  # 0: look, do not wait
                if not self._poll.poll(remaining * 1000.0):
                    return False
        try:
            size = sock.recv_into(self._buffer)
        except WOULD_BLOCK:
            return True
        if not size:
            raise RedisConnectionError(f"Connection closed by {self.config.describe()}")
        self._feed(size)
        return True

    def _feed(self, size: int) -> None:
        self.received += size
        self.received_at = time.monotonic()
        try:
            self.reader.feed(self._buffer, 0, size)
        except Exception as exc:
            raise self.violation(f"malformed reply ({exc})") from exc

    def _send(self, sock: socket.socket, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
                continue
            except ssl.SSLWantReadError:
                event = select.POLLIN
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                event = select.POLLOUT
            poll = select.poll()
            poll.register(sock, event)
            remaining = None if deadline is None else (deadline - time.monotonic()) * 1000.0
            if (remaining is not None and remaining <= 0) or not poll.poll(remaining):
                raise TimeoutError

    def close_socket(self) -> None:
        # Closing the descriptor sends nothing in a forked child (no shutdown, no TLS
        # close_notify), so the parent's conversation goes on.
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._poll.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
        self.forget()


# -- who gets which connection -----------------------------------------------------------------

_registry: dict[tuple[ServerConfig, str], DedicatedConnection] = {}
_registry_lock = threading.Lock()


def dedicated(config: ServerConfig, purpose: str) -> DedicatedConnection:
    """Return this process's dedicated connection to ``config`` for ``purpose`` (e.g.
    ``"channels.reader"``, ``"near-cache.invalidations"``), created on first use.

    A forked child gets connections of its own: the registry starts empty in it.
    """
    key = (config, purpose)
    conn = _registry.get(key)
    if conn is None:
        with _registry_lock:
            conn = _registry.get(key)
            if conn is None:
                conn = _registry[key] = DedicatedConnection(config)
    return conn


def adedicated(config: ServerConfig, purpose: str) -> AsyncDedicatedConnection:
    """Return the running loop's dedicated connection to ``config`` for ``purpose``,
    created on first use and closed when the loop shuts down.

    Raises RuntimeError when no event loop is running.
    """
    found: AsyncDedicatedConnection = loop_state().shared(
        (AsyncDedicatedConnection, config, purpose), lambda: AsyncDedicatedConnection(config)
    )
    return found


def _after_fork_in_child() -> None:
    global _registry_lock
    # The parent's lock may have been held by a thread that does not exist here.
    _registry_lock = threading.Lock()
    for conn in _registry.values():
        conn.close_socket()
    _registry.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_at_exit() -> None:
    for conn in list(_registry.values()):
        conn.close()
