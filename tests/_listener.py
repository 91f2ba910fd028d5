"""A port that listens and never answers: it tells whether anything tried to connect.

For the tests that prove a constructor does no I/O: point the client at this port instead
of at a closed one (where a connection attempt fails silently and proves nothing).
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager


class SilentPort:
    """A listening socket nobody accepts on; ``dialed()`` says if a client connected."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self.port = int(self._socket.getsockname()[1])

    def dialed(self, wait: float = 0.2) -> bool:
        """Whether a connection is waiting in the backlog (within ``wait`` seconds)."""
        readable, _, _ = select.select([self._socket], [], [], wait)
        return bool(readable)

    def close(self) -> None:
        self._socket.close()


@contextmanager
def silent_port() -> Iterator[SilentPort]:
    """A ``SilentPort`` for the ``with`` block."""
    port = SilentPort()
    try:
        yield port
    finally:
        port.close()
