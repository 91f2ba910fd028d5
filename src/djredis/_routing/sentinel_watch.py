"""Follow the Sentinels' ``+switch-master`` announcements, so a failover is seen when it ends.

Without it a client learns of a failover only from an error: a connection refused (the old
primary died) or ``READONLY`` (it was demoted). A manual failover (``SENTINEL FAILOVER``, a
maintenance) leaves the old primary up and still a primary for seconds: the Sentinels
reconfigure it only when they next look at it, and until then reads from it succeed and
return values the new primary has already replaced, and writes to it succeed and are lost.

Each Sentinel publishes ``+switch-master <service> <old ip> <old port> <new ip> <new port>``
on its own pub/sub when its configuration names the new primary. The Sentinel leading a
failover names the promoted replica to ``SENTINEL GET-MASTER-ADDR-BY-NAME`` (what every
client asks) earlier: from the moment it sees the promotion, which it announces with
``+promoted-slave slave <name> <ip> <port> @ <service> <old ip> <old port>``; its
``+switch-master`` follows only when the other replicas are reconfigured (a tick later, or
up to 10 s when one does not answer), and the other Sentinels' when they hear of it. One
thread per Sentinel follows both channels on a dedicated connection and, on an
announcement for our service, has the group ask that Sentinel again (``recheck``): so the
process switches within a round trip of the first Sentinel that names the new primary.

A connection that breaks, or whose PING (every ``PING_EVERY`` s) goes unanswered, may have
missed an announcement: after reconnecting, the Sentinel is asked again too. A thread whose
Sentinel stays unreachable for ``GIVE_UP_AFTER`` s ends; the group starts it again on its
next command (at most every ``RESTART_EVERY`` s). After ``fork()`` the child has no
threads: they start on its first command.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from djredis._config.server import ServerConfig
from djredis._core.errors import BurstLogger
from djredis._io.pool import dedicated

__all__ = ["GIVE_UP_AFTER", "PING_EVERY", "PROMOTED", "SWITCH_MASTER", "SwitchWatch"]

logger = logging.getLogger("djredis.topology")

SWITCH_MASTER = b"+switch-master"
PROMOTED = b"+promoted-slave"
PING_EVERY = 1.0
GIVE_UP_AFTER = 30.0
RESTART_EVERY = 1.0
_MAX_BACKOFF = 1.0


class SwitchWatch:
    """The watcher threads of one Sentinel service, one per Sentinel."""

    def __init__(
        self,
        sentinels: tuple[ServerConfig, ...],
        service: str,
        recheck: Callable[[ServerConfig], None],
    ) -> None:
        self._sentinels = sentinels
        self._service = service.encode()
        self._recheck = recheck
        self._purpose = f"sentinel.switch-master:{service}:{id(self)}"
        self._threads: dict[ServerConfig, threading.Thread] = {}
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._log = BurstLogger(logger)
        # True while every Sentinel has its thread: the one test on the command path.
        self.complete = False

    def ensure(self) -> None:
        """Start the threads that are missing (at most every ``RESTART_EVERY`` s)."""
        now = time.monotonic()
        if now < self._next_start:
            return
        with self._lock:
            if self.complete or now < self._next_start:
                return
            self._next_start = now + RESTART_EVERY
            for sentinel in self._sentinels:
                thread = self._threads.get(sentinel)
                if thread is None or not thread.is_alive():
                    thread = self._threads[sentinel] = threading.Thread(
                        target=self._follow,
                        args=(sentinel,),
                        name=f"djredis sentinel watch {sentinel.describe()}",
                        daemon=True,
                    )
                    thread.start()
            self.complete = True

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._threads = {}
        self._next_start = 0.0
        self.complete = False

    def _follow(self, sentinel: ServerConfig) -> None:
        conn = dedicated(sentinel, self._purpose)
        failing_since: float | None = None
        failures = 0
        try:
            while True:
                try:
                    conn.close()  # a fresh subscription: what was missed is asked below
                    conn.subscribe(SWITCH_MASTER, PROMOTED)
                    failing_since, failures = None, 0
                    self._recheck(sentinel)
                    while True:
                        message = conn.get_message(PING_EVERY)
                        if message is None:
                            conn.ping()
                        elif self._names_us(message.channel, message.data):
                            self._recheck(sentinel)
                except Exception as exc:  # the stream has a gap: reconnect, then ask again
                    now = time.monotonic()
                    failing_since = failing_since or now
                    if now - failing_since > GIVE_UP_AFTER:
                        return
                    failures += 1
                    self._log.log(
                        logging.INFO,
                        "djredis: lost the failover announcements of Sentinel %s (%s: %s)",
                        sentinel.describe(),
                        type(exc).__name__,
                        exc,
                    )
                    time.sleep(min(0.01 * 2**failures, _MAX_BACKOFF))
        finally:
            self.complete = False
            conn.close()

    def _names_us(self, channel: object, data: object) -> bool:
        """Whether ``data`` (on ``channel``) announces a failover of our service."""
        if not isinstance(data, bytes):
            return False
        if channel == SWITCH_MASTER:  # <service> <old ip> <old port> <new ip> <new port>
            return data.split(b" ", 1)[0] == self._service
        if channel == PROMOTED:  # slave <name> <ip> <port> @ <service> <ip> <port>
            return data.partition(b" @ ")[2].split(b" ", 1)[0] == self._service
        return False
