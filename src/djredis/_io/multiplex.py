"""One Redis connection shared by every coroutine of an event loop (auto-pipelining).

Commands issued by any number of coroutines during one iteration of the loop are written
to the socket together in a single ``write()``; replies come back in the same order, so
each is handed to the future of the command at the head of the queue. A hundred
concurrent requests therefore need one connection, not a hundred, and a burst of commands
costs one system call each way. A command sent while nothing is in flight is written at
once, in its caller's step, rather than one loop iteration later.

Only request/reply commands go through here. Blocking commands (BLPOP...), pub/sub and
invalidation streams use a connection of their own (``djredis._io.pool.dedicated``); user code
doing WATCH transactions gets a ``redis.asyncio`` client
(``djredis.get_async_redis_connection()``).

Connecting (TCP/TLS, then AUTH/SELECT/CLIENT SETNAME) runs in a task of its own, bounded
by ``connect_timeout``; callers wait for it shielded, so a cancelled caller never cancels
the others. Nothing but the handshake is written before the handshake has succeeded.

Failure handling (``_errors.may_resend`` decides what may be sent again):

- commands queued but not yet written when the connection fails get ``CommandNotSent``;
- commands written fail with ``ConnectionError``; a write's replies must come by the
  rule of ``progress`` (no silence longer than ``socket_timeout``, at least ``MIN_RATE``
  on average, a big write's bytes leaving counting as progress), or the connection is
  aborted (its place in the reply stream is lost) and they fail with ``TimeoutError``;
- a reply the reader cannot parse, a reply nobody asked for, or a RESP3 type on this RESP2
  connection discards the connection; the commands waiting fail with ``ProtocolError``;
- with ``health_check_interval``, the first write after an idle period longer than that is
  a PING alone; the commands queued meanwhile are written once its PONG is in, and get
  ``CommandNotSent`` if it never comes (so a half-open socket costs them nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.errors import (
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

__all__ = ["MultiplexedConnection", "reconnects"]
reconnects: Counter[ServerConfig] = Counter()  # connections made again, for djredis.metrics


# What a RESP2 reply can be once parsed; hiredis turns RESP3 maps, doubles and booleans
# into dict, float and bool, which a RESP2 connection must never see.
class MultiplexedConnection(asyncio.Protocol):
    """A pipelining RESP2 connection owned by one event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._kwargs = config.kwargs()
        # The loop is held only while a socket is open (the transport holds it anyway), so
        # that per-loop state never keeps a finished loop alive.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._ready = False  # the handshake succeeded on the open transport
        self._reader = new_reader(self._config.reader)
        self._waiting: deque[asyncio.Future[Any]] = deque()  # written, awaiting replies
        self._queued: list[asyncio.Future[Any]] = []  # not yet written
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Task[None] | None = None
        self._broken: Exception | None = None
        self._timeout = config.socket_timeout
        # One entry per write: (replies owed once it is answered, its first deadline, and
        # the bytes received and written before it: what moved since counts as progress).
        self._writes: deque[tuple[int, float, int, int]] = deque()
        self._bytes_in = 0  # received so far
        self._bytes_out = 0  # handed to the transport so far
        self._out_seen = 0  # written out of the transport's buffer at the last check
        self._progress_at = 0.0  # loop time bytes last moved while replies were owed
        self._socket: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] | None = None  # set by close()
        self._sent = 0  # commands written so far
        self._answered = 0  # replies received so far
        # health_check_interval: loop time of the last write or read, and the PING whose
        # PONG the queued commands wait for before they are written.
        self._health = config.health_check_interval
        self._active_at = 0.0
        self._checking: asyncio.Future[Any] | None = None
        self.connections_made = 0

    # -- public -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is open, its handshake done, and commands may be sent."""
        return self._ready

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command on the connected socket; return the future of its reply (an
        error reply is the reply, as an object; connection failures are exceptions).

        On a connection that is not (or no longer) ready the future fails with
        ``CommandNotSent``: call ``ensure_connected()`` first.
        """
        if not self._ready:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            # Refused between the connect and this send: say why, not just "not ready".
            refusal = self._broken if isinstance(self._broken, MaxClientsReached) else None
            future.set_exception(refusal or self._not_sent("the connection is not ready"))
            return future
        loop: asyncio.AbstractEventLoop = self._loop  # type: ignore[assignment]
        future = loop.create_future()  # _queue inlined: this runs for every command
        self._outgoing.append(pack(args))
        self._queued.append(future)
        if not self._flush_scheduled:  # else the write is due at this iteration's end
            self._kick(loop)
        return future

    def send_all(self, commands: Iterable[tuple[Any, ...]]) -> list[asyncio.Future[Any]]:
        """``send`` several commands that leave in one write (a MULTI ... EXEC, an EVAL
        after NOSCRIPT, one Cluster node's share of a bulk call)."""
        if not self._ready:
            return [self.send(args) for args in commands]
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        futures = [self._queue(loop, args) for args in commands]
        self._kick(loop)
        return futures

    def pending(self) -> int:  # commands awaiting their replies (djredis.metrics)
        return len(self._waiting) + len(self._queued)

    def describe(self) -> str:
        """Return the server's ``host:port/db``, for errors."""
        return self._config.describe()

    async def ensure_connected(self) -> None:
        """Connect and handshake (once, even when many coroutines ask at the same time)."""
        if self.connected:
            return
        task = self._connecting
        if task is None:
            loop = asyncio.get_running_loop()
            task = self._connecting = loop.create_task(self._connect(loop))
            task.add_done_callback(self._connect_done)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # close() stopped the connect; this caller was not cancelled
                raise self._not_sent("the connection was closed while connecting") from None
            raise

    def close(self) -> None:
        """Close the socket; waiting commands fail with ConnectionError."""
        if self._connecting is not None:
            self._connecting.cancel()
        self._ready = False
        transport, self._transport = self._transport, None
        if transport is not None:
            self._closed = cast(asyncio.AbstractEventLoop, self._loop).create_future()
            transport.close()

    async def wait_closed(self, timeout: float | None = 1.0) -> None:
        """Wait (briefly) until the transport reported the socket closed (TLS needs a few
        loop iterations to shut down cleanly)."""
        closed = self._closed
        if closed is not None and not closed.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), timeout)

    # -- connecting -------------------------------------------------------------------------

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved here even when every waiter was cancelled

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        kwargs = self._kwargs
        where = self._config.describe()
        try:
            async with _timeout(self._config.connect_timeout):
                # The previous socket must report its end first: connection_lost() is
                # called on this same protocol object and must not hit the new socket.
                await self.wait_closed(timeout=None)
                self._loop = loop
                self._reader = new_reader(self._config.reader)
                self._broken = None
                self._sent = self._answered = 0
                if self._config.transport == "unix":
                    await loop.create_unix_connection(lambda: self, kwargs["path"])
                else:
                    await loop.create_connection(
                        lambda: self,
                        kwargs.get("host", "localhost"),
                        kwargs.get("port", 6379),
                        ssl=self._config.ssl_context,
                    )
                await self._handshake(loop)
                if self._transport is None or self._broken is not None:
                    raise self._broken or self._not_sent("the connection closed on handshake")
        except BaseException as exc:
            self._discard()
            if isinstance(exc, asyncio.TimeoutError):
                raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
            if isinstance(exc, OSError):
                # Nothing but the handshake was written: the callers' commands were not.
                raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
            raise
        self._ready = True
        self._active_at = loop.time()
        self.connections_made += 1
        reconnects[self._config] += self.connections_made > 1

    async def _handshake(self, loop: asyncio.AbstractEventLoop) -> None:
        commands = handshake_commands(self._kwargs)
        if self._transport is None or self._broken is not None:
            raise self._broken or self._not_sent("the connection closed during the handshake")
        futures = [self._queue(loop, command) for command in commands]
        self._kick(loop)
        failure: Exception | None = None
        replies: list[Any] = []
        for future in futures:
            try:  # every reply is awaited, so no exception is left unretrieved
                replies.append(await future)
            except RedisConnectionError as exc:
                if failure is None:
                    failure = (
                        exc
                        if isinstance(exc, (ProtocolError, CommandNotSent))
                        else self._not_sent(f"the handshake failed: {exc}")
                    )
        if failure is None:
            failure = handshake_failure(commands, replies, self._config.describe())
        if failure is not None:
            raise failure

    def _discard(self) -> None:
        """Abort a connection that cannot be used (failed connect, timeout, bad reply)."""
        self._ready = False
        transport, self._transport = self._transport, None
        if transport is not None:
            self._closed = cast(asyncio.AbstractEventLoop, self._loop).create_future()
            transport.abort()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._socket = transport.get_extra_info("socket")  # its send queue: progress

    def data_received(self, data: bytes) -> None:
        if self._broken is not None:
            return  # the connection is being discarded; its replies belong to nobody
        reader = self._reader
        waiting = self._waiting
        if self._health:
            self._active_at = cast(asyncio.AbstractEventLoop, self._loop).time()
        try:
            reader.feed(data)
            gets, popleft = reader.gets, waiting.popleft
            while (reply := gets()) is not False:
                if type(reply) not in SCALARS:
                    problem = resp2_violation(reply)
                    if problem is not None:
                        self._violation(problem)
                        return
                    if not self._answered and is_max_clients_refusal(reply):
                        self._refused()
                        return
                self._answered += 1
                if not waiting:
                    self._violation("a reply nobody was waiting for")
                    return
                future = popleft()
                if not future.done():  # else its caller was cancelled; the reply is dropped
                    future.set_result(reply)  # error replies too: the caller reads them (wire)
        except Exception as exc:  # any reader failure: never let asyncio log "Fatal error"
            self._violation(f"unparsable reply ({type(exc).__name__}: {exc})")
            return
        writes = self._writes
        while writes and writes[0][0] <= self._answered:
            writes.popleft()
        if writes:  # part of a reply, or more replies, still owed: they are moving
            self._bytes_in += len(data)
            self._progress_at = cast(asyncio.AbstractEventLoop, self._loop).time()

    def connection_lost(self, exc: Exception | None) -> None:
        error = self._broken or RedisConnectionError(
            f"Connection to {self._config.describe()} lost" + (f": {exc}" if exc else "")
        )
        self._transport = None
        self._ready = False
        self._fail(error)
        self._loop = None
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- internals --------------------------------------------------------------------------

    def _queue(self, loop: asyncio.AbstractEventLoop, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        self._outgoing.append(pack(args))
        self._queued.append(future)
        return future

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the queued commands now when nothing is in flight (a lone command saves a
        loop turn), else at the end of this loop iteration, together with whatever the
        other coroutines queue meanwhile."""
        if self._flush_scheduled:
            return
        if not self._waiting:
            self._flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _not_sent(self, why: str) -> CommandNotSent:
        return CommandNotSent(f"Command not sent to {self._config.describe()}: {why}")

    def _flush(self) -> None:
        self._flush_scheduled = False
        outgoing = self._outgoing
        if not outgoing or self._checking is not None:
            return  # nothing to write, or held until the health check's PONG
        transport = self._transport
        if transport is None or self._broken is not None:
            self._fail(self._broken or RedisConnectionError("not connected"))
            return
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        if self._health and loop.time() - self._active_at > self._health:
            self._health_check(loop, transport)
            return
        self._outgoing = []
        self._waiting.extend(self._queued)
        self._queued = []
        self._write(loop, transport, b"".join(outgoing), len(outgoing))

    def _write(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, data: bytes, count: int
    ) -> None:
        transport.write(data)
        self._sent += count
        if self._health:
            self._active_at = loop.time()
        timeout = self._timeout
        if timeout:
            now = loop.time()
            deadline = now + timeout
            self._writes.append((self._sent, deadline, self._bytes_in, self._bytes_out))
            self._bytes_out += len(data)
            check = deadline
            if len(data) > BIG_WRITE:  # the transport may write it for a while: watch it
                check = now + timeout * SAMPLE
                if self._timer is not None and self._timer.when() > check:
                    self._timer.cancel()
                    self._timer = None
            if self._timer is None:
                self._timer = loop.call_at(check, self._check_timeout)

    def _health_check(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
        """PING a connection idle for longer than health_check_interval before writing the
        queued commands (as redis-py does). If the PONG does not come within socket_timeout
        the connection fails as usual, and the queued commands, never written, get
        ``CommandNotSent``: they may go out on a fresh connection."""
        check = self._checking = loop.create_future()
        check.add_done_callback(self._checked)
        self._waiting.append(check)
        self._write(loop, transport, pack(("PING",)), 1)

    def _checked(self, check: asyncio.Future[Any]) -> None:
        if self._checking is check:
            self._checking = None
        if not check.cancelled():
            check.exception()  # a failed PING is reported through the queued commands
        self._flush()

    def _check_timeout(self) -> None:
        """Fire at the oldest write's deadline: abort if its replies are not all in and
        nothing moved for ``socket_timeout`` (or on average slower than
        ``progress.MIN_RATE``). While the transport still holds written bytes, check every
        quarter of the timeout, to see them leave."""
        self._timer = None
        writes, answered = self._writes, self._answered
        while writes and writes[0][0] <= answered:
            writes.popleft()
        if not writes:
            return
        _, first, in_mark, out_mark = writes[0]
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        timeout = cast(float, self._timeout)
        now = loop.time()
        transport = self._transport
        # Bytes written but not yet acknowledged by the peer: in the transport's buffer, or
        # in the kernel's send queue (a big value crossing a slow link).
        pending = 0
        if transport is not None:
            pending = transport.get_write_buffer_size()
            if self._socket is not None:
                pending += unsent(self._socket)
        written = self._bytes_out - pending
        if written != self._out_seen:
            self._out_seen = written
            self._progress_at = now
        moved = self._bytes_in - in_mark + max(0, written - out_mark)
        deadline = late_at(first, moved, self._progress_at, timeout)
        if deadline > now:
            check = min(deadline, now + timeout * SAMPLE) if pending else deadline
            self._timer = loop.call_at(check, self._check_timeout)
            return
        self._broken = RedisTimeoutError(timeout_message(self._config.describe(), timeout))
        self._fail(self._broken)
        self._discard()

    def _refused(self) -> None:
        """A server at its ``maxclients`` limit wrote its refusal, first thing, and closed
        the socket without reading: nothing written on it ran. Everything waiting fails with
        ``MaxClientsReached`` (which may be sent again, on a new connection), and the socket
        goes now, so that a resend is never written on it."""
        self._broken = max_clients_reached(self._config.describe())
        self._fail(self._broken)
        self._discard()

    def _violation(self, problem: str) -> None:
        self._broken = ProtocolError(
            f"Protocol error from {self._config.describe()}: {problem}; connection discarded"
        )
        self._fail(self._broken)
        self._discard()

    def _fail(self, error: Exception) -> None:
        """Fail every command: written ones with ``error``, unwritten with CommandNotSent."""
        waiting, self._waiting = self._waiting, deque()
        queued, self._queued = self._queued, []
        self._outgoing.clear()
        self._writes.clear()
        for future in waiting:
            _settle(future, error)
        if queued:
            not_sent = (
                error
                if isinstance(error, CommandNotSent)
                else self._not_sent(f"the connection failed first ({error})")
            )
            for future in queued:
                _settle(future, not_sent)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _settle(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # a caller cancelled meanwhile must not make asyncio log it


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
