"""Receive: a plain channel's receive pops with LPOP when its list holds a message; readers
pop with ``BLMPOP`` for the rest, and hand each message to a waiting receive.

A consumer's ``receive`` takes a message from its channel's ``Mailbox`` in this process, or
waits there. For a plain channel (``tasks``) whose list holds messages, the receive writes
one ``LPOP`` on the event loop's multiplexed connection (the one ``send`` uses): one round
trip, no task, no dedicated connection. When that ``LPOP`` finds the list empty (or fails),
a ``Reader`` task (one per list key and event loop) pops with ``BLMPOP`` on a dedicated
connection of its own (``adedicated``) until the receives waiting are served. All
process-local channels of a layer (``specific.<id>!...``) share one list, so one reader and
one connection serve all the consumers of a process on a loop, whatever their number.

What is guaranteed:

- **A plain channel's messages stay in Redis until a receive takes one.** A pop (``LPOP``
  or ``BLMPOP``) is written only for a receive waiting, one message each (``COUNT`` = the
  receives waiting and not already served by an ``LPOP`` in flight), so a worker never
  hoards a backlog that competing workers should share, and a worker that exits after one
  message leaves the rest in Redis. A pop is never cancelled with the receive it serves:
  its reply is handed to the next receive waiting, or given back at the head of the list
  (``channels_return.lua``). A cancelled receive waits (at most ``SETTLE`` s) for the
  ``LPOP`` replies in flight and their give-back, so a loop ending at that moment
  (``asyncio.run``, ``async_to_sync``) strands nothing. One consumer receiving in turn gets
  its channel's messages in order, cancellations included.
- **A process-local message fetched by this process is delivered whichever event loop asks
  next.** Process-local lists hold only this process's messages, so their reader pops up to
  ``BATCH`` at once; the mailboxes are shared by every loop of the process (an ``Inbox``
  with a lock), so ``async_to_sync(layer.receive)`` called twice, each call on a new loop,
  gets the message the first call's reader fetched. A receive waiting on another loop is
  handed its message through ``call_soon_threadsafe``.
- A cancelled ``receive`` loses nothing: a message handed to it after it was cancelled goes
  to the next receive waiting (or back to the mailbox, or for a plain channel back to Redis).
- A plain channel's reader pops only while receives wait. A process-local reader also pops
  one batch ahead while its loop keeps receiving (within ``LINGER`` s of the last receive,
  after ``LINGER_AFTER`` pops: never on ``async_to_sync``'s one-receive loops), so the
  next ``group_send`` of a chat finds a pop already waiting. ``stop()`` (``close_pools``,
  ``flush``) ends a reader's ``BLMPOP`` with ``CLIENT UNBLOCK`` and keeps its reply; a pop
  cancelled with its loop (``asyncio.run``'s end) discards its connection, and Redis pops
  nothing for a closed connection.
- Expiry: messages past their deadline are dropped when read and when the mailboxes are
  swept; a mailbox is dropped only when it holds nothing and nobody waits on it (never with
  a message that just arrived; channels#1361's leak is the expired messages, swept).
- ``BLMPOP``'s timeout (``block``) stays below the socket timeout, and the dedicated
  connection waits ``block + socket_timeout`` for the reply, so an idle consumer never sees
  a timeout whatever the client library's default (channels_redis#422).
- On a connection error, the reader asks the topology again for the key's primary (Sentinel
  failover, Cluster failover or resharding) and reconnects with backoff; what Redis still
  holds is read then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from djredis._config.server import ServerConfig
from djredis._core.errors import BurstLogger, CommandNotSent
from djredis._io.aio import AsyncConnection
from djredis._io.loops import adedicated, loop_state
from djredis._routing.base import Topology
from djredis.channels.mailboxes import Inbox, Mailbox, Waiter

__all__ = ["BATCH", "Inbox", "Mailbox", "Reader", "block_seconds"]

logger = logging.getLogger("djredis.channels")

BATCH = 4096  # a process-local list's messages popped per round trip (a whole backlog)
MAX_BLOCK = 2.0
SETTLE = 1.0  # how long a cancelled plain receive waits for its pop's reply, at most
LINGER_AFTER = 2  # pops of a process-local reader before it pops ahead of its receives
LINGER = 1.0  # ... for this long after the last receive
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)

GiveBack = Callable[[Sequence[bytes]], Awaitable[Any]]


def block_seconds(config: ServerConfig) -> float:
    """Return how long one ``BLMPOP`` blocks: below the socket timeout, at most 2 s."""
    timeout = config.socket_timeout
    if timeout is None:
        return MAX_BLOCK
    return max(0.01, min(MAX_BLOCK, timeout / 2))


class Reader:
    """Pop one list's messages, on one event loop, for the receives waiting on its inbox.

    ``give_back`` is None for a process-local list (its messages are this process's, popped
    ``BATCH`` at a time) and, for a plain channel, the coroutine that puts unclaimed
    messages back at the head of the list (popped as many as receives wait).
    """

    def __init__(
        self,
        topology: Topology,
        key: str,
        non_local: str,
        inbox: Inbox,
        purpose: str,
        decode: Callable[[bytes], Any],
        expiry: float,
        callbacks: tuple[Callable[[], Any] | None, Callable[[], Any] | None],
        give_back: GiveBack | None,
    ) -> None:
        self.topology = topology
        self.key = key
        self.non_local = non_local
        self.inbox = inbox
        self.purpose = purpose
        self.decode = decode
        self.expiry = expiry
        self.on_disconnect, self.on_reconnect = callbacks
        self.give_back = give_back
        self.loop = asyncio.get_running_loop()
        self.demand = 0  # receives of this loop waiting with nothing handed to them yet
        self.active_at = 0.0  # time.monotonic() of the last receive
        self._stopping = False  # stop(): the reader returns after its current pop
        self.task: asyncio.Task[None] | None = None
        self.pops = 0  # BLMPOP round trips, for tests and benchmarks
        self.fast_pops = 0  # LPOP round trips (a plain channel's fast path), likewise
        self._conn: AsyncConnection | None = None
        # A plain channel's fast path: this loop's multiplexed connection to the list's
        # primary, and the LPOPs written on it whose reply has not been handled yet.
        self._fast: AsyncConnection | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._fast_stale = False  # ask the topology afresh before the next fast pop
        self._clock = False  # _offset_ms was measured
        self._client: int | None = None  # the dedicated connection's CLIENT ID
        self._offset_ms = 0.0  # server clock minus ours
        self._swept = 0.0
        self._garbage = BurstLogger(logger)
        self._failures = 0

    def mailbox(self, channel: str) -> Mailbox:
        """Return ``channel``'s mailbox."""
        with self.inbox.lock:
            return self.inbox.mailbox(channel)

    async def receive(self, channel: str) -> Any:
        """Return the next message for ``channel``."""
        inbox = self.inbox
        with inbox.lock:
            box = inbox.mailboxes.get(channel) or inbox.mailbox(channel)
            self.active_at = now = time.monotonic()
            item = box.take(now) if box.items else None
            if item is None:
                waiter = Waiter(self, box)
                box.waiters.append(waiter)
        if item is not None:
            return item[1]
        self.demand += 1
        try:
            if self.give_back is not None and not self._reading():
                fast = self._fast
                if fast is None or not fast.connected or self._fast_stale:
                    await self._fast_connect()  # cancelled here: nothing was popped
            self._cover(fast=True)
            item = await waiter.future
        except asyncio.CancelledError:
            self._left(waiter)
            if self.give_back is not None:
                await self._settle()
            raise
        except BaseException:
            self._left(waiter)
            raise
        return item[1]

    async def _settle(self) -> None:
        """A plain channel's receive was cancelled: before it ends, the fast pops in flight
        are answered and a message nobody took is back in Redis, so that an event loop
        ending now (``asyncio.run``, ``async_to_sync``) strands nothing. Bounded by
        ``SETTLE`` seconds (a frozen server)."""
        pending = set(self._in_flight)
        if pending:
            await asyncio.wait(pending, timeout=SETTLE)
        task = self.task
        if task is not None and not task.done() and self._holding():
            await asyncio.wait({task}, timeout=SETTLE)

    def _holding(self) -> bool:
        with self.inbox.lock:
            return any(box.items for box in self.inbox.mailboxes.values())

    def _reading(self) -> bool:
        task = self.task
        return task is not None and not task.done()

    def _cover(self, *, fast: bool) -> None:
        """See that a pop is coming for every receive waiting: the reader pops for them
        after its current pop when it runs; otherwise a plain channel pops one message per
        uncovered receive with LPOP on the loop's multiplexed connection when ``fast`` (its
        list likely holds messages), and the blocking reader is started when not."""
        if self._reading():
            return
        missing = self.demand - len(self._in_flight)
        if missing <= 0:
            return
        conn = self._fast
        if fast and conn is not None and conn.connected and not self._fast_stale:
            command = ("LPOP", self.key)
            for _ in range(missing):
                # The pop is never cancelled with the receive it serves: its reply is
                # handled by _popped whatever happened to that receive meanwhile.
                future = conn.send(command)
                self._in_flight.add(future)
                future.add_done_callback(self._popped)
            return
        self.task = self.loop.create_task(self._run())

    def _popped(self, future: asyncio.Future[Any]) -> None:
        """A fast pop's reply: hand the message to the first receive waiting (or keep it
        for the next, or give it back to Redis when nobody waits), then cover the receives
        still waiting: popping again after a message, with the blocking reader after an
        empty list or a failure."""
        self._in_flight.discard(future)
        reply: Any = None
        if future.cancelled():  # only the connection's end does this: nothing to hand
            self._fast_stale = True
        else:
            error = future.exception()
            if error is not None:
                # CommandNotSent: nothing was popped. Otherwise the reply may have been
                # lost with the connection: the window every Redis-list layer has.
                logger.debug("djredis.channels: fast pop on %s failed: %r", self.key, error)
                self._fast_stale = True
            else:
                reply = future.result()
        if type(reply) is bytes:
            self.fast_pops += 1
            self._dispatch([reply])
            with self.inbox.lock:
                box = self.inbox.mailbox(self.non_local)
            self.returned(box)
            self._cover(fast=True)
            return
        if reply is not None:  # an error reply (MOVED, READONLY...): the reader follows it
            logger.debug("djredis.channels: fast pop on %s answered %r", self.key, reply)
            self._fast_stale = True
        self._cover(fast=False)

    async def _fast_connect(self) -> None:
        """Prepare the fast path: this loop's multiplexed connection to the list's primary,
        connected, and the server's clock read once. On failure the blocking reader takes
        over (it reconnects with backoff and reports the outage)."""
        stale, self._fast = self._fast_stale, None
        try:
            state = loop_state()
            config = await self.topology.aprimary_for(self.key, state, fresh=stale)
            conn = state.connection(config)
            if not conn.connected:
                await conn.ensure_connected()
            if not self._clock:
                reply = await conn.send(("TIME",))
                seconds, micros = reply
                self._offset_ms = int(seconds) * 1000 + int(micros) / 1000 - time.time() * 1000
                self._clock = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("djredis.channels: no fast path to %s: %r", self.key, exc)
            return
        self._fast, self._fast_stale = conn, False

    def _left(self, waiter: Waiter) -> None:
        """A waiting receive was cancelled: pass on what it was handed, if anything."""
        future, box, inbox = waiter.future, waiter.box, self.inbox
        with inbox.lock:
            if future.done() and not future.cancelled():  # handed one, cancelled before it ran
                # Its mailbox may have been swept since (empty, nobody waiting): offer to
                # the channel's current one.
                box = inbox.mailbox(box.name)
                box.offer(future.result(), front=True)
            else:
                self.demand -= 1
                if waiter in box.waiters:
                    box.waiters.remove(waiter)
            if not box.items and not box.waiters and inbox.mailboxes.get(box.name) is box:
                del inbox.mailboxes[box.name]  # a name nobody got anything for
        self.returned(box)

    def returned(self, box: Mailbox) -> None:
        """A message went back to ``box`` with nobody to take it: a plain channel's goes
        back to Redis (the reader does it before its next pop)."""
        if self.give_back is not None and box.items and (self.task is None or self.task.done()):
            self.task = self.loop.create_task(self._run())

    async def stop(self) -> None:
        """Cancel the reader (a pop in flight is abandoned with its connection, so Redis
        pops nothing for it); a plain channel's unclaimed messages are given back first."""
        task = self.task
        if task is not None and not task.done():
            self._stopping = True
            try:
                await asyncio.wait_for(self._unblock(task), SETTLE)
            except Exception as exc:  # TimeoutError (a frozen server), connection errors
                logger.debug("djredis.channels: unblocking %s failed: %r", self.key, exc)
            finally:
                self._stopping = False
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.task = None
        if self._in_flight:  # their replies are handled (and given back) before we return
            await asyncio.wait(set(self._in_flight), timeout=SETTLE)
        self._fast = None
        if self.give_back is not None:
            await self._give_back()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    # -- the reader task ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self.give_back is not None and not await self._give_back():
                continue
            missing = self.demand - len(self._in_flight)  # fast pops serve the others
            if self._stopping or (missing <= 0 and not self._ahead()):
                return
            try:
                conn = await self._connection()
                block = block_seconds(conn.config)
                count = BATCH if self.give_back is None else missing
                reply = await conn.call(
                    "BLMPOP", block, 1, self.key, "LEFT", "COUNT", count, block=block
                )
                self.pops += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die: receivers wait on this task
                await self._failed(exc)
                continue
            if self._failures:
                self._failures = 0
                logger.info("djredis.channels: reading %s again", self.key)
                _call(self.on_reconnect)
            if reply is not None:
                self._dispatch(reply[1])
            now = time.monotonic()
            if now - self._swept >= min(self.expiry, 1.0):
                self._swept = now
                self.inbox.sweep(now)

    def _ahead(self) -> bool:
        """Whether a process-local reader pops with no receive waiting: on a loop that keeps
        receiving (a server's; not async_to_sync's loops of one receive each), within
        ``LINGER`` s of the last receive, the next pop waits in Redis while the consumers
        handle what the last one fetched, so the next ``group_send`` costs no round trip
        more. A process's local messages are its own: fetching them early takes nothing
        from anyone."""
        return (
            self.give_back is None
            and self.pops > LINGER_AFTER
            and time.monotonic() - self.active_at < LINGER
        )

    async def _unblock(self, task: asyncio.Task[None]) -> None:
        """Stop the reader at the end of its pop: ``CLIENT UNBLOCK`` the ``BLMPOP`` it waits
        in (from the loop's multiplexed connection) and let it take the reply, nil or the
        messages Redis popped for it meanwhile (kept for the next receive, a plain
        channel's given back), instead of dropping them with the connection."""
        conn, client = self._conn, self._client
        if conn is not None and client is not None and conn.connected:
            multiplexed = loop_state().connection(conn.config)
            if not multiplexed.connected:
                await multiplexed.ensure_connected()
            await multiplexed.send(("CLIENT", "UNBLOCK", client))
        await asyncio.wait({task})

    async def _give_back(self) -> bool:
        """Put a plain channel's unclaimed messages back in Redis; False when it failed
        before reaching Redis (they stay here, tried again after a backoff)."""
        if self.give_back is None:
            return True
        with self.inbox.lock:
            items = [item for box in self.inbox.mailboxes.values() for item in box.items]
            for box in self.inbox.mailboxes.values():
                box.items.clear()
        elements = [item[2] for item in items if item[2] is not None]
        if not elements:
            return True
        try:
            await self.give_back(elements)
        except asyncio.CancelledError:
            raise
        except CommandNotSent as exc:  # Redis never saw it: they wait here for the retry
            with self.inbox.lock:
                box = self.inbox.mailbox(self.non_local)
                box.items.extendleft(reversed(items))
            await self._failed(exc)
            return False
        except Exception as exc:  # the script may have run: never risk a second copy
            logger.error(
                "djredis.channels: giving back %d message(s) to %s failed (%s: %s); they "
                "may be lost",
                len(elements),
                self.key,
                type(exc).__name__,
                exc,
            )
        return True

    async def _connection(self) -> AsyncConnection:
        conn = self._conn
        if conn is None or not conn.connected:
            config = await self.topology.aprimary_for(
                self.key, loop_state(), fresh=self._failures > 0
            )
            if conn is not None and conn.config != config:
                await conn.aclose()
            conn = self._conn = adedicated(config, self.purpose)
            self._client = None
            seconds, micros = await conn.call("TIME")
            self._offset_ms = int(seconds) * 1000 + int(micros) / 1000 - time.time() * 1000
            self._clock = True
            self._client = await conn.client_id()  # to CLIENT UNBLOCK its pops (_abandon)
        return conn

    async def _failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            logger.warning(
                "djredis.channels: reading %s failed (%s: %s); reconnecting",
                self.key,
                type(exc).__name__,
                exc,
            )
            _call(self.on_disconnect)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()
        await asyncio.sleep(_BACKOFF[min(self._failures, len(_BACKOFF)) - 1])

    def _dispatch(self, elements: list[bytes]) -> None:
        now = time.monotonic()
        server_ms = time.time() * 1000 + self._offset_ms
        plain = self.give_back is not None
        parsed: list[tuple[float, Any, bytes, list[str]]] = []
        for element in elements:
            try:
                deadline, parts, payload = element.split(b"|", 2)
                left = (int(deadline) - server_ms) / 1000
                if left <= 0:
                    continue
                message = self.decode(payload)
                if not isinstance(message, dict):
                    raise TypeError(f"a message must be a dict, got {type(message).__name__}")
                # A plain channel's list holds its messages only; a process-local list has
                # one element for every channel of it a group_send reached: each gets a copy.
                names = [""] if plain else parts.decode().split(",")
            except Exception as exc:  # garbage in Redis: a log line, never a crash
                self._garbage.log(
                    logging.WARNING,
                    "djredis.channels: dropped an undecodable message from %s (%s: %s)",
                    self.key,
                    type(exc).__name__,
                    exc,
                )
                continue
            parsed.append((now + left, message, element, names))
        if not parsed:
            return
        inbox, mailboxes, non_local = self.inbox, self.inbox.mailboxes, self.non_local
        with inbox.lock:
            for until, message, element, names in parsed:
                for index, name in enumerate(names):
                    channel = non_local + name
                    box = mailboxes.get(channel) or inbox.mailbox(channel)
                    box.offer(
                        (
                            until,
                            message if index == 0 else dict(message),
                            element if plain else None,
                        )
                    )


def _call(callback: Callable[[], Any] | None) -> None:
    if callback is not None:
        try:
            callback()
        except Exception:
            logger.exception("djredis.channels: on_disconnect/on_reconnect callback failed")
