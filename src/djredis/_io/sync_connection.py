"""One lean blocking connection to one Redis server: a socket, a RESP reader, nothing else.

Used by one thread at a time (the pool in ``sync_pool`` hands it out). ``request`` writes
commands in one write and reads their replies by the rule of ``progress`` (a deadline
``socket_timeout`` after the write, moved on while bytes keep moving); ``send``/``receive``
are its two halves, for writing to several servers before
reading any. Any failure closes the socket: its place in the reply stream is unknown. A
protocol violation (a malformed, unsolicited or RESP3 reply) raises ``ProtocolError``
naming the server.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.errors import (
    CONNECTION_ERRORS,
    CommandNotSent,
    MaxClientsReached,
    ProtocolError,
    is_max_clients_refusal,
    max_clients_reached,
)
from djredis._io.protocol import (
    BIG_WRITE,
    SAMPLE,
    handshake_commands,
    handshake_failure,
    late_at,
    timeout_message,
    unsent,
)
from djredis._io.resp import SCALARS, new_reader, pack, resp2_violation
from djredis._io.sockets import WOULD_BLOCK, open_socket

__all__ = ["SyncConnection"]

_READ_SIZE = 65536


class SyncConnection:
    """One blocking socket to one Redis server, speaking RESP2.

    The socket itself is non-blocking: ``poll`` does the waiting, against one deadline per
    write, which costs no more system calls than a socket timeout and checks an idle socket
    for free.
    """

    __slots__ = (
        "_buffer",
        "_config",
        "_fresh",
        "_kwargs",
        "_poll",
        "_queued_out",
        "_reader",
        "_sock",
        "_tls",
        "generation",
        "pid",
        "used_at",
    )

    def __init__(self, config: ServerConfig, generation: int = 0) -> None:
        self._config = config
        self._kwargs = config.kwargs()
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._tls = False
        self._reader = new_reader(self._config.reader)
        self._buffer = bytearray(_READ_SIZE)
        # After a big write: the bytes of it still in the kernel's send queue (whose
        # leaving is progress while its replies are awaited); taken by the next read.
        self._queued_out = 0
        # No reply read on this socket yet: a maxclients refusal can only be the first.
        self._fresh = False
        # The pool's count of connections opened so far when this one was opened.
        self.generation = generation
        self.pid = os.getpid()
        # time.monotonic() when it was last given back to the pool (health checks).
        self.used_at = time.monotonic()

    @property
    def connected(self) -> bool:
        """Whether the socket is open."""
        return self._sock is not None

    def connect(self) -> None:
        """Open the socket, authenticate and select the database, within connect_timeout.

        Nothing of the caller's command has been sent when this fails: a refused or broken
        connection raises ``CommandNotSent``, a timeout ``TimeoutError``.
        """
        kwargs, config = self._kwargs, self._config
        timeout = config.connect_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        where = config.describe()
        sock, self._tls = open_socket(config, kwargs, deadline)
        self._sock = sock
        self._poll.register(sock, select.POLLIN)
        self._reader = new_reader(self._config.reader)
        self._fresh = True
        commands = handshake_commands(kwargs)
        if not commands:
            return
        try:
            replies = self.request(commands, deadline)
        except RedisTimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {where} (handshake)") from exc
        except (ProtocolError, MaxClientsReached):
            raise
        except RedisConnectionError as exc:
            raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
        failure = handshake_failure(commands, replies, where)
        if failure is not None:
            self.close()
            raise failure

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
        has sent nothing unasked (either way it is closed here)."""
        sock = self._sock
        if sock is None:
            return False
        if not self._poll.poll(0):
            return True
        try:
            sock.recv(1)
        except WOULD_BLOCK:  # a TLS record with no data in it (e.g. a session ticket)
            return True
        except OSError:
            pass
        # b"" (closed by the server), an error, or a reply nobody asked for (the stream is
        # out of step): the socket goes, before anything was written on it.
        self.close()
        return False

    def request(
        self, commands: Sequence[tuple[Any, ...]], deadline: float | None = None
    ) -> list[Any]:
        """Send ``commands`` in one write and return their replies, error replies included
        (as objects, not raised: the caller decides which error counts).

        Every reply must arrive by ``deadline`` (default: ``socket_timeout`` from now).
        Any failure closes the connection: its place in the reply stream is unknown.
        """
        return self.receive(len(commands), self.send(commands, deadline))

    def send(
        self, commands: Sequence[tuple[Any, ...]], deadline: float | None = None
    ) -> float | None:
        """Write ``commands`` in one write; return the deadline for their replies."""
        sock = self._sock
        if sock is None:
            raise CommandNotSent(f"Not connected to {self._config.describe()}")
        data = pack(commands[0]) if len(commands) == 1 else b"".join(map(pack, commands))
        # From the write, not before the packing: packing a 300 MB value takes a while.
        if deadline is None and self._config.socket_timeout is not None:
            deadline = time.monotonic() + self._config.socket_timeout
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
            error = self._failed(exc)
            if error is exc:
                raise
            raise error from exc
        return deadline

    def receive(self, count: int, deadline: float | None) -> list[Any]:
        """Read the replies to the ``count`` commands just sent, by ``deadline``."""
        sock = self._sock
        if sock is None:
            raise RedisConnectionError(f"Not connected to {self._config.describe()}")
        try:
            return self._read(sock, count, deadline)
        except BaseException as exc:
            error = self._failed(exc)
            if error is exc:
                raise
            raise error from exc

    def _failed(self, exc: BaseException) -> BaseException:
        """Close the connection (its place in the reply stream is lost) and return what the
        caller should see for ``exc``."""
        self.close()
        if isinstance(exc, TimeoutError):
            return RedisTimeoutError(
                timeout_message(self._config.describe(), self._config.socket_timeout)
            )
        if isinstance(exc, OSError):
            return RedisConnectionError(f"Error talking to {self._config.describe()}: {exc}")
        return exc

    def _send_rest(
        self, sock: socket.socket, view: memoryview, deadline: float | None
    ) -> float | None:
        """Write the rest of a request the socket did not take at once (a big value) and
        return the deadline for its replies: the write may take as long as it keeps
        moving (``progress.late_at``), and the replies are then owed as after any write."""
        timeout = self._config.socket_timeout
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

    def _read(self, sock: socket.socket, wanted: int, deadline: float | None) -> list[Any]:
        replies: list[Any] = []
        reader, buffer, poll = self._reader, self._buffer, self._poll
        # Bytes received, and as many as when the deadline was last set: a reply that keeps
        # arriving moves its deadline on (``progress.late_at``); a small one never does.
        first, moved, seen = deadline, 0, 0
        queued, sent_moved = self._queued_out, 0
        if queued:
            self._queued_out = 0
        while True:
            try:
                reply = reader.gets()
            except Exception as exc:  # hiredis.ProtocolError, ValueError, RecursionError...
                raise self._violation(f"malformed reply ({type(exc).__name__}: {exc})") from exc
            if reply is False:
                if not (self._tls and sock.pending()):  # type: ignore[attr-defined]
                    if deadline is None:
                        poll.poll()
                    else:
                        now = time.monotonic()
                        if moved != seen and first is not None:
                            seen = moved
                            deadline = self._later(first, moved + sent_moved, now, deadline)
                        remaining = deadline - now
                        if remaining <= 0:
                            raise TimeoutError
                        if queued and first is not None:
                            deadline, queued, sent_moved = self._watch_queue(
                                sock, first, moved, deadline, queued, sent_moved
                            )
                        elif not poll.poll(remaining * 1000.0):
                            raise TimeoutError
                try:
                    size = sock.recv_into(buffer)
                except WOULD_BLOCK:
                    continue
                if not size:
                    raise RedisConnectionError(f"Connection closed by {self._config.describe()}")
                moved += size
                try:
                    reader.feed(buffer, 0, size)
                except Exception as exc:
                    raise self._violation(f"malformed reply ({exc})") from exc
                continue
            if type(reply) not in SCALARS:
                if problem := resp2_violation(reply):
                    raise self._violation(problem)
                if self._fresh and not replies and is_max_clients_refusal(reply):
                    raise max_clients_reached(self._config.describe())  # nothing ran
            replies.append(reply)
            if len(replies) == wanted:
                self._fresh = False
                try:
                    extra = reader.gets()
                except Exception:
                    extra = True
                if extra is not False:
                    raise self._violation("more replies than commands sent")
                return replies

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
        timeout = self._config.socket_timeout
        if timeout is None:
            return deadline, 0, sent_moved
        poll = self._poll
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if poll.poll(min(remaining, timeout * SAMPLE) * 1000.0):
                return deadline, queued, sent_moved
            now_queued = unsent(sock)
            if now_queued < queued:
                sent_moved += queued - now_queued
                queued = now_queued
                deadline = late_at(first, moved + sent_moved, time.monotonic(), timeout)

    def _later(self, first: float, moved: int, now: float, deadline: float) -> float:
        timeout = self._config.socket_timeout
        return deadline if timeout is None else late_at(first, moved, now, timeout)

    def _wait(self, sock: socket.socket, event: int, deadline: float | None) -> None:
        poll = select.poll()
        poll.register(sock, event)
        if deadline is None:
            poll.poll()
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poll.poll(remaining * 1000.0):
            raise TimeoutError

    def _violation(self, what: str) -> ProtocolError:
        return ProtocolError(
            f"Protocol error from {self._config.describe()}: {what}; "
            "is LOCATION pointing at a Redis server?"
        )

    def close(self) -> None:
        """Close the socket. Safe in a forked child too: closing the child's copy of the
        descriptor sends nothing to the server (no shutdown, no TLS close_notify)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._poll.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
