"""Lean blocking connections for djredis's own commands: a socket, a RESP reader, a pool.

redis-py 8 spends most of a cache hit outside the network: per-command observability
hooks, event dispatch, retry wrappers and a pool checkout that records metrics cost more
than the round trip itself on loopback. djredis's operations only need "send these
commands, read that many replies", so they run over this minimal connection; the redis-py
client from ``get_redis_connection()`` keeps its own pool for everything else.

- Each connection is used by one thread at a time (checked out of ``SyncPool``); idle ones
  are kept LIFO, so a quiet process keeps one warm socket.
- Timeouts: opening a connection (TCP, TLS, AUTH/SELECT/SETNAME) is bounded by
  ``connect_timeout``; all replies to one write must arrive within ``socket_timeout`` of
  that write (one deadline per write, not per ``recv``), else ``TimeoutError`` and the
  socket is discarded (its position in the reply stream is unknown).
- Resending follows ``may_resend``: an idle socket is checked before it is written on (one
  non-blocking ``poll``); one found closed by the server is discarded, with every idle
  socket opened before it (a Redis restart kills them all), and the command goes out on
  another, since Redis never saw it. Once written, a command is resent only if it reads.
  With ``health_check_interval``, an idle socket unused for longer is PINGed first (as
  redis-py does): one whose PONG does not come within ``socket_timeout`` is dropped too.
- A protocol violation (a malformed reply, a RESP3 type, an unsolicited reply) discards
  the connection and raises ``ProtocolError`` naming the server.
- After ``fork()`` the child never touches the parent's sockets: the pool notices the new
  pid and starts empty.
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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import DEFAULT_MAX_CONNECTIONS, ServerConfig
from djredis._core.errors import CONNECTION_ERRORS, CommandNotSent, ProtocolError, may_resend
from djredis._io.handshake import handshake_commands
from djredis._io.resp import ERROR_TYPES, new_reader, pack
from djredis._io.sockets import WOULD_BLOCK, open_socket
from djredis._io.wire import eval_fallback, finish, wire

if TYPE_CHECKING:
    from djredis._core.commands import Batch, Call, Eval

__all__ = ["SyncConnection", "SyncPool", "disconnect_pools", "execute_on", "pool_for"]

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
        "_kwargs",
        "_poll",
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
        commands = handshake_commands(kwargs)
        if not commands:
            return
        try:
            replies = self.request(commands, deadline)
        except RedisTimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {where} (handshake)") from exc
        except ProtocolError:
            raise
        except RedisConnectionError as exc:
            raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ERROR_TYPES):
                self.close()
                if command[0] == "AUTH":
                    raise AuthenticationError(str(reply))
                raise ResponseError(str(reply))

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
        sock = self._sock
        if sock is None:
            raise CommandNotSent(f"Not connected to {self._config.describe()}")
        if deadline is None and self._config.socket_timeout is not None:
            deadline = time.monotonic() + self._config.socket_timeout
        data = pack(commands[0]) if len(commands) == 1 else b"".join(map(pack, commands))
        try:
            try:
                sent = sock.send(data)
            except WOULD_BLOCK:
                sent = 0
            if sent < len(data):
                self._send_rest(sock, memoryview(data)[sent:], deadline)
            return self._read(sock, len(commands), deadline)
        except TimeoutError as exc:
            self.close()
            raise RedisTimeoutError(
                f"Timeout reading from {self._config.describe()}: no reply within "
                f"socket_timeout ({self._config.socket_timeout} s)"
            ) from exc
        except OSError as exc:
            self.close()
            raise RedisConnectionError(
                f"Error talking to {self._config.describe()}: {exc}"
            ) from exc
        except BaseException:
            self.close()  # interrupted mid-reply: the stream position is lost
            raise

    def _send_rest(self, sock: socket.socket, view: memoryview, deadline: float | None) -> None:
        while view:
            try:
                view = view[sock.send(view) :]
            except ssl.SSLWantReadError:
                self._wait(sock, select.POLLIN, deadline)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self._wait(sock, select.POLLOUT, deadline)

    def _read(self, sock: socket.socket, wanted: int, deadline: float | None) -> list[Any]:
        replies: list[Any] = []
        reader, buffer, poll = self._reader, self._buffer, self._poll
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
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not poll.poll(remaining * 1000.0):
                            raise TimeoutError
                try:
                    size = sock.recv_into(buffer)
                except WOULD_BLOCK:
                    continue
                if not size:
                    raise RedisConnectionError(f"Connection closed by {self._config.describe()}")
                try:
                    reader.feed(buffer, 0, size)
                except Exception as exc:
                    raise self._violation(f"malformed reply ({exc})") from exc
                continue
            if type(reply) not in _RESP2_SCALARS and not _is_resp2(reply):
                raise self._violation(f"a {type(reply).__name__} reply, not RESP2")
            replies.append(reply)
            if len(replies) == wanted:
                try:
                    extra = reader.gets()
                except Exception:
                    extra = True
                if extra is not False:
                    raise self._violation("more replies than commands sent")
                return replies

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


# What a RESP2 reply may be made of; hiredis turns RESP3 types into dict, float, bool...
_RESP2_SCALARS = frozenset({bytes, int, type(None)})


def _is_resp2(reply: Any) -> bool:
    """Whether ``reply`` holds only RESP2 types (arrays checked without recursion)."""
    stack = [reply]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list:
            stack.extend(item)
        elif kind not in _RESP2_SCALARS and not isinstance(item, ERROR_TYPES):
            return False
    return True


class SyncPool:
    """Idle connections to one server, shared by threads; fork-aware."""

    def __init__(self, config: ServerConfig) -> None:
        kwargs = config.kwargs()
        self._config = config
        self._idle: list[SyncConnection] = []
        self._pid = os.getpid()
        self._max = int(kwargs.get("max_connections") or DEFAULT_MAX_CONNECTIONS)
        self._blocking = config.pool_class.__name__ == "BlockingConnectionPool" or any(
            cls.__name__ == "BlockingConnectionPool" for cls in config.pool_class.__mro__
        )
        self._wait_timeout = kwargs.get("timeout", 20)
        self._open = 0
        self._condition = threading.Condition(threading.Lock())
        # Connections opened so far; an idle one opened no later than ``_dead_upto`` is
        # assumed closed by the server too (found dead: one opened after it).
        self._generation = 0
        self._dead_upto = 0

    def acquire(self) -> SyncConnection:
        """Return a usable idle connection, or a new (connected) one.

        Idle sockets the server has closed are dropped here, before anything is written
        on them, so taking another is always safe. With ``health_check_interval``, one idle
        for longer is PINGed first (as redis-py does), and dropped if the PONG is late.
        """
        if self._pid != os.getpid():
            self._after_fork()
        idle = self._idle
        interval = self._config.health_check_interval
        while True:
            while idle:
                try:
                    conn = idle.pop()
                except IndexError:
                    break
                if (
                    conn.generation > self._dead_upto
                    and conn.usable()
                    and (
                        not interval
                        or time.monotonic() - conn.used_at <= interval
                        or conn.healthy()
                    )
                ):
                    return conn
                if conn.generation > self._dead_upto:  # closed or gone: so are its elders
                    self._dead_upto = conn.generation
                self.discard(conn)
            new = self._new()
            if new is not None:
                return new

    def release(self, conn: SyncConnection) -> None:
        """Give a connection back; broken ones are dropped."""
        if conn.pid != self._pid:
            return
        if not conn.connected:
            self._forget()
            return
        if self._config.health_check_interval:
            conn.used_at = time.monotonic()
        if self._blocking:
            with self._condition:
                self._idle.append(conn)
                self._condition.notify()
        else:
            self._idle.append(conn)

    def discard(self, conn: SyncConnection) -> None:
        """Close a connection that failed and forget it."""
        conn.close()
        if conn.pid == self._pid:
            self._forget()

    def lost(self, conn: SyncConnection) -> None:
        """Forget a connection that broke in use; idle ones opened before it go too."""
        self._dead_upto = max(self._dead_upto, conn.generation)
        self.discard(conn)

    def disconnect(self) -> None:
        """Close the idle connections (the next command reconnects)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._forget()

    def _new(self) -> SyncConnection | None:
        """Open a connection; None when one came back to the idle list meanwhile."""
        with self._condition:
            while self._open >= self._max:
                if not self._blocking:
                    raise RedisConnectionError("Too many connections")
                if not self._condition.wait(self._wait_timeout):
                    raise RedisConnectionError("No connection available.")
                if self._idle:
                    return None
            self._open += 1
            self._generation += 1
            generation = self._generation
        conn = SyncConnection(self._config, generation)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            self._forget()
            raise
        return conn

    def _forget(self) -> None:
        with self._condition:
            self._open -= 1
            self._condition.notify()

    def _after_fork(self) -> None:
        # The inherited sockets are the parent's conversations: never reuse them here.
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._open = 0
        self._pid = os.getpid()
        self._condition = threading.Condition(threading.Lock())


_pools: dict[ServerConfig, SyncPool] = {}
_pools_lock = threading.Lock()


@atexit.register
def _close_at_exit() -> None:
    disconnect_pools(list(_pools))


def pool_for(config: ServerConfig) -> SyncPool:
    """Return the process-wide djredis pool for ``config``, created on first use."""
    pool = _pools.get(config)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(config)
            if pool is None:
                pool = _pools[config] = SyncPool(config)
    return pool


def disconnect_pools(configs: Iterable[ServerConfig]) -> None:
    """Close the idle djredis connections to these servers."""
    for config in configs:
        pool = _pools.get(config)
        if pool is not None:
            pool.disconnect()


def execute_on(config: ServerConfig, command: Call | Batch | Eval) -> Any:
    """Run one command description on ``config``'s server and return its result.

    It is sent again (at most ``config.retries`` times) only when ``may_resend`` allows:
    it surely did not reach Redis, or it only reads.
    """
    replies = _request(config, wire(command), command.write)
    try:
        return finish(command, replies)
    except NoScriptError:
        if type(command).__name__ != "Eval":
            raise
        # NOSCRIPT: Redis refused the EVALSHA without running anything, so EVAL is safe.
        return finish(command, _request(config, eval_fallback(command), command.write))  # type: ignore[arg-type]


def _request(config: ServerConfig, commands: tuple[tuple[Any, ...], ...], write: bool) -> list[Any]:
    pool = pool_for(config)
    resends = config.retries
    while True:
        conn: SyncConnection | None = None
        try:
            conn = pool.acquire()
            replies = conn.request(commands)
        except CONNECTION_ERRORS as exc:
            if conn is None:
                pass
            elif type(exc) is RedisConnectionError:  # closed or reset: not a timeout or a violation
                pool.lost(conn)
            else:
                pool.discard(conn)
            if resends <= 0 or not may_resend(
                exc, write=write, retry_on_timeout=config.retry_on_timeout
            ):
                raise
            resends -= 1
            continue
        except BaseException:
            if conn is not None:
                pool.discard(conn)
            raise
        pool.release(conn)
        return replies
