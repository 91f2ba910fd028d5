"""The blocking shell: one socket to one Redis server, pooled or exclusive.

A ``BlockingConnection`` moves bytes for a ``protocol.Session``, which decides what they
mean. It is used by one thread at a time, in one of two modes:

- pooled (``pool.BlockingPool.acquire``): ``request`` writes commands in one write and
  reads their replies; ``send``/``receive`` are its two halves, for writing to several
  servers before reading any;
- exclusive (``pool.dedicated(config, purpose)``), for what must never sit on a shared
  connection: a ``BZPOPMIN`` that waits five seconds (``call(..., block=5)``), pub/sub
  (``subscribe``, ``get_message``), a ``CLIENT TRACKING`` redirect target.

The socket itself is non-blocking: ``poll`` does the waiting, against one deadline per
write (``protocol``'s timeout rule: a blocking command's reply is owed ``block +
socket_timeout`` after the write; ``block=math.inf`` waits for ever), which costs no more
system calls than a socket timeout and checks an idle socket for free.

Connecting (TCP or a Unix socket, keepalive, TLS, then the handshake and, exclusive, the
subscriptions restored) is bounded by ``connect_timeout``; nothing else is written before
the handshake succeeded, and a failed connect raises ``CommandNotSent``. Any failure in use
closes the socket (its place in the reply stream is unknown) and nothing is resent here: a
blocking pop whose reply was lost may have popped. A protocol violation raises
``ProtocolError`` naming the server. An idle socket is looked at before it is written on:
one the server closed is replaced first (a subscriber hears of the gap, ``protocol.GAP``).

Exclusive, ``get_message(timeout)`` returning None breaks nothing: a message half received
stays in the reader until the rest arrives. After ``fork()`` the child never writes on (or
shuts down) the parent's socket: closing its copy of the descriptor sends nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.driver import drive
from djredis._core.errors import CONNECTION_ERRORS, CommandNotSent
from djredis._io.protocol import (
    BIG_WRITE,
    SAMPLE,
    Message,
    Session,
    Step,
    check_call,
    checked,
    handshake_error,
    late_at,
    tls_handshake_error,
    unsent,
)
from djredis._io.resp import SCALARS, pack

__all__ = ["WOULD_BLOCK", "BlockingConnection", "open_socket"]

_READ_SIZE = 65536

# What a non-blocking socket raises when it has nothing to give or cannot take more yet.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


def open_socket(
    config: ServerConfig, kwargs: Mapping[str, Any], deadline: float | None
) -> tuple[socket.socket, bool]:
    """Open a non-blocking socket to ``config``'s server (TLS wrapped when it asks for it),
    by ``deadline``; return it and whether it is TLS. Nothing is written on it yet.

    A refused or broken connection raises ``CommandNotSent``, a timeout ``TimeoutError``,
    a failed TLS handshake the error ``tls_handshake_error`` words.
    """
    where = config.describe()
    try:
        if config.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                sock.connect(kwargs["path"])
            except OSError:
                sock.close()
                raise
        else:
            host = kwargs.get("host", "localhost")
            sock = socket.create_connection((host, kwargs.get("port", 6379)), _remaining(deadline))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kwargs.get("socket_keepalive", True):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                options = kwargs.get("socket_keepalive_options")
                for option, value in dict(options or {}).items():
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except TimeoutError as exc:
        raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
    except OSError as exc:
        raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
    tls = config.transport == "tls"
    if tls:
        try:
            sock.settimeout(_remaining(deadline))
            context = config.ssl_context
            assert context is not None  # a tls transport has one
            sock = context.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
            with contextlib.suppress(OSError):
                sock.close()
            raise tls_handshake_error(where, exc, config.connect_timeout) from exc
    sock.settimeout(0.0)
    return sock, tls


class BlockingConnection:
    """One blocking socket to one Redis server, speaking RESP2, for one thread at a time."""

    __slots__ = (
        "_buffer",
        "_poll",
        "_queued_out",
        "_sock",
        "_timeout",
        "_tls",
        "generation",
        "pid",
        "session",
        "used_at",
    )

    def __init__(self, config: ServerConfig, generation: int = 0) -> None:
        self.session = Session(config, self._close_sock)
        self._timeout = config.socket_timeout
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._tls = False
        self._buffer = bytearray(_READ_SIZE)
        # After a big write: the bytes of it still in the kernel's send queue (whose
        # leaving is progress while its replies are awaited); taken by the next read.
        self._queued_out = 0
        # The pool's count of connections opened so far when this one was opened.
        self.generation = generation
        self.pid = os.getpid()
        # time.monotonic() when it was last given back to the pool (health checks).
        self.used_at = time.monotonic()

    @property
    def connected(self) -> bool:
        """Whether the socket is open."""
        return self._sock is not None

    @property
    def config(self) -> ServerConfig:
        """The server this connection talks to."""
        return self.session.config

    def connect(self) -> None:
        """Open the socket, then the handshake (and, exclusive, the subscriptions restored),
        within connect_timeout. Nothing of the caller's command has been sent when this
        fails: a refused or broken connection raises ``CommandNotSent``, a timeout
        ``TimeoutError``, a refusal what it means (``protocol.handshake_error``)."""
        session = self.session
        timeout = session.config.connect_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        session.forget()
        self._sock, self._tls = open_socket(session.config, session.kwargs, deadline)
        self._poll.register(self._sock, select.POLLIN)

        def step(step: Step) -> list[Any]:
            commands, replies, confirmations = step
            return self.request(commands, deadline, confirmations=confirmations, wanted=replies)

        try:
            drive(session.opening(), step)
        except BaseException as exc:
            session.close_socket()
            error = handshake_error(session.where, exc)
            if error is exc:
                raise
            raise error from exc

    def close(self) -> None:
        """Close the socket and forget the subscriptions."""
        self.session.forget_subscriptions()
        self.session.close_socket()

    # -- pooled -------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """PING the connection; whether PONG came back within socket_timeout (if not, the
        connection is closed: a half-open socket would have swallowed the caller's command).
        """
        try:
            return self.request((("PING",),)) == [b"PONG"]
        except CONNECTION_ERRORS:
            return False

    def usable(self) -> bool:
        """Whether an idle connection may be written on: the server has not closed it and
        has sent nothing unasked but pub/sub messages (else it is closed here; a
        subscriber is told of the gap)."""
        sock = self._sock
        if sock is None:
            return False
        if not self._poll.poll(0):
            return True
        try:
            size = sock.recv_into(self._buffer)
        except WOULD_BLOCK:  # a TLS record with no data in it (e.g. a session ticket)
            return True
        except OSError:
            size = 0
        session = self.session
        if not size:  # closed by the server (a subscriber hears of it)
            session.lost_while_idle()
            return False
        if not session.pushing:  # a reply nobody asked for: the stream is out of step
            session.close_socket()
            return False
        session.feed(self._buffer, 0, size)
        return True

    def request(
        self,
        commands: Sequence[tuple[Any, ...]],
        deadline: float | None = None,
        *,
        block: float | None = None,
        wanted: int | None = None,
        confirmations: int = 0,
    ) -> list[Any]:
        """Send ``commands`` in one write and return their replies, error replies included
        (as objects, not raised: the caller decides which error counts): ``wanted`` of them
        (default: one per command), then ``confirmations`` subscription confirmations.

        Every reply must arrive by ``deadline`` (default: ``block + socket_timeout`` from
        the write). Any failure closes the connection: its place in the stream is unknown.
        """
        deadline = self.send(commands, deadline, block)
        if confirmations:
            self.session.confirming += confirmations
        count = len(commands) if wanted is None else wanted
        try:  # ``receive``, inlined: this runs for every command
            return self._read(self._sock, count, deadline)  # type: ignore[arg-type]
        except BaseException as exc:
            self._failed(exc, block)

    def send(
        self,
        commands: Sequence[tuple[Any, ...]],
        deadline: float | None = None,
        block: float | None = None,
    ) -> float | None:
        """Write ``commands`` in one write; return the deadline for their replies."""
        sock = self._sock
        if sock is None:
            raise CommandNotSent(f"Not connected to {self.session.where}")
        data = pack(commands[0]) if len(commands) == 1 else b"".join(map(pack, commands))
        # From the write, not before the packing: packing a 300 MB value takes a while.
        if deadline is None:
            if block is None:
                if self._timeout is not None:
                    deadline = time.monotonic() + self._timeout
            else:
                deadline = self.session.deadline(time.monotonic(), block)
        try:
            try:
                sent = sock.send(data)
            except WOULD_BLOCK:
                sent = 0
            if sent < len(data):
                deadline = self._send_rest(sock, memoryview(data)[sent:], deadline)
            if len(data) > BIG_WRITE:
                self._queued_out = unsent(sock)
        except BaseException as exc:
            self._failed(exc, block)
        return deadline

    def receive(self, count: int, deadline: float | None, block: float | None = None) -> list[Any]:
        """Read the replies to the ``count`` commands just sent, by ``deadline``."""
        sock = self._sock
        if sock is None:
            raise RedisConnectionError(f"Not connected to {self.session.where}")
        try:
            return self._read(sock, count, deadline)
        except BaseException as exc:
            self._failed(exc, block)

    def _failed(self, exc: BaseException, block: float | None) -> NoReturn:
        """Close the connection ``exc`` broke (its place in the reply stream is lost) and
        raise what the caller should see (``Session.broken``)."""
        error = self.session.broken(exc, block)
        if error is exc:
            raise exc
        raise error from exc

    # -- exclusive ----------------------------------------------------------------------------

    def call(self, *args: Any, block: float | None = None) -> Any:
        """Send one command and return its reply, waiting up to ``block + socket_timeout``.

        An error reply raises the redis-py exception it stands for. While subscribed,
        Redis accepts only PING (see ``ping``) and the (un)subscribe methods.
        """
        check_call(args)
        self._ready()
        (reply,) = self.request((args,), block=block)
        return checked(reply)

    def client_id(self) -> int:
        """Return the CLIENT ID of the socket in use (connecting first if needed); it
        changes on every reconnect."""
        self._ready()
        session = self.session
        if session.id is None:
            (reply,) = self.request((("CLIENT", "ID"),))
            session.id = int(checked(reply))
        return session.id

    def ping(self) -> None:
        """PING and wait for the answer (a pong message while subscribed): proof that
        every message published before now has been received."""
        self._ready()
        (reply,) = self.request((("PING",),))
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

    @property
    def subscriptions(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """Return the channels and the patterns subscribed to (restored on reconnect)."""
        return self.session.subscriptions

    def get_message(self, timeout: float | None) -> Message | None:
        """Return the next message, or None if none arrived within ``timeout`` seconds
        (None: wait for one). None at once when nothing is subscribed."""
        session = self.session
        if session.messages:
            return session.messages.popleft()
        self._fork_guard()
        if not (session.subscribed or self._sock is not None):
            return None
        self._ready()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._read(cast(socket.socket, self._sock), 0, deadline, idle=True)
        except Exception as exc:  # not an interrupt: nothing was written, nothing is owed
            error = session.broken(exc)
            if error is exc:
                raise
            raise error from exc
        return session.messages.popleft() if session.messages else None

    def _subscribe(self, command: str, names: Sequence[str | bytes]) -> None:
        self._ready(connect=not command.endswith("UNSUBSCRIBE"))
        session = self.session
        commands, confirmations = session.subscription(command, names)
        if commands:
            replies = self.request(commands, wanted=len(commands) - 1, confirmations=confirmations)
            if replies:
                session.id = int(checked(replies[0]))

    def _fork_guard(self) -> None:
        """In a forked child, drop the parent's socket (closing the child's copy of the
        descriptor sends nothing) and the messages it brought."""
        if self.pid != os.getpid():
            self.session.close_socket()
            self.session.messages.clear()
            self.pid = os.getpid()

    def _ready(self, *, connect: bool = True) -> None:
        """Report a pending gap; drop a socket from the parent process or one the server
        closed while idle; connect (and re-subscribe) if asked."""
        self._fork_guard()
        self.session.take_gap()
        self.usable()
        if connect and self._sock is None:
            self.connect()

    # -- moving bytes -------------------------------------------------------------------------

    def _send_rest(
        self, sock: socket.socket, view: memoryview, deadline: float | None
    ) -> float | None:
        """Write the rest of a request the socket did not take at once (a big value) and
        return the deadline for its replies: the write may take as long as it keeps
        moving (``protocol.late_at``), and the replies are then owed as after any write."""
        timeout = self._timeout
        first = deadline
        moved = 0
        while view:
            try:
                sent = sock.send(view)
            except ssl.SSLWantReadError:
                self._wait(sock, select.POLLIN, deadline)
                continue
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self._wait(sock, select.POLLOUT, deadline)
                continue
            view = view[sent:]
            if first is not None and timeout is not None:
                moved += sent
                deadline = late_at(first, moved, time.monotonic(), timeout)
        if deadline is None or timeout is None or not moved:
            return deadline
        return min(deadline, time.monotonic() + timeout)

    def _read(
        self, sock: socket.socket, wanted: int, deadline: float | None, *, idle: bool = False
    ) -> list[Any]:
        """Read until ``wanted`` replies (and the confirmations owed) are in, or, ``idle``,
        until a message is (at ``deadline``: return, nothing is broken)."""
        replies: list[Any] = []
        session = self.session
        reader, buffer, poll = session.reader, self._buffer, self._poll
        # Neither pub/sub nor a fresh socket: a RESP2 scalar is simply the next reply.
        plain = not (session.count or session.confirming or session.fresh)
        # Bytes received, and as many as when the deadline was last set: a reply that keeps
        # arriving moves its deadline on (``protocol.late_at``); a small one never does.
        first, moved, seen = None if idle else deadline, 0, 0
        queued, sent_moved = self._queued_out, 0
        if queued:
            self._queued_out = 0
        while True:
            try:
                reply = reader.gets()
            except Exception as exc:  # hiredis.ProtocolError, ValueError, RecursionError...
                raise session.violation(f"malformed reply ({type(exc).__name__}: {exc})") from exc
            if reply is not False:
                if plain and type(reply) in SCALARS:  # ``settle``'s common case, inlined
                    replies.append(reply)
                    if len(replies) < wanted:
                        continue
                    try:
                        extra = reader.gets()
                    except Exception:
                        extra = True
                    if extra is not False:
                        raise session.violation("more replies than commands sent")
                    return replies
                if session.settle(reply, replies, wanted):
                    return replies
                plain = not (session.pushing or session.fresh)
                continue
            if not (self._tls and sock.pending()):  # type: ignore[attr-defined]
                if deadline is None:
                    poll.poll()
                else:
                    now = time.monotonic()
                    if moved != seen and first is not None and self._timeout is not None:
                        seen = moved
                        deadline = late_at(first, moved + sent_moved, now, self._timeout)
                    remaining = deadline - now
                    if queued and first is not None and remaining > 0:
                        deadline, queued, sent_moved = self._watch_queue(
                            sock, first, moved, deadline, queued, sent_moved
                        )
                    elif remaining <= 0 or not poll.poll(remaining * 1000.0):
                        if idle:
                            return replies
                        raise TimeoutError
            try:
                size = sock.recv_into(buffer)
            except WOULD_BLOCK:
                continue
            if not size:
                raise RedisConnectionError(f"Connection closed by {session.where}")
            moved += size
            try:
                reader.feed(buffer, 0, size)
            except Exception as exc:
                raise session.violation(f"malformed reply ({exc})") from exc

    def _watch_queue(
        self,
        sock: socket.socket,
        first: float,
        moved: int,
        deadline: float,
        queued: int,
        sent_moved: int,
    ) -> tuple[float, int, int]:
        """Wait for reply bytes while a big request is still leaving the send queue
        (``queued`` bytes in it, ``sent_moved`` left it so far): bytes leaving it are
        progress. Return the deadline, queue and count once the socket is readable."""
        timeout = self._timeout
        if timeout is None:
            return deadline, 0, sent_moved
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if self._poll.poll(min(remaining, timeout * SAMPLE) * 1000.0):
                return deadline, queued, sent_moved
            now_queued = unsent(sock)
            if now_queued < queued:
                sent_moved += queued - now_queued
                queued = now_queued
                deadline = late_at(first, moved + sent_moved, time.monotonic(), timeout)

    def _wait(self, sock: socket.socket, event: int, deadline: float | None) -> None:
        poll = select.poll()
        poll.register(sock, event)
        if deadline is None:
            poll.poll()
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poll.poll(remaining * 1000.0):
            raise TimeoutError

    def _close_sock(self) -> None:
        # The one close: ``session.close_socket`` calls it. Closing the descriptor sends
        # nothing in a forked child (no shutdown, no TLS close_notify), so the parent's
        # conversation goes on.
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._poll.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
