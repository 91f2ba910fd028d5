"""Helpers for the near-cache tests: waiting on its health, and the processes of the
multi-process correctness run (importable by ``spawn``-ed children)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The near-cache options of the contract tests: MAX_STALENESS 2 s. With a short bound, a
# heartbeat delayed on a loaded machine stops local hits and empties the tier (as it must),
# which would show up as a round trip in the tests that count them, and would let the
# invalidation tests pass without any invalidation. The bound itself is tested in
# tests/failover/near_cache (STALENESS there).
NEAR = {"NEAR_CACHE": {"MAX_STALENESS": 2.0}}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)


def warm(cache: Any, key: str, timeout: float = 10.0) -> None:
    """Read ``key`` until the near-cache serves it locally (healthy, filled)."""

    def served_locally() -> bool:
        before = cache.near_stats()["hits"]
        cache.get(key)
        return bool(cache.near_stats()["hits"] > before)

    wait_for(served_locally, timeout, f"a local hit on {key!r}")


def _django(location: str, options: dict[str, Any]) -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from djredis.cache import RedisCache

    return RedisCache(location, {"KEY_PREFIX": "mp", "OPTIONS": options})


def writer(
    location: str,
    options: dict[str, Any],
    index: int,
    writers: int,
    keys: int,
    until: float,
    out: str,
) -> None:
    """Write ``(index, seq)`` to this writer's keys in turn until ``until`` (monotonic);
    log when each successful write completed."""
    cache = _django(location, {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5})
    mine = [k for k in range(keys) if k % writers == index]
    done: dict[int, list[tuple[int, float]]] = {k: [] for k in mine}
    seq = 0
    while time.monotonic() < until:
        seq += 1
        key = mine[seq % len(mine)]
        try:
            cache.set(f"k{key}", seq)
        except Exception:
            time.sleep(0.01)
            continue
        done[key].append((seq, time.monotonic()))
        time.sleep(random.random() / 1000)
    Path(out).write_text(json.dumps({str(k): v for k, v in done.items()}))


def reader(location: str, options: dict[str, Any], keys: int, until: float, out: str) -> None:
    """Read random keys through the near-cache until ``until``; log (key, started, seq)."""
    cache = _django(location, options)
    reads: list[tuple[int, float, int]] = []
    hot = list(range(keys))
    while time.monotonic() < until:
        key = random.choice(hot[:10]) if random.random() < 0.8 else random.choice(hot)
        started = time.monotonic()
        try:
            value = cache.get(f"k{key}")
        except Exception:
            continue
        if value is not None:
            reads.append((key, started, int(value)))
    stats = cache.near_stats()
    Path(out).write_text(json.dumps({"reads": reads, "stats": stats}))


def worst_staleness(
    writes: dict[int, list[tuple[int, float]]], reads: list[tuple[int, float, int]]
) -> tuple[float, int]:
    """Return the worst staleness seen and the count of stale reads: for each read, how
    long before it started the write that replaced the value it returned had completed."""
    import bisect

    worst, stale = 0.0, 0
    seqs = {key: [seq for seq, _ in log] for key, log in writes.items()}
    for key, started, seq in reads:
        log = writes[key]
        at = bisect.bisect_right(seqs[key], seq)  # the first successful write after it
        if at < len(log):
            replaced_done = log[at][1]
            if replaced_done < started:
                stale += 1
                worst = max(worst, started - replaced_done)
    return worst, stale


# -- the fault tests -------------------------------------------------------------------------

STALENESS = 0.1
FAULT_OPTIONS = {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True}


def caches(location: str, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Return (a cache with the near-cache, another client of the same keys without)."""
    from djredis.cache import RedisCache

    options = {**FAULT_OPTIONS, **(options or {})}
    near = RedisCache(
        location,
        {
            "KEY_PREFIX": "faults",
            "OPTIONS": {**options, "NEAR_CACHE": {"MAX_STALENESS": STALENESS}},
        },
    )
    return near, RedisCache(location, {"KEY_PREFIX": "faults", "OPTIONS": options})


def listener_ids(cache: Any) -> set[int | None]:
    """Return the CLIENT IDs of the cache's invalidation connections."""
    return {listener.client_id for listener in cache._near._listeners.values()}
