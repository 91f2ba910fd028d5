"""Hit and miss counters per cache alias, and what each cache's Redis server says of itself.

Counters (``cache_stats``) are kept in this process, by the backend's read paths: every
``get``/``aget``, ``get_or_set``/``aget_or_set`` read and every key of ``get_many``/
``aget_many`` counts one hit (the key held a decodable value) or one miss. They cost one
uncontended lock per read and no Redis command. They are per process: a site served by
several worker processes has one set per worker, and a management command starts at zero.
Caches configured identically (same ``CACHES`` entry location and options, same
``KEY_PREFIX``) share one set, as Django gives each thread its own backend object.

``server_stats`` asks the server (``INFO`` and a timed ``PING``): keys per database,
memory, connected clients, operations per second, its own keyspace hit ratio (all clients,
all databases) and the round-trip latency from this process.

    from djredis.cache.stats import cache_stats, server_stats

    cache_stats("default")   # CacheStats(alias='default', hits=10, misses=2, ...)
    server_stats("default")  # ServerStats(reachable=True, latency_ms=0.21, ...)
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches

from djredis._core import observe
from djredis._core.commands import Call, Operation

__all__ = [
    "CacheCounters",
    "CacheStats",
    "ServerStats",
    "all_cache_stats",
    "cache_stats",
    "counters_for",
    "djredis_aliases",
    "djredis_cache",
    "parse_info",
    "probe_servers",
    "reset_cache_stats",
    "server_stats",
]


class CacheCounters:
    """Thread-safe hit and miss counts of one cache (shared by its per-thread backends)."""

    __slots__ = ("_lock", "alias", "hits", "misses")

    def __init__(self, alias: str = "") -> None:
        self._lock = threading.Lock()
        self.alias = alias  # what metrics and spans call this cache
        self.hits = 0
        self.misses = 0

    def record(self, hits: int, misses: int) -> None:
        """Add ``hits`` and ``misses`` (and tell the observers: djredis.metrics, otel)."""
        lock = self._lock
        lock.acquire()  # not ``with``: its two method calls cost more than the adding
        try:
            self.hits += hits
            self.misses += misses
        finally:
            lock.release()
        found = observe.hooks
        if found is not None and found.reads:
            observe.cache_reads(self.alias, int(hits), int(misses))

    def reset(self) -> None:
        """Set both counts back to zero."""
        with self._lock:
            self.hits = self.misses = 0


_COUNTERS: dict[tuple[str, str], CacheCounters] = {}
_COUNTERS_LOCK = threading.Lock()


def counters_for(where: str, key_prefix: str) -> CacheCounters:
    """Return the counters of the cache configured at ``where`` with ``key_prefix``."""
    with _COUNTERS_LOCK:
        found = _COUNTERS.get((where, key_prefix))
        if found is None:
            found = _COUNTERS[where, key_prefix] = CacheCounters(observe.scope(where)[1])
        return found


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one alias's counters in this process."""

    alias: str
    hits: int
    misses: int
    near: dict[str, Any] | None = None
    """The near-cache's own statistics, when the cache has ``near_stats()``."""

    @property
    def reads(self) -> int:
        """Return hits + misses."""
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float | None:
        """Return hits / reads, or None before the first read."""
        return self.hits / self.reads if self.reads else None


def _is_djredis(backend: Any) -> bool:
    # Every djredis cache holds its counters (CacheBase.__init__); this module cannot
    # import the backend, which imports it.
    return isinstance(getattr(backend, "_stats", None), CacheCounters)


def djredis_aliases() -> list[str]:
    """Return the aliases of ``settings.CACHES`` whose backend is a djredis cache."""
    return [alias for alias in settings.CACHES if _is_djredis(caches[alias])]


def djredis_cache(alias: str) -> Any:
    """Return the djredis cache ``alias``; ``TypeError`` when another backend serves it."""
    backend = caches[alias]
    if not _is_djredis(backend):
        raise TypeError(
            f"CACHES[{alias!r}] is {type(backend).__module__}.{type(backend).__qualname__}, "
            "not djredis.cache.RedisCache: it has no djredis statistics"
        )
    return backend


def cache_stats(alias: str = "default") -> CacheStats:
    """Return the hit and miss counts of the djredis cache ``alias`` in this process."""
    backend = djredis_cache(alias)
    counters: CacheCounters = backend._stats
    near_stats = getattr(backend, "near_stats", None)
    reported = near_stats() if callable(near_stats) else None  # None: the near-cache is off
    near = dict(reported) if reported is not None else None
    return CacheStats(alias, counters.hits, counters.misses, near)


def all_cache_stats() -> dict[str, CacheStats]:
    """Return ``cache_stats`` of every djredis alias in ``settings.CACHES``."""
    return {alias: cache_stats(alias) for alias in djredis_aliases()}


def reset_cache_stats(alias: str | None = None) -> None:
    """Zero the counters of ``alias`` (every djredis alias when None)."""
    for name in [alias] if alias is not None else djredis_aliases():
        djredis_cache(name)._stats.reset()


@dataclass(frozen=True)
class ServerStats:
    """What the primary behind one cache alias reports, with the latency seen from here."""

    alias: str
    reachable: bool
    latency_ms: float | None = None
    error: str | None = None
    version: str | None = None
    used_memory: int | None = None
    used_memory_human: str | None = None
    maxmemory_policy: str | None = None
    connected_clients: int | None = None
    ops_per_sec: int | None = None
    keyspace_hits: int | None = None
    keyspace_misses: int | None = None
    keys_per_db: dict[int, int] = field(default_factory=dict)

    @property
    def keyspace_hit_ratio(self) -> float | None:
        """Return the server's own hit ratio (every client, every database)."""
        if self.keyspace_hits is None or self.keyspace_misses is None:
            return None
        total = self.keyspace_hits + self.keyspace_misses
        return self.keyspace_hits / total if total else None


def parse_info(raw: bytes | str) -> dict[str, Any]:
    """Parse an INFO reply: ``name:value`` lines, keyspace lines as ``{keys: N, ...}``."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = line.split(":", 1)
        if name.startswith("db") and name[2:].isdigit():
            fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
            info[name] = {k: int(v) if v.isdigit() else v for k, v in fields.items()}
        else:
            info[name] = value
    return info


def _keys_per_db(info: dict[str, Any]) -> dict[int, int]:
    """Return {db number: key count} from INFO's keyspace section (``db0: {keys: N}``)."""
    result = {}
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict):
            result[int(name[2:])] = int(value.get("keys", 0))
    return dict(sorted(result.items()))


def _op_ping_info() -> Operation[tuple[float, bytes]]:
    """PING then INFO on the primary; return (PING round trip in ms, the INFO text)."""
    started = time.perf_counter()
    yield Call(("PING",))
    latency_ms = (time.perf_counter() - started) * 1000
    raw: bytes = yield Call(("INFO",))
    return latency_ms, raw


def server_stats(alias: str = "default") -> ServerStats:
    """Ask the primary of the djredis cache ``alias`` for INFO and time a PING.

    Both go through the cache's own connections and routing, so the latency is the one the
    cache sees. A server that cannot be reached gives ``reachable=False`` and the error,
    never an exception. On Redis Cluster the figures are those of the node the keyless
    commands go to.
    """
    backend = djredis_cache(alias)
    try:
        reply = backend._run(_op_ping_info(), "server_stats", None)
    except Exception as exc:  # any failure means "not usable from here": report it
        return ServerStats(alias, reachable=False, error=f"{type(exc).__name__}: {exc}")
    if reply is None:  # IGNORE_EXCEPTIONS turned the error into the fallback
        return ServerStats(alias, reachable=False, error="unreachable (IGNORE_EXCEPTIONS is on)")
    latency_ms, raw = reply
    info = parse_info(raw)
    return ServerStats(
        alias,
        reachable=True,
        latency_ms=round(latency_ms, 3),
        version=str(info.get("redis_version")),
        used_memory=int(info.get("used_memory", 0)),
        used_memory_human=str(info.get("used_memory_human")),
        maxmemory_policy=info.get("maxmemory_policy"),
        connected_clients=int(info.get("connected_clients", 0)),
        ops_per_sec=int(info.get("instantaneous_ops_per_sec", 0)),
        keyspace_hits=int(info.get("keyspace_hits", 0)),
        keyspace_misses=int(info.get("keyspace_misses", 0)),
        keys_per_db=_keys_per_db(info),
    )


_CREDENTIALS = re.compile(r"(\w+://)[^@/]*@")


def _location(alias: str) -> str:
    """Return the alias's LOCATION for display, with any password masked."""
    location = settings.CACHES[alias].get("LOCATION", "")
    return _CREDENTIALS.sub(r"\1***@", str(location))


def probe_servers() -> list[tuple[str, ServerStats]]:
    """Return (LOCATION with passwords masked, server stats) of every djredis cache alias."""
    return [(_location(alias), server_stats(alias)) for alias in djredis_aliases()]
