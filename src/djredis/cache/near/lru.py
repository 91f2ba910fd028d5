"""The local tier: encoded values in a byte-bounded LRU, each with the key's expiry.

Values are kept as the bytes Redis holds (decoded on every hit, so no caller can mutate
what another one reads). An entry is dropped at its expiry, when the entry count or the
byte budget needs room (least recently used first), and when Redis says the key changed.

No stale fill: a read that misses takes a *ticket* for its key before its command is sent;
an invalidation of the key (or a flush) voids every ticket for it, and the reply is stored
only with a ticket still valid. A reply Redis computed before a write therefore never lands
after that write's invalidation was applied. The tickets live under the same lock as the
entries, so "check the ticket, store the entry" cannot interleave with an invalidation.

Concurrent misses of one key share its ticket (each holds it until its reply is stored or
given up), so any of them may fill: the ticket is valid only if no invalidation came since
it was first taken, which covers every holder (each took it later). A new miss used to
replace the ticket, voiding the reads in flight, so a key read by a steady stream of
concurrent misses was never stored (50 tasks on a cold key: 5,000 GETs, 0 local hits).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["ENTRY_OVERHEAD", "LocalTier"]

# What one entry costs beyond its key and value bytes, measured with tracemalloc on
# CPython 3.11 and 3.13 (tests/unit/test_near_options.py): the str and bytes headers
# (49 + 33), the (value, expiry) tuple and float (80), the OrderedDict slot and link with
# the table's slack after a resize (up to ~150). CPython 3.10's OrderedDict costs more per
# entry (held memory reached 1.04 x MAX_BYTES with 320; 0.995 x with 368).
ENTRY_OVERHEAD = 320 if sys.version_info >= (3, 11) else 368
# The tier's own structures (object, dicts, lock, allocator slack): kept out of MAX_BYTES.
BASE_OVERHEAD = 8192
NEVER = float("inf")


class Ticket:
    """The right to store a key's reply, shared by the reads of it in flight."""

    __slots__ = ("holders",)

    def __init__(self) -> None:
        self.holders = 1


class LocalTier:
    """A thread-safe LRU of ``key -> (bytes, expires_at)`` bounded by count and bytes."""

    __slots__ = (
        "_bytes",
        "_data",
        "_lock",
        "_max_bytes",
        "_max_entries",
        "_tickets",
        "evictions",
        "invalidations",
    )

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._tickets: dict[str, Ticket] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._max_bytes = max(max_bytes - BASE_OVERHEAD, 0)
        self._bytes = 0
        self.evictions = 0
        self.invalidations = 0

    @property
    def size(self) -> int:
        """The bytes the entries are counted for (keys, values and per-entry overhead)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, now: float) -> bytes | None:
        """Return the bytes kept for ``key`` unless missing or expired at ``now``."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] <= now:
                self._remove(key)
                return None
            self._data.move_to_end(key)
            return item[0]

    def ticket(self, key: str) -> Ticket:
        """Return the ticket a read of ``key`` needs to store its reply (see the module):
        the key's valid ticket if a read of it is in flight, else a new one."""
        with self._lock:
            ticket = self._tickets.get(key)
            if ticket is None:
                ticket = self._tickets[key] = Ticket()
            else:
                ticket.holders += 1
        return ticket

    def fill(self, key: str, ticket: Ticket, raw: bytes, expires_at: float) -> bool:
        """Store ``raw`` if ``ticket`` is still valid; return whether it was stored."""
        cost = len(raw) + len(key) + ENTRY_OVERHEAD
        with self._lock:
            if self._tickets.get(key) is not ticket:
                return False
            self._release(key, ticket)
            if cost > self._max_bytes:
                self._remove(key)
                return False
            self._remove(key)
            data = self._data
            while data and (len(data) >= self._max_entries or self._bytes + cost > self._max_bytes):
                self._remove(next(iter(data)))
                self.evictions += 1
            data[key] = (raw, expires_at)
            self._bytes += cost
            return True

    def abandon(self, key: str, ticket: Ticket) -> None:
        """Give back a ticket whose read failed (or found nothing to store)."""
        with self._lock:
            if self._tickets.get(key) is ticket:
                self._release(key, ticket)

    def _release(self, key: str, ticket: Ticket) -> None:
        """One holder of the key's valid ticket is done; the last one forgets it."""
        ticket.holders -= 1
        if ticket.holders <= 0:
            del self._tickets[key]

    def drop(self, keys: Iterable[str], *, counted: bool = False) -> None:
        """Forget ``keys`` and void their tickets; ``counted``: an invalidation from Redis."""
        with self._lock:
            for key in keys:
                self._tickets.pop(key, None)
                if self._remove(key) and counted:
                    self.invalidations += 1

    def clear(self) -> None:
        """Forget every entry and void every ticket."""
        with self._lock:
            self._data.clear()
            self._tickets.clear()
            self._bytes = 0

    def _remove(self, key: str) -> bool:
        item = self._data.pop(key, None)
        if item is None:
            return False
        self._bytes -= len(item[0]) + len(key) + ENTRY_OVERHEAD
        return True
