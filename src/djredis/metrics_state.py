"""The metrics djredis reads from live objects rather than counting on the command path.

The near-cache counts its hits, misses, evictions, invalidations and flushes itself; the
pools know their open, idle and waiting connections; the connections count their
reconnects. ``StateMetrics.sample()`` copies those figures into prometheus_client metrics:
counters grow by what each object counted since the last sample, gauges are set. So they
cost nothing on the hot path.

When they are sampled: in one process, whenever the registry is collected (a scrape:
``Sampling`` is registered before the metrics it updates). In prometheus_client's
multiprocess mode a scrape reads every worker's files, never a worker's registry: each
worker samples every ``SAMPLE_SECONDS`` in a daemon thread, and once more at exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from djredis._io.aio import reconnects
from djredis._io.loops import multiplexed_connections
from djredis._io.pool import pools
from djredis.cache.near.tier import near_caches

__all__ = ["SAMPLE_SECONDS", "Sampling", "StateMetrics"]

# In multiprocess mode, how often each worker writes its figures.
SAMPLE_SECONDS = 5.0
# The near-cache's own counters, exported as djredis_near_cache_<name>_total.
NEAR_COUNTERS = ("hits", "misses", "evictions", "invalidations", "flushes")


class StateMetrics:
    """The sampled metrics of one registry."""

    def __init__(self, target: CollectorRegistry, child: Callable[..., Any]) -> None:
        # Registered before the metrics it updates: a scrape samples them, then reads them.
        target.register(Sampling(self))
        self._child = child  # the observer's cache of labelled children
        self._lock = threading.Lock()
        self._last: dict[tuple[Any, ...], float] = {}
        self._gauged: set[tuple[Any, ...]] = set()

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=target)

        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=target, multiprocess_mode="livesum")

        self.near = {
            name: counter(
                f"djredis_near_cache_{name}_total",
                f"Near-cache {name} (the local tier's own counters)",
                ["alias"],
            )
            for name in NEAR_COUNTERS
        }
        self.near_entries = gauge(
            "djredis_near_cache_entries", "Entries in the near-cache's local tier", ["alias"]
        )
        self.near_bytes = gauge(
            "djredis_near_cache_bytes",
            "Bytes the near-cache's local tier holds (keys, values, overhead)",
            ["alias"],
        )
        self.pool_connections = gauge(
            "djredis_pool_connections",
            "Blocking connections of djredis's pools: in_use (checked out) or idle",
            ["server", "state"],
        )
        self.pool_max = gauge(
            "djredis_pool_max_connections", "max_connections of each pool", ["server"]
        )
        self.pool_waits = counter(
            "djredis_pool_waits_total",
            "Times a thread waited for a connection (BlockingConnectionPool at its maximum)",
            ["server"],
        )
        self.pool_refusals = counter(
            "djredis_pool_refusals_total",
            "Times no connection was to be had (max_connections reached, or waited in vain)",
            ["server"],
        )
        self.multiplexed = gauge(
            "djredis_multiplexed_connections",
            "Open multiplexed (async) connections: one per event loop and server",
            ["server"],
        )
        self.multiplexed_pending = gauge(
            "djredis_multiplexed_pending_commands",
            "Commands on the multiplexed connections awaiting their replies",
            ["server"],
        )
        self.reconnects = counter(
            "djredis_reconnects_total",
            "Connections opened again after one to the same server broke or was found dead",
            ["server"],
        )

    def sample(self) -> None:
        """Copy the near-caches' counters and the connections' state into the metrics."""
        with self._lock:
            counts: dict[tuple[Any, ...], float] = {}  # (metric, *labels, the object's id)
            gauges: dict[tuple[Any, ...], float] = {}  # (metric, *labels)

            def add(key: tuple[Any, ...], value: float) -> None:
                gauges[key] = gauges.get(key, 0.0) + value

            for near in near_caches():
                alias = ",".join(sorted(near.aliases))
                stats = near.stats()
                for name in NEAR_COUNTERS:
                    counts[self.near[name], alias, id(near)] = stats[name]
                add((self.near_entries, alias), stats["entries"])
                add((self.near_bytes, alias), stats["bytes"])
            for pool in pools():
                server = pool.server.describe()
                opened, idle, most = pool.state()
                add((self.pool_connections, server, "in_use"), max(0, opened - idle))
                add((self.pool_connections, server, "idle"), idle)
                add((self.pool_max, server), most)
                counts[self.pool_waits, server, id(pool)] = pool.waits
                counts[self.pool_refusals, server, id(pool)] = pool.refusals
                counts[self.reconnects, server, id(pool)] = pool.reconnects
            for conn in multiplexed_connections():
                server = conn.describe()
                add((self.multiplexed, server), conn.connected)
                add((self.multiplexed_pending, server), conn.pending())
            for config, made in list(reconnects.items()):  # of every loop's connections
                counts[self.reconnects, config.describe(), "multiplexed"] = made
            for key, count in counts.items():
                # A counter grows by what the object counted since the last sample (all of
                # it when the object is new, or was reset by a fork).
                before = self._last.get(key, 0.0)
                grown = count - before if count >= before else count
                if grown:
                    self._child(key[0], *key[1:-1]).inc(grown)
            self._last = counts
            for gone in self._gauged - set(gauges):  # its objects are gone (a closed loop)
                self._child(gone[0], *gone[1:]).set(0)
            for key, level in gauges.items():
                self._child(key[0], *key[1:]).set(level)
            self._gauged = set(gauges)


class Sampling:
    """Samples the state metrics when its registry is collected; reports no metric itself."""

    def __init__(self, state: StateMetrics) -> None:
        self._state = state

    def describe(self) -> list[Any]:
        return []  # registering must not sample (the metrics do not exist yet)

    def collect(self) -> list[Any]:
        if hasattr(self._state, "reconnects"):  # fully built
            self._state.sample()
        return []
