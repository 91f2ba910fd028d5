"""The near-cache of one cache configuration in one process: local tier + listeners.

Django makes one cache object per thread (and per async context); they all share the
process's ``NearCache`` for their settings (``near_cache_for``), so a value read in one
thread is a local hit in every other, and one invalidation stream serves them all.

When local entries are served: only while every read server's listener has had a pong
within ``MAX_STALENESS`` (``healthy``). Whenever the set of read servers changes (a
Sentinel failover, a new Cluster primary), a listener breaks or a listener (re)connects,
the whole local tier is dropped and pending reads lose their tickets (see ``lru``).
A forked child starts with an empty tier and no listeners (``os.register_at_fork``).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Hashable, Iterable
from typing import Any

from djredis._config.server import ServerConfig, Settings
from djredis._routing.base import Topology
from djredis._routing.connect import connect
from djredis.cache.near.lru import NEVER, LocalTier, Ticket
from djredis.cache.near.options import NearCacheSettings
from djredis.cache.near.tracking import Listener

__all__ = ["NearCache", "near_cache_for", "near_caches"]

logger = logging.getLogger("djredis.cache")
# How often the read servers are asked for when nothing failed (a Cluster gaining a
# primary, a Sentinel replica list changing).
RECHECK_SECONDS = 1.0


class NearCache:
    """The local tier of one cache configuration, kept correct by Redis's invalidations."""

    def __init__(self, settings: Settings, options: NearCacheSettings, prefix: str) -> None:
        self.options = options
        self.prefix = prefix
        self._settings = settings
        self._tier = LocalTier(options.max_entries, options.max_bytes)
        self._fresh_until = 0.0
        self._listeners: dict[ServerConfig, Listener] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._topology: Topology | None = None
        self._generation = 0  # of the supervisor: close() ends the running one
        self._moves = 0  # how many times the topology told of new read servers
        self.hits = 0
        self.misses = 0
        self.flushes = 0
        # The cache aliases served by this tier (aliases with the same settings share it).
        # Replaced whole, never changed in place: a scrape in another thread reads it.
        self.aliases: frozenset[str] = frozenset()
        _instances.add(self)

    # -- the read path ------------------------------------------------------------------------

    def lookup(self, key: str) -> bytes | None:
        """Return the local bytes for ``key`` if they may be served now, else None."""
        now = time.monotonic()
        if now < self._fresh_until:
            raw = self._tier.get(key, now)
            if raw is not None:
                self.hits += 1
                return raw
        elif self._supervisor is None:
            self._start()
        self.misses += 1
        return None

    def ticket(self, key: str) -> Ticket:
        """Return the ticket a read of ``key`` must hold to store its reply."""
        return self._tier.ticket(key)

    def fill(self, key: str, ticket: Ticket, raw: bytes, pttl: Any, started: float) -> None:
        """Keep ``raw`` (read with ``ticket``; ``PTTL`` ``pttl`` asked at ``started``)."""
        pttl = int(pttl)
        if pttl == -2 or pttl == 0:
            self._tier.abandon(key, ticket)
            return
        expires_at = NEVER if pttl < 0 else started + pttl / 1000.0
        self._tier.fill(key, ticket, raw, expires_at)

    def abandon(self, key: str, ticket: Ticket) -> None:
        self._tier.abandon(key, ticket)

    def healthy(self) -> bool:
        """Whether local entries may be served now."""
        return time.monotonic() < self._fresh_until

    # -- this process's writes ----------------------------------------------------------------

    def forget(self, keys: Iterable[str]) -> None:
        """Drop ``keys`` after this process wrote them (read-your-writes)."""
        self._tier.drop(keys)

    def forget_all(self) -> None:
        self._tier.clear()

    # -- what the listeners report ------------------------------------------------------------

    def established(self, listener: Listener) -> None:
        self._flush()

    def heartbeat(self, listener: Listener, sent: float) -> None:
        listener.fresh_until = sent + self.options.max_staleness
        self._recompute()

    def lost(self, listener: Listener, exc: BaseException) -> None:
        listener.fresh_until = 0.0
        self._flush()
        self._wake.set()  # the server may be gone for good: ask the topology again

    def invalidate(self, keys: list[str] | None) -> None:
        if keys is None:
            self._flush()
        else:
            self._tier.drop(keys, counted=True)

    # -- observability ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Return hits, misses, evictions, invalidations, bytes, entries and health."""
        tier = self._tier
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": tier.evictions,
            "invalidations": tier.invalidations,
            "flushes": self.flushes,
            "bytes": tier.size,
            "entries": len(tier),
            "max_bytes": self.options.max_bytes,
            "max_entries": self.options.max_entries,
            "max_staleness": self.options.max_staleness,
            "healthy": self.healthy(),
            "servers": [config.describe() for config in self._listeners],
        }

    # -- listeners ----------------------------------------------------------------------------

    def _flush(self) -> None:
        with self._lock:
            self._fresh_until = 0.0
            self._tier.clear()
            self.flushes += 1

    def _recompute(self) -> None:
        with self._lock:
            listeners = self._listeners.values()
            self._fresh_until = min((lis.fresh_until for lis in listeners), default=0.0)

    def _start(self) -> None:
        with self._lock:
            if self._supervisor is not None:
                return
            self._wake = threading.Event()
            self._generation += 1
            self._supervisor = threading.Thread(
                target=self._supervise,
                args=(self._generation, self._wake),
                name="djredis near-cache supervisor",
                daemon=True,
            )
            self._supervisor.start()

    def close(self) -> None:
        """Stop the listeners and empty the tier; the next read starts them again."""
        with self._lock:
            self._generation += 1
            self._wake.set()
            for listener in self._listeners.values():
                listener.stop()
            self._listeners = {}
            self._supervisor = None
            self._fresh_until = 0.0
            self._tier.clear()

    def _supervise(self, generation: int, wake: threading.Event) -> None:
        """Keep one listener per read server, asking the topology again after a failure."""
        topology = self._topology = self._topology or connect(self._settings)
        topology.watch(self)  # a failover moves the listeners at once (servers_changed)
        refresh = False
        while self._generation == generation:
            moves = self._moves
            try:
                servers = topology.read_servers(refresh)
            except Exception as exc:
                logger.warning("djredis: near-cache cannot find the read servers (%s)", exc)
            else:
                self._reconcile(servers, generation, moves)
            refresh = wake.wait(RECHECK_SECONDS)
            wake.clear()

    def servers_changed(self, servers: tuple[ServerConfig, ...]) -> None:
        """The shared topology routes reads to ``servers`` from now on (a failover): move
        the listeners now, not at the next recheck, so that nothing is served from or
        filled by a server no listener follows."""
        if self._supervisor is not None:
            self._reconcile(servers, self._generation)

    def _reconcile(
        self, servers: tuple[ServerConfig, ...], generation: int, moves: int | None = None
    ) -> None:
        """Follow ``servers``: told by the topology (``moves`` None), or asked for by the
        supervisor after ``moves`` moves (then not if the topology told of newer ones since:
        what it asked for may predate them)."""
        with self._lock:
            if self._generation != generation:  # closed meanwhile
                return
            if moves is None:
                self._moves += 1
            elif moves != self._moves:
                return
            current = self._listeners
            if set(servers) == set(current) and all(lis.alive for lis in current.values()):
                return
            # First stop serving and void the tickets of the reads in flight (one may have
            # been sent to a server reads no longer go to): starting a listener's thread
            # can take a scheduler's time slice or more on a loaded machine, and until the
            # tier is empty every local entry would still be served meanwhile.
            self._fresh_until = 0.0
            self._tier.clear()
            self.flushes += 1
            for config, listener in list(current.items()):
                if config not in servers or not listener.alive:
                    listener.stop()
                    del current[config]
            for config in servers:
                if config not in current:
                    # A purpose per listener: a stopping listener may still hold its own.
                    purpose = f"near-cache.invalidations:{id(self)}:{next(_listener_ids)}"
                    listener = Listener(
                        self, config, self.prefix, self.options.max_staleness, purpose
                    )
                    current[config] = listener
                    listener.start()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._listeners = {}
        self._supervisor = None
        self._topology = None
        self._fresh_until = 0.0
        self._tier = LocalTier(self.options.max_entries, self.options.max_bytes)


_listener_ids = itertools.count()
_instances: weakref.WeakSet[NearCache] = weakref.WeakSet()
_registry: dict[Hashable, NearCache] = {}
_registry_lock = threading.Lock()


def near_cache_for(
    settings: Settings, options: NearCacheSettings, prefix: str, alias: str = ""
) -> NearCache:
    """Return this process's near-cache for these settings (shared by every thread);
    ``alias`` names the cache using it (``djredis.metrics`` labels its counters so)."""
    key = (settings, options, prefix)
    near = _registry.get(key)
    if near is None:
        with _registry_lock:
            near = _registry.get(key)
            if near is None:
                near = _registry[key] = NearCache(settings, options, prefix)
    if alias and alias not in near.aliases:
        near.aliases = near.aliases | {alias}
    return near


def near_caches() -> list[NearCache]:
    """Return this process's near-caches (for ``djredis.metrics``)."""
    return list(_instances)


def close_all() -> None:
    """Stop every near-cache's listeners in this process (tests, shutdown hooks)."""
    for near in list(_instances):
        near.close()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for near in list(_instances):
        near._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _stop_at_exit() -> None:
    # Before the dedicated connections are closed at exit (atexit runs last-registered
    # first), so that no listener reports their closing as a lost stream.
    for near in list(_instances):
        for listener in list(near._listeners.values()):
            listener.stop()
