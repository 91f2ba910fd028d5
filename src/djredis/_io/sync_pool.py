"""Lean blocking connections for djredis's own commands: a socket, a RESP reader, a pool.

redis-py 8 spends most of a cache hit outside the network: per-command observability
hooks, event dispatch, retry wrappers and a pool checkout that records metrics cost more
than the round trip itself on loopback. djredis's operations only need "send these
commands, read that many replies", so they run over this minimal connection; the redis-py
client from ``get_redis_connection()`` keeps its own pool for everything else.

- Each connection is used by one thread at a time (checked out of ``SyncPool``); idle ones
  are kept LIFO, so a quiet process keeps one warm socket.
- A reply that does not arrive within ``socket_timeout`` raises ``TimeoutError`` and the
  socket is discarded (its position in the reply stream is unknown).
- After ``fork()`` the child never touches the parent's sockets: the pool notices the new
  pid and starts empty.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import DEFAULT_MAX_CONNECTIONS, ServerConfig
from djredis._io.handshake import handshake_commands, ssl_context
from djredis._io.resp import ERROR_TYPES, new_reader, pack
from djredis._io.wire import eval_fallback, finish, wire

if TYPE_CHECKING:
    from djredis._core.commands import Batch, Call, Eval

__all__ = ["SyncConnection", "SyncPool", "disconnect_pools", "execute_on", "pool_for"]

_READ_SIZE = 65536


class SyncConnection:
    """One blocking socket to one Redis server, speaking RESP2."""

    __slots__ = ("_buffer", "_config", "_kwargs", "_reader", "_sock", "pid")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._kwargs = config.kwargs()
        self._sock: socket.socket | None = None
        self._reader = new_reader()
        self._buffer = bytearray(_READ_SIZE)
        self.pid = os.getpid()

    @property
    def connected(self) -> bool:
        """Whether the socket is open."""
        return self._sock is not None

    def connect(self) -> None:
        """Open the socket, authenticate and select the database."""
        kwargs = self._kwargs
        timeout = kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout")
        where = self._config.describe()
        try:
            if self._config.connection_class is UnixDomainSocketConnection:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(kwargs["path"])
            else:
                host = kwargs.get("host", "localhost")
                sock = socket.create_connection((host, kwargs.get("port", 6379)), timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if kwargs.get("socket_keepalive", True):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                    options = kwargs.get("socket_keepalive_options")
                    for option, value in dict(options or {}).items():
                        sock.setsockopt(socket.IPPROTO_TCP, option, value)
                if issubclass(self._config.connection_class, SSLConnection):
                    sock = ssl_context(kwargs).wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to {where}: {exc}") from exc
        sock.settimeout(kwargs.get("socket_timeout"))
        self._sock = sock
        self._reader = new_reader()
        commands = handshake_commands(kwargs)
        if not commands:
            return
        for command, reply in zip(commands, self.request(commands), strict=True):
            if isinstance(reply, ERROR_TYPES):
                self.close()
                if command[0] == "AUTH":
                    raise AuthenticationError(str(reply))
                raise ResponseError(str(reply))

    def request(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write and return their replies, error replies included
        (as objects, not raised: the caller decides which error counts)."""
        sock = self._sock
        if sock is None:
            raise RedisConnectionError(f"Not connected to {self._config.describe()}")
        try:
            if len(commands) == 1:
                sock.sendall(pack(commands[0]))
            else:
                sock.sendall(b"".join([pack(command) for command in commands]))
            replies: list[Any] = []
            reader, buffer, wanted = self._reader, self._buffer, len(commands)
            while True:
                reply = reader.gets()
                if reply is False:
                    size = sock.recv_into(buffer)
                    if not size:
                        raise RedisConnectionError(
                            f"Connection closed by {self._config.describe()}"
                        )
                    reader.feed(buffer, 0, size)
                    continue
                replies.append(reply)
                if len(replies) == wanted:
                    return replies
        except TimeoutError as exc:
            self.close()
            raise RedisTimeoutError(f"Timeout reading from {self._config.describe()}") from exc
        except OSError as exc:
            self.close()
            raise RedisConnectionError(
                f"Error talking to {self._config.describe()}: {exc}"
            ) from exc
        except BaseException:
            self.close()  # interrupted mid-reply: the stream position is lost
            raise

    def close(self) -> None:
        """Close the socket. Safe in a forked child too: closing the child's copy of the
        descriptor sends nothing to the server (no shutdown, no TLS close_notify)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


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

    def acquire(self) -> SyncConnection:
        """Return an idle connection, or a new (connected) one."""
        if self._pid != os.getpid():
            self._after_fork()
        try:
            return self._idle.pop()
        except IndexError:
            return self._new()

    def release(self, conn: SyncConnection) -> None:
        """Give a connection back; broken ones are dropped."""
        if conn.pid != self._pid:
            return
        if not conn.connected:
            self._forget()
        elif self._blocking:
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

    def disconnect(self) -> None:
        """Close the idle connections (the next command reconnects)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._forget()

    def _new(self) -> SyncConnection:
        with self._condition:
            while self._open >= self._max:
                if not self._blocking:
                    raise RedisConnectionError("Too many connections")
                if not self._condition.wait(self._wait_timeout):
                    raise RedisConnectionError("No connection available.")
                if self._idle:
                    return self._idle.pop()
            self._open += 1
        conn = SyncConnection(self._config)
        try:
            conn.connect()
        except BaseException:
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

    A broken connection (e.g. closed by a Redis restart while idle in the pool) is retried
    once on a new one; a timeout is retried only with ``retry_on_timeout``.
    """
    replies = _request(config, wire(command))
    try:
        return finish(command, replies)
    except NoScriptError:
        if type(command).__name__ != "Eval":
            raise
        return finish(command, _request(config, eval_fallback(command)))  # type: ignore[arg-type]


def _request(config: ServerConfig, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    pool = pool_for(config)
    retry = (
        (RedisConnectionError, RedisTimeoutError)
        if config.kwargs().get("retry_on_timeout")
        else (RedisConnectionError,)
    )
    conn = pool.acquire()
    try:
        replies = conn.request(commands)
    except retry:
        pool.discard(conn)
        conn = pool.acquire()
        try:
            replies = conn.request(commands)
        except BaseException:
            pool.discard(conn)
            raise
    except BaseException:
        pool.discard(conn)
        raise
    pool.release(conn)
    return replies
