"""The mailboxes of one process: messages fetched from Redis and not handed out yet, and
the receives waiting for them (``djredis.channels.reader`` fills them; its docstring says
what is guaranteed). A process-local list's ``Inbox`` is shared by every event loop of the
process, under a lock; a receive waiting on another loop is handed its message through
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, Protocol

__all__ = ["Inbox", "Item", "Mailbox", "Waiter", "WaitingReader", "hand_over"]

# (deadline on time.monotonic(), message, the element as popped: kept for a plain channel,
# whose unclaimed messages go back to Redis)
Item = tuple[float, Any, "bytes | None"]


class WaitingReader(Protocol):
    """What a mailbox needs of the reader a receive waits on."""

    loop: asyncio.AbstractEventLoop
    demand: int

    def returned(self, box: Mailbox) -> None: ...


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Waiter:
    """One receive waiting on a mailbox; its future gets the ``Item`` handed to it."""

    __slots__ = ("box", "future", "loop", "reader")

    def __init__(self, reader: WaitingReader, box: Mailbox) -> None:
        self.reader = reader
        self.box = box
        self.loop = reader.loop
        self.future: asyncio.Future[Item] = reader.loop.create_future()


class Mailbox:
    """The messages of one channel fetched by this process and not handed out yet, and the
    receives waiting for one. Changed only under its inbox's lock."""

    __slots__ = ("inbox", "items", "name", "waiters")

    def __init__(self, inbox: Inbox, name: str) -> None:
        self.inbox = inbox
        self.name = name
        self.items: deque[Item] = deque()
        self.waiters: deque[Waiter] = deque()

    def put(self, deadline: float, message: Any, element: bytes | None = None) -> None:
        """Hand ``message`` to the first receive waiting, or keep it (``deadline`` on the
        ``time.monotonic()`` clock)."""
        with self.inbox.lock:
            self.offer((deadline, message, element))

    def offer(self, item: Item, *, front: bool = False) -> None:
        """``put`` with the lock held."""
        waiters = self.waiters
        here = _running_loop() if waiters else None
        while waiters:
            waiter = waiters.popleft()
            if waiter.loop is here:
                if waiter.future.done():  # cancelled, not yet woken to leave
                    continue
                waiter.future.set_result(item)
                waiter.reader.demand -= 1
                return
            try:
                waiter.loop.call_soon_threadsafe(hand_over, waiter, item)
            except RuntimeError:  # its loop is closed: the receive is gone
                continue
            return
        if front:
            self.items.appendleft(item)
        else:
            self.items.append(item)

    def take(self, now: float) -> Item | None:
        """Pop the oldest message not past its deadline (lock held)."""
        items = self.items
        while items:
            item = items.popleft()
            if item[0] > now:
                return item
        return None


def hand_over(waiter: Waiter, item: Item) -> None:
    """Give ``item`` to a receive of another loop, on its loop."""
    if waiter.future.done():  # cancelled meanwhile: the next receive gets it
        inbox = waiter.box.inbox
        with inbox.lock:
            # The mailbox the receive waited on may have been swept since it was handed
            # the message (empty, nobody waiting): offer to the channel's current one.
            box = inbox.mailbox(waiter.box.name)
            box.offer(item, front=True)
        waiter.reader.returned(box)
        return
    waiter.future.set_result(item)
    waiter.reader.demand -= 1


class Inbox:
    """The mailboxes of the channels of one list. A process-local list's inbox is shared by
    every event loop of the process; a plain channel's belongs to one loop's reader."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mailboxes: dict[str, Mailbox] = {}

    def mailbox(self, channel: str) -> Mailbox:
        """Return ``channel``'s mailbox, created if needed (lock held)."""
        box = self.mailboxes.get(channel)
        if box is None:
            box = self.mailboxes[channel] = Mailbox(self, channel)
        return box

    def sweep(self, now: float) -> None:
        """Drop the messages past their deadline, and the mailboxes left with no message and
        nobody waiting."""
        with self.lock:
            empty = []
            for name, box in self.mailboxes.items():
                if box.items:
                    box.items = deque(item for item in box.items if item[0] > now)
                if not box.items and not box.waiters:
                    empty.append(name)
            for name in empty:
                del self.mailboxes[name]

    def clear(self) -> None:
        """Forget every message (``flush``); the receives waiting keep waiting."""
        with self.lock:
            for box in self.mailboxes.values():
                box.items.clear()
