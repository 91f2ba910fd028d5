"""When a request is late: the one timeout rule of djredis's connections, sync and async.

``SOCKET_TIMEOUT`` bounds every silence: once a request is written, bytes must keep moving
(the rest of the request out, or its replies in) with no pause longer than the timeout,
as with redis-py's per-read socket timeout, so a big value that keeps flowing is never cut
for being big and a stopped server times out within ``SOCKET_TIMEOUT``. Unlike a per-read
timeout, a trickle cannot hold a request forever: each write and its replies are given
``SOCKET_TIMEOUT`` plus one second for every ``MIN_RATE`` bytes moved, so a peer that sends
one byte every few milliseconds times out too, about ``SOCKET_TIMEOUT`` after the write.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

_OUTQ: int | None
try:
    import termios
    from fcntl import ioctl

    _OUTQ = termios.TIOCOUTQ  # SIOCOUTQ on a socket: bytes not yet acknowledged
except (ImportError, AttributeError):  # pragma: no cover - the kernel's queue goes unwatched
    _OUTQ = None

__all__ = ["BIG_WRITE", "MIN_RATE", "SAMPLE", "late_at", "timeout_message", "unsent"]

# Bytes per second a transfer must average to outlast SOCKET_TIMEOUT. Low enough for any
# link a cache is used over (a loopback moves 1 GB/s, a slow WAN link 1 MB/s), and far
# above a trickle (a byte every few milliseconds is a few hundred bytes per second).
MIN_RATE = 100_000


# A write bigger than this may still be leaving the kernel's send queue (megabytes, on a
# slow link) while the replies are awaited: the queue is then looked at every ``SAMPLE`` of
# socket_timeout, and bytes leaving it count as progress, so a stall is seen within that
# much more than the timeout.
BIG_WRITE = 65536
SAMPLE = 0.25


def unsent(sock: socket.socket | Any) -> int:
    """Return how many bytes written to ``sock`` the peer has not acknowledged yet (the
    kernel's send queue; 0 where the platform does not say)."""
    if _OUTQ is None:
        return 0
    try:
        queued: int = struct.unpack("i", ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return 0
    return queued


def late_at(deadline: float, moved: int, progress_at: float, timeout: float) -> float:
    """Return when a transfer is late, given its first ``deadline`` (write + timeout).

    ``moved`` bytes went since the write, the last at ``progress_at``: it may run until
    ``timeout`` after that, but never past the first deadline plus ``moved / MIN_RATE``.
    """
    return min(deadline + moved / MIN_RATE, max(deadline, progress_at + timeout))


def timeout_message(where: str, timeout: float | None) -> str:
    """Return the message of a request that went silent or trickled."""
    return (
        f"Timeout talking to {where}: nothing moved for socket_timeout ({timeout} s), or "
        f"slower than {MIN_RATE // 1000} kB/s on average"
    )
