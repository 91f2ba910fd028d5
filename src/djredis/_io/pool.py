"""The blocking connections of a process: a pool per server, with an exclusive checkout.

redis-py 8 spends most of a cache hit outside the network: per-command observability
hooks, event dispatch, retry wrappers and a pool checkout that records metrics cost more
than the round trip itself on loopback. djredis's operations only need "send these
commands, read that many replies", so they run over ``blocking.BlockingConnection``; the
redis-py client from ``get_redis_connection()`` keeps its own pool for everything else.

- Each pooled connection is used by one thread at a time (checked out of
  ``BlockingPool``); idle ones are kept LIFO, so a quiet process keeps one warm socket.
- An idle socket is checked before it is written on (one non-blocking ``poll``); one found
  closed by the server is discarded, with every idle socket opened before it (a Redis
  restart kills them all), and the command goes out on another, since Redis never saw it.
  With ``health_check_interval``, an idle socket unused for longer is PINGed first (as
  redis-py does): one whose PONG does not come within ``socket_timeout`` is dropped too.
  Each call here is one attempt: whether a failed one is made again is the router's
  decision (``may_resend``, in ``djredis._routing.base``).
- ``dedicated(config, purpose)`` checks out the pool's exclusive connection for
  ``purpose`` (``"channels.reader"``, ``"near-cache.invalidations"``...): one per
  (server, purpose), kept by the pool, never handed to anyone else and not counted in
  ``max_connections``, so a blocking read or a subscription never sits on a pooled socket
  and two components never share one.
- After ``fork()`` the child never touches the parent's sockets: the pool notices the new
  pid and starts empty (its exclusive connections too).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from djredis._config.server import DEFAULT_MAX_CONNECTIONS, ServerConfig
from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import CONNECTION_ERRORS
from djredis._core.once import built_once
from djredis._io.blocking import BlockingConnection
from djredis._io.protocol import eval_fallback, finish, wire

__all__ = [
    "BlockingPool",
    "dedicated",
    "disconnect_pools",
    "execute_on",
    "pool_for",
    "pools",
    "request_many",
]


class BlockingPool:
    """Idle connections to one server, shared by threads, and its exclusive ones;
    fork-aware."""

    def __init__(self, config: ServerConfig) -> None:
        kwargs = config.kwargs()
        self._config = config
        self._idle: list[BlockingConnection] = []
        self._pid = os.getpid()
        self._max = int(kwargs.get("max_connections") or DEFAULT_MAX_CONNECTIONS)
        self._blocking = config.blocking_pool
        self._wait_timeout = kwargs.get("timeout", 20)
        self._open = 0
        self._condition = threading.Condition(threading.Lock())
        # Connections opened so far; an idle one opened no later than ``_dead_upto`` is
        # assumed closed by the server too (found dead: one opened after it).
        self._generation = 0
        self._dead_upto = 0
        # For djredis.metrics, read when scraped (nothing on the command path): how often a
        # caller waited for a connection (BlockingConnectionPool) or was refused one, and
        # connections opened to replace broken ones (``_broken``: not yet replaced).
        self.waits = 0
        self.refusals = 0
        self.reconnects = 0
        self._broken = 0
        # The exclusive connections, by purpose; whether a pooled one was ever opened.
        self._exclusive: dict[str, BlockingConnection] = {}
        self.pooled = False

    def acquire(self) -> BlockingConnection:
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

    def release(self, conn: BlockingConnection) -> None:
        """Give a connection back; broken ones are dropped."""
        if conn.pid != self._pid:
            return
        if not conn.connected:  # it broke in use
            self._forget(broken=True)
            return
        if self._config.health_check_interval:
            conn.used_at = time.monotonic()
        if self._blocking:
            with self._condition:
                self._idle.append(conn)
                self._condition.notify()
        else:
            self._idle.append(conn)

    def discard(self, conn: BlockingConnection) -> None:
        """Close a connection that failed and forget it."""
        conn.close()
        if conn.pid == self._pid:
            self._forget(broken=True)

    def lost(self, conn: BlockingConnection) -> None:
        """Forget a connection that broke in use; idle ones opened before it go too."""
        self._dead_upto = max(self._dead_upto, conn.generation)
        self.discard(conn)

    def disconnect(self) -> None:
        """Close the idle connections (the next command reconnects)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._forget()

    def exclusive(self, purpose: str) -> BlockingConnection:
        """Return the connection of this server kept for ``purpose`` alone, created (not
        connected) on first use."""
        if self._pid != os.getpid():
            self._after_fork()
        conn = self._exclusive.get(purpose)
        if conn is None:
            with self._condition:
                conn = self._exclusive.get(purpose)
                if conn is None:
                    conn = self._exclusive[purpose] = BlockingConnection(self._config)
        return conn

    def close_exclusive(self) -> None:
        """Close the exclusive connections (at exit)."""
        for conn in list(self._exclusive.values()):
            conn.close()

    def _new(self) -> BlockingConnection | None:
        """Open a connection; None when one came back to the idle list meanwhile."""
        with self._condition:
            while self._open >= self._max:
                if not self._blocking:
                    self.refusals += 1
                    raise RedisConnectionError("Too many connections")
                self.waits += 1
                if not self._condition.wait(self._wait_timeout):
                    self.refusals += 1
                    raise RedisConnectionError("No connection available.")
                if self._idle:
                    return None
            self._open += 1
            self._generation += 1
            self.pooled = True
            generation = self._generation
        conn = BlockingConnection(self._config, generation)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            self._forget()
            raise
        with self._condition:
            if self._broken:
                self._broken -= 1
                self.reconnects += 1
        return conn

    @property
    def server(self) -> ServerConfig:
        """The server this pool connects to."""
        return self._config

    def state(self) -> tuple[int, int, int]:
        """Return (open, idle, max_connections) now: what ``djredis.metrics`` reports."""
        return self._open, len(self._idle), self._max

    def _forget(self, broken: bool = False) -> None:
        with self._condition:
            self._open -= 1
            if broken:
                self._broken += 1
            self._condition.notify()

    def _after_fork(self) -> None:
        # The inherited sockets are the parent's conversations: never reuse them here.
        idle, self._idle = self._idle, []
        exclusive, self._exclusive = self._exclusive, {}
        for conn in idle:
            conn.close()
        for conn in exclusive.values():  # its holder may use it again: it reconnects
            conn.session.close_socket()
        self._open = 0
        self._broken = 0
        self._pid = os.getpid()
        self._condition = threading.Condition(threading.Lock())


_pools: dict[ServerConfig, BlockingPool] = {}
_pools_lock = threading.Lock()


@atexit.register
def _close_at_exit() -> None:
    disconnect_pools(list(_pools))
    for pool in list(_pools.values()):
        pool.close_exclusive()


def _after_fork_in_child() -> None:
    global _pools_lock
    # The parent's lock may have been held by a thread that does not exist here; the pools
    # themselves notice the new pid when next used.
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def pool_for(config: ServerConfig) -> BlockingPool:
    """Return the process-wide djredis pool for ``config``, created on first use."""
    pool = _pools.get(config)
    if pool is None:
        pool = built_once(_pools, _pools_lock, config, lambda: BlockingPool(config))
    return pool


def pools() -> list[BlockingPool]:
    """Return this process's djredis pools (one per server that opened a pooled
    connection), for ``djredis.metrics``."""
    return [pool for pool in list(_pools.values()) if pool.pooled]


def dedicated(config: ServerConfig, purpose: str) -> BlockingConnection:
    """Return this process's exclusive connection to ``config`` for ``purpose``, created
    on first use (``BlockingPool.exclusive``). A forked child gets connections of its own.
    """
    return pool_for(config).exclusive(purpose)


def disconnect_pools(configs: Iterable[ServerConfig]) -> None:
    """Close the idle djredis connections to these servers."""
    for config in configs:
        pool = _pools.get(config)
        if pool is not None:
            pool.disconnect()


def execute_on(config: ServerConfig, command: Call | Batch | Eval) -> Any:
    """Run one command description on ``config``'s server, in one attempt, and return its
    result. Whether a failed attempt may be made again is the router's decision
    (``djredis._routing.base.send_sync``)."""
    replies = _request(config, wire(command))
    try:
        return finish(command, replies)
    except NoScriptError:
        if type(command) is not Eval:
            raise
        # NOSCRIPT: Redis refused the EVALSHA without running anything, so EVAL is safe.
        return finish(command, _request(config, eval_fallback(command)))


def _request(config: ServerConfig, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    pool = pool_for(config)
    conn = pool.acquire()  # connects if need be: a failure there is CommandNotSent
    try:
        replies = conn.request(commands)
    except CONNECTION_ERRORS as exc:
        _give_back(pool, conn, exc)
        raise
    except BaseException:
        pool.discard(conn)
        raise
    pool.release(conn)
    return replies


def request_many(
    batches: Mapping[ServerConfig, Sequence[tuple[Any, ...]]],
) -> dict[ServerConfig, list[Any] | Exception]:
    """Write every server's commands, then read every server's replies: one round trip to
    all of them at once (a Redis Cluster command spanning nodes). Each server's outcome is
    its replies (error replies as objects) or the connection error it met; one attempt."""
    outcomes: dict[ServerConfig, list[Any] | Exception] = {}
    sent: list[tuple[ServerConfig, BlockingPool, BlockingConnection, int, float | None]] = []
    try:
        for config, commands in batches.items():
            pool = pool_for(config)
            try:
                conn = pool.acquire()
            except CONNECTION_ERRORS as exc:
                outcomes[config] = exc
                continue
            try:
                deadline = conn.send(commands)
            except CONNECTION_ERRORS as exc:
                _give_back(pool, conn, exc)
                outcomes[config] = exc
                continue
            sent.append((config, pool, conn, len(commands), deadline))
        while sent:
            config, pool, conn, count, deadline = sent.pop(0)
            try:
                outcomes[config] = conn.receive(count, deadline)
            except CONNECTION_ERRORS as exc:
                _give_back(pool, conn, exc)
                outcomes[config] = exc
                continue
            pool.release(conn)
    finally:
        for _, pool, conn, _, _ in sent:  # interrupted: their replies were never read
            pool.discard(conn)
    return outcomes


def _give_back(pool: BlockingPool, conn: BlockingConnection, exc: Exception) -> None:
    if type(exc) is RedisConnectionError:  # closed or reset: not a timeout or a violation
        pool.lost(conn)
    else:
        pool.discard(conn)
