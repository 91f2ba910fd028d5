"""Follow one server's invalidations on a dedicated connection, and prove it is alive.

Each read server gets one listener thread with one dedicated connection (never a pooled or
multiplexed one). The connection turns tracking on for itself and subscribes to what it
is told (RESP2, Redis >= 6.2 and Valkey)::

    CLIENT ID                                   -> its own id
    CLIENT TRACKING ON REDIRECT <id> BCAST PREFIX <cache key prefix>
    SUBSCRIBE __redis__:invalidate

In broadcast mode Redis reports every change to a key under the prefix, made by anyone,
whichever connection read it; so the connections that serve reads need no tracking of
their own, and a pooled or multiplexed connection that reconnects has nothing to restore.
Tracking and the subscription live and die with this one connection: when it breaks, both
are gone at once, and the owner flushes its local tier.

Heartbeat: a PING every ``MAX_STALENESS / 4``. Redis answers in order, so when the pong
arrives every invalidation sent before the PING has been read and applied; the owner may
serve local entries until ``ping sent + MAX_STALENESS``. A stalled server, a stalled
thread or a half-open socket therefore stops local hits within ``MAX_STALENESS`` even
before any error is seen.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from djredis._config.server import ServerConfig
from djredis._core.errors import BurstLogger
from djredis._io.blocking import BlockingConnection
from djredis._io.pool import dedicated
from djredis._io.protocol import Message

__all__ = ["INVALIDATE", "Listener"]

logger = logging.getLogger("djredis.cache")
INVALIDATE = b"__redis__:invalidate"
_MAX_BACKOFF = 1.0


class Owner(Protocol):
    """What a listener reports to (the near-cache)."""

    def established(self, listener: Listener) -> None: ...
    def heartbeat(self, listener: Listener, sent: float) -> None: ...
    def lost(self, listener: Listener, exc: BaseException) -> None: ...
    def invalidate(self, keys: list[str] | None) -> None: ...


class Listener:
    """One thread following one server's invalidation stream for one near-cache."""

    def __init__(
        self, owner: Owner, config: ServerConfig, prefix: str, staleness: float, purpose: str
    ) -> None:
        self.config = config
        self.fresh_until = 0.0  # monotonic time until which local entries may be served
        self.connected_at = 0.0
        self.client_id: int | None = None
        self._owner = owner
        self._prefix = prefix
        self._staleness = staleness
        self._purpose = purpose
        self._stopping = threading.Event()
        self._failures = 0
        self._log = BurstLogger(logger)
        self._thread = threading.Thread(
            target=self._run, name=f"djredis near-cache {config.describe()}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to close its connection and end (within one heartbeat)."""
        self._stopping.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        conn = dedicated(self.config, self._purpose)
        try:
            while not self._stopping.is_set():
                try:
                    self._follow(conn)
                except Exception as exc:  # any failure: the stream has a gap
                    self.fresh_until = 0.0
                    self._owner.lost(self, exc)
                    if self._stopping.is_set():
                        break
                    self._failures += 1
                    self._log.log(
                        logging.WARNING,
                        "djredis: near-cache invalidations from %s lost (%s: %s); "
                        "serving from Redis until tracking is back",
                        self.config.describe(),
                        type(exc).__name__,
                        exc,
                    )
                    self._stopping.wait(min(0.005 * 2**self._failures, _MAX_BACKOFF))
        finally:
            conn.close()

    def _follow(self, conn: BlockingConnection) -> None:
        conn.close()  # a fresh socket: tracking is turned on below, never restored implicitly
        client_id = conn.client_id()
        prefix = ("PREFIX", self._prefix) if self._prefix else ()
        conn.call("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefix)
        conn.subscribe(INVALIDATE)
        self.client_id = client_id
        self.connected_at = time.monotonic()
        # Entries filled before this point may have missed invalidations: flushed here.
        self._owner.established(self)
        interval = self._staleness / 4
        next_ping = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_ping:
                conn.ping()
                while (message := conn.get_message(0)) is not None:
                    self._handle(message)
                self._owner.heartbeat(self, now)
                self._failures = 0
                next_ping = now + interval
                continue
            message = conn.get_message(next_ping - now)
            if message is not None:
                self._handle(message)

    def _handle(self, message: Message) -> None:
        if message.channel != INVALIDATE:
            return
        data = message.data
        if data is None:  # FLUSHDB / FLUSHALL (and a server-side tracking table overflow)
            self._owner.invalidate(None)
            return
        if not isinstance(data, list):
            # Redis sends an array; a string came from a client's PUBLISH to the channel.
            self._log.log(
                logging.WARNING,
                "djredis: ignored a message PUBLISHed to %s on %s (not from CLIENT TRACKING)",
                INVALIDATE.decode(),
                self.config.describe(),
            )
            return
        try:
            keys = [key.decode() if isinstance(key, bytes) else str(key) for key in data]
        except (UnicodeDecodeError, TypeError):
            keys = None  # a key we could not have made: forget everything rather than guess
        self._owner.invalidate(keys)
