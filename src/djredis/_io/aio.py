"""One asyncio connection to one Redis server: shared by a loop's coroutines, or exclusive.

``AsyncConnection`` is the asyncio shell over the socket-free core (``protocol``): the core
says what to send and how to read the answers; this class moves the bytes on the running
event loop, in one of two modes fixed when it is made (``loops`` keeps one per loop):

- **shared** (``loop_state().connection(config)``): every coroutine of the loop sends its
  request/reply commands through it (auto-pipelining). Commands issued during one iteration
  of the loop leave in a single ``write()``; replies come back in order, each handed to the
  future of the command at the head of the queue, so a hundred concurrent requests need one
  connection and a burst costs one system call each way. A command sent while nothing is in
  flight is written at once, in its caller's step, unless its caller was woken together
  with others by one batch of replies: what they all send then leaves in one write, once
  each had its turn (never later than that loop iteration).
- **exclusive** (``loop_state().exclusive(config, purpose)``): one task at a time, for what
  must never sit on a shared connection: blocking reads (BZPOPMIN), pub/sub, CLIENT
  TRACKING redirect targets. It reads with the core's ``Session`` (replies, subscription
  confirmations, pushed messages; see ``djredis._io.dedicated`` for its promises).

One connect path: ``ensure_connected()`` opens TCP, a Unix socket or TLS (``config.transport``,
``config.ssl_context``) and runs the core's opening plan (AUTH, SELECT, CLIENT SETNAME, then
an exclusive connection's subscriptions), read the exclusive way in both modes; nothing else
is written before it succeeded. It runs in a task of its own, bounded by ``connect_timeout``;
callers wait for it shielded, so a cancelled caller never cancels the others. A failed TLS
handshake raises ``protocol.tls_handshake_error``'s text in both modes. One close path:
``close()`` (then ``wait_closed()``), or ``aclose()`` for both.

Failures of the shared mode (``_errors.may_resend`` decides what may be sent again):

- commands queued but not yet written when the connection fails get ``CommandNotSent``;
- commands written fail with ``ConnectionError``; a write's replies must come by the rule
  of ``protocol`` (no silence longer than ``socket_timeout``, at least ``MIN_RATE`` on
  average, a big write's bytes leaving counting as progress), or the connection is aborted
  (its place in the reply stream is lost) and they fail with ``TimeoutError``;
- a reply the reader cannot parse, a reply nobody asked for, or a RESP3 type on this RESP2
  connection discards the connection; the commands waiting fail with ``ProtocolError``;
- a server at its ``maxclients`` limit refuses with its first reply: everything waiting
  fails with ``MaxClientsReached`` (it may be sent again, on a new connection);
- with ``health_check_interval``, the first write after an idle period longer than that is
  a PING alone; the commands queued meanwhile are written once its PONG is in, and get
  ``CommandNotSent`` if it never comes (so a half-open socket costs them nothing).

The connection holds its loop only while a socket is open (the transport holds it anyway),
so per-loop state never keeps a finished loop alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.driver import adrive
from djredis._core.errors import (
    CommandNotSent,
    MaxClientsReached,
    is_max_clients_refusal,
    max_clients_reached,
)
from djredis._io.aio_session import AsyncSession, wake
from djredis._io.protocol import (
    BIG_WRITE,
    MORE,
    SAMPLE,
    Step,
    handshake_error,
    late_at,
    timeout_message,
    tls_handshake_error,
    unsent,
)
from djredis._io.resp import SCALARS, pack, resp2_violation

__all__ = ["AsyncConnection", "reconnects"]

# Shared connections made again, per server (djredis.metrics).
reconnects: Counter[ServerConfig] = Counter()

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)  # distinct before Python 3.11


class AsyncConnection(AsyncSession, asyncio.Protocol):
    """A RESP2 connection owned by one event loop, ``exclusive`` or shared."""

    __slots__ = (
        "_active_at",
        "_answered",
        "_burst",
        "_bytes_out",
        "_checking",
        "_closed",
        "_connecting",
        "_flush_scheduled",
        "_health",
        "_loop",
        "_new_future",
        "_out_at",
        "_out_seen",
        "_outgoing",
        "_pipelined",
        "_queued",
        "_sent",
        "_socket",
        "_timeout",
        "_timer",
        "_waiting",
        "_writes",
        "connections_made",
    )

    def __init__(self, config: ServerConfig, *, exclusive: bool = False) -> None:
        super().__init__(config)
        self.exclusive = exclusive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_future: Callable[[], asyncio.Future[Any]] | None = None  # the loop's
        self._transport: asyncio.Transport | None = None
        self._socket: Any = None  # the transport's socket: its send queue shows progress
        # Whether the socket is open and its opening plan succeeded (read it, never set it:
        # a plain attribute, as the routing layer reads it for every command).
        self.connected = False
        self._pipelined = False  # shared and up: replies go to the futures in _waiting
        self._held = False  # a socket is open or was lost, not closed by us (exclusive)
        self._failure: Exception | None = None  # why the socket is unusable
        self._connecting: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None  # the closing socket's end
        # Exclusive reading: the task waiting for bytes, and bytes nobody asked for.
        self._waiter: asyncio.Future[bool] | None = None
        self._unasked = False
        # Shared mode: futures written (awaiting replies) and queued (not yet written).
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._queued: list[asyncio.Future[Any]] = []
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._burst = False  # callers woken together have yet to run: hold the write
        self._timeout = config.socket_timeout
        # One entry per write: (replies owed once it is answered, its first deadline, and
        # the bytes received and written before it: what moved since counts as progress).
        self._writes: deque[tuple[int, float, int, int]] = deque()
        self._bytes_out = 0  # handed to the transport so far
        self._out_seen = 0  # written out of the transport's buffer at the last check
        self._out_at = 0.0  # loop time written bytes were last seen leaving
        self._timer: asyncio.TimerHandle | None = None
        self._sent = 0  # commands written so far
        self._answered = 0  # replies received so far
        # health_check_interval: loop time of the last write or read, and the PING whose
        # PONG the queued commands wait for before they are written.
        self._health = config.health_check_interval
        self._active_at = 0.0
        self._checking: asyncio.Future[Any] | None = None
        self.connections_made = 0

    # -- both modes -----------------------------------------------------------------------------

    def describe(self) -> str:
        """Return the server's ``host:port/db``, for errors."""
        return self.where

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
        """Close the socket: commands waiting fail with ConnectionError, an exclusive
        connection forgets its subscriptions. ``wait_closed()`` sees the socket gone."""
        if self._connecting is not None:
            self._connecting.cancel()
        self.forget_subscriptions()
        self._held = False
        self._shut(None, abort=False)

    async def wait_closed(self, timeout: float | None = 1.0) -> None:
        """Wait (up to ``timeout`` seconds) until the transport reported the socket closed
        (TLS needs a few loop iterations to shut down cleanly)."""
        closed = self._closed
        if closed is not None and not closed.done():
            with contextlib.suppress(*_TIMEOUTS):
                await asyncio.wait_for(asyncio.shield(closed), timeout)

    async def aclose(self) -> None:
        """``close()``, then ``wait_closed()``."""
        self.close()
        await self.wait_closed()

    def close_socket(self) -> None:
        """Abort the socket (the core calls it when the socket broke) and forget its stream."""
        self._held = False
        self._shut(RedisConnectionError(f"Connection to {self.where} closed"), abort=True)
        self.forget()

    # -- connecting -----------------------------------------------------------------------------

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved here even when every waiter was cancelled

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        timeout = self.config.connect_timeout
        deadline = None if timeout is None else loop.time() + timeout
        await self._open(loop, deadline)

        async def step(step: Step) -> list[Any]:
            return await self._talk(*step, deadline=deadline)

        try:
            await adrive(self.opening(), step)
        except BaseException as exc:
            self.close_socket()
            error = handshake_error(self.where, exc)
            if error is exc:
                raise
            raise error from exc
        if not self.exclusive:
            if self._unasked:  # before any command: a maxclients refusal, or garbage
                self._unexpected()
            if self._failure is not None or self._transport is None:
                raise self._failure or self._not_sent("the connection closed on handshake")
            self._pipelined = True
            self._sent = self._answered = 0
            self._active_at = loop.time()
            self.connections_made += 1
            reconnects[self.config] += self.connections_made > 1
        self.connected = True

    def _unexpected(self) -> None:
        """Discard a socket that received a reply before anything was sent on it: a
        server at its ``maxclients`` limit (nothing ran: ``MaxClientsReached``), or not
        a Redis server. A reply still arriving is judged when it is complete."""
        try:
            reply = self.next_reply()
        except RedisConnectionError as exc:
            error: RedisConnectionError = exc
        else:
            if reply is MORE:
                return
            refused = is_max_clients_refusal(reply)
            error = (
                max_clients_reached(self.where)
                if refused
                else self.violation("a reply nobody was waiting for")
            )
        self._failure = error  # it says more than the loss that may have followed
        self._shut(error, abort=True)

    async def _open(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> None:
        """Open the socket by ``deadline``, this object its protocol (nothing written)."""
        config, where = self.config, self.where
        tls = config.ssl_context
        try:
            # The previous socket must report its end first: connection_lost() is called
            # on this same object and must not hit the new socket.
            closed = self._closed
            if closed is not None and not closed.done():
                await asyncio.wait_for(asyncio.shield(closed), _left(loop, deadline))
            self._loop = loop
            self._new_future = _future_maker(loop)
            self.forget()
            self._failure = None
            self._unasked = False
            if config.transport == "unix":
                opening = loop.create_unix_connection(lambda: self, self.kwargs["path"])
            else:
                host, port = config.address
                opening = loop.create_connection(lambda: self, host, port, ssl=tls)
            await asyncio.wait_for(opening, _left(loop, deadline))
        except BaseException as exc:
            self.close_socket()
            if tls is not None and isinstance(exc, (ssl.SSLError, *_TIMEOUTS)):
                raise tls_handshake_error(where, exc, config.connect_timeout) from exc
            if isinstance(exc, _TIMEOUTS):
                raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
            if isinstance(exc, (OSError, ValueError)):
                # Nothing was written: the callers' commands were not.
                raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
            raise

    def _shut(self, error: Exception | None, *, abort: bool) -> None:
        """The one way a socket ends: commands waiting fail with ``error`` (or, when it
        is None, with the loss connection_lost reports), and the transport closes."""
        self.connected = self._pipelined = False
        if error is not None:
            if self._failure is None:
                self._failure = error
            self._fail(self._failure)
        transport, self._transport = self._transport, None
        if transport is not None:
            self._closed = self._loop.create_future()  # type: ignore[union-attr]
            if abort:
                transport.abort()
            else:
                transport.close()
        if self._waiter is not None:
            wake(self._waiter, True)

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._socket = transport.get_extra_info("socket")
        self._held = True

    def data_received(self, data: bytes) -> None:
        if self._failure is not None or self._transport is None:
            return  # the socket is being closed; its bytes belong to nobody
        if not self._pipelined:  # exclusive, or the opening plan of either mode
            try:
                self.feed(data)
            except RedisConnectionError as exc:
                self._shut(exc, abort=True)
                return
            if self._waiter is None:
                self._unasked = True
            else:
                wake(self._waiter, True)
            return
        self.received += len(data)
        reader = self.reader
        answered = 0
        try:
            reader.feed(data)
            gets, popleft = reader.gets, self._waiting.popleft
            while (reply := gets()) is not False:
                if type(reply) not in SCALARS:
                    problem = resp2_violation(reply)
                    if problem is not None:
                        self._shut(self.violation(problem), abort=True)
                        return
                    if not (answered or self._answered) and is_max_clients_refusal(reply):
                        self._refused()
                        return
                future = popleft()  # IndexError: a reply nobody was waiting for
                answered += 1
                # Error replies too: the caller reads them (wire). A future whose caller was
                # cancelled refuses it: the reply is dropped (suppress() would cost per reply).
                try:  # noqa: SIM105
                    future.set_result(reply)
                except asyncio.InvalidStateError:
                    pass
        except IndexError:
            self._shut(self.violation("a reply nobody was waiting for"), abort=True)
            return
        except Exception as exc:  # any reader failure: never let asyncio log "Fatal error"
            what = f"unparsable reply ({type(exc).__name__}: {exc})"
            self._shut(self.violation(what), abort=True)
            return
        if answered > 1 and not self._burst:
            # The callers just woken will send next: write all of it after they ran.
            self._burst = True
            self._loop.call_soon(self._end_burst)  # type: ignore[union-attr]
        answered = self._answered = self._answered + answered
        writes = self._writes
        while writes and writes[0][0] <= answered:
            writes.popleft()
        if writes or self._health:  # replies still owed are moving; or: not idle
            self.received_at = self._active_at = self._loop.time()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._failure is None:
            lost = f"Connection to {self.where} lost" + (f": {exc}" if exc else "")
            self._failure = RedisConnectionError(lost)
        self._transport = None
        self.connected = self._pipelined = False
        self._fail(self._failure)
        if self._waiter is not None:
            wake(self._waiter, True)
        self._loop = self._new_future = None
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- shared mode ----------------------------------------------------------------------------

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command on the connected socket; return the future of its reply (an
        error reply is the reply, as an object; connection failures are exceptions).

        On a connection that is not (or no longer) ready the future fails with
        ``CommandNotSent``: call ``ensure_connected()`` first.
        """
        if not self._pipelined:
            return self._refuse()
        future = self._new_future()  # type: ignore[misc]
        self._outgoing.append(pack(args))
        self._queued.append(future)
        if not self._flush_scheduled:  # else the write is due at this iteration's end
            self._kick()
        return future

    def send_all(self, commands: Iterable[tuple[Any, ...]]) -> list[asyncio.Future[Any]]:
        """``send`` several commands that leave in one write (a MULTI ... EXEC, an EVAL
        after NOSCRIPT, one Cluster node's share of a bulk call)."""
        if not self._pipelined:
            return [self._refuse() for _ in commands]
        loop = self._loop
        assert loop is not None  # pipelined: connected
        futures = []
        for args in commands:
            futures.append(future := loop.create_future())
            self._outgoing.append(pack(args))
            self._queued.append(future)
        if not self._flush_scheduled:
            self._kick()
        return futures

    def pending(self) -> int:
        """Return how many commands await their replies (djredis.metrics)."""
        return len(self._waiting) + len(self._queued)

    def _refuse(self) -> asyncio.Future[Any]:
        if self.exclusive:
            raise TypeError("an exclusive connection sends with call(), not send()")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # Refused between the connect and this send: say why, not just "not ready".
        refusal = self._failure if isinstance(self._failure, MaxClientsReached) else None
        future.set_exception(refusal or self._not_sent("the connection is not ready"))
        return future

    def _not_sent(self, why: str) -> CommandNotSent:
        return CommandNotSent(f"Command not sent to {self.where}: {why}")

    def _kick(self) -> None:
        """Write the queued commands now when nothing is in flight (a lone command saves a
        loop turn), else at the end of this loop iteration, together with whatever the
        other coroutines queue meanwhile (no flush is scheduled yet). Right after a batch
        of replies, the end of the burst writes it (``_end_burst``)."""
        if self._burst:
            return
        if not self._waiting:
            self._flush()
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)  # type: ignore[union-attr]

    def _end_burst(self) -> None:
        """Write what the callers woken by one batch of replies sent meanwhile, in one
        write (scheduled after their wake-ups, so it runs once they all had their turn)."""
        self._burst = False
        self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        outgoing = self._outgoing
        if not outgoing or self._checking is not None or self._burst:
            return  # nothing to write, or held until the health check's PONG
        transport = self._transport
        if transport is None or not self._pipelined:
            self._fail(self._failure or RedisConnectionError("not connected"))
            return
        loop: asyncio.AbstractEventLoop = self._loop  # type: ignore[assignment]
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
        timeout = self._timeout
        if self._health or timeout:
            now = self._active_at = loop.time()
        if timeout:
            deadline = now + timeout
            self._writes.append((self._sent, deadline, self.received, self._bytes_out))
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
        ``protocol.MIN_RATE``). While the transport still holds written bytes, check every
        ``SAMPLE`` of the timeout, to see them leave."""
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
            self._out_at = now
        moved = self.received - in_mark + max(0, written - out_mark)
        deadline = late_at(first, moved, max(self.received_at, self._out_at), timeout)
        if deadline > now:
            check = min(deadline, now + timeout * SAMPLE) if pending else deadline
            self._timer = loop.call_at(check, self._check_timeout)
            return
        self._shut(RedisTimeoutError(timeout_message(self.where, timeout)), abort=True)

    def _refused(self) -> None:
        """A server at its ``maxclients`` limit wrote its refusal, first thing, and closed
        the socket without reading: nothing written on it ran. Everything waiting fails with
        ``MaxClientsReached`` (which may be sent again, on a new connection), and the socket
        goes now, so that a resend is never written on it."""
        self._shut(max_clients_reached(self.where), abort=True)

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


def _future_maker(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.Future[Any]]:
    """Return ``loop.create_future``, or, where the loop does not override it (asyncio's
    own loops), the same call without its Python frame: ``send`` makes one per command."""
    if getattr(type(loop), "create_future", None) is asyncio.BaseEventLoop.create_future:
        return functools.partial(asyncio.Future, loop=loop)
    return loop.create_future


def _left(loop: asyncio.AbstractEventLoop, deadline: float | None) -> float | None:
    """Return the seconds left until ``deadline`` (None: no bound), for ``wait_for``."""
    return None if deadline is None else max(0.0, deadline - loop.time())


def _settle(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # a caller cancelled meanwhile must not make asyncio log it
