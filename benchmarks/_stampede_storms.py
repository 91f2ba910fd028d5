"""The stampede half of ``benchmarks/stampede.py``: the guide's decorator and the contenders.

Each contender serves 100 callers released together (threads or asyncio tasks) on a missing
key whose computation takes 50 ms; ``run_storms`` runs them all, in an order rotated each
round, and keeps how often the function ran and every caller's latency.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CALLERS = 100
COMPUTE = 0.05
VALUE = {"id": 42, "name": "Ada Lovelace", "tags": ["math", "engines"], "score": 97.5}

# -- the guide's decorator, verbatim (shared/seeds, "Custom Cache Key Generation") -------------
# Only the import is the guide's; its `cache` is Django's default cache, here djredis.

from django.core.cache import cache  # noqa: E402, I001
import hashlib  # noqa: E402


def generate_cache_key(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Generate consistent cache key from arguments"""
    key_data = f"{args}:{sorted(kwargs.items())}"
    return hashlib.md5(key_data.encode()).hexdigest()


def cached_function(func):  # type: ignore[no-untyped-def]
    """Decorator for caching function results"""

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        cache_key = f"func:{func.__name__}:{generate_cache_key(*args, **kwargs)}"
        result = cache.get(cache_key)

        if result is None:
            result = func(*args, **kwargs)
            cache.set(cache_key, result, timeout=300)

        return result

    return wrapper


# -- stampede contenders ------------------------------------------------------------------------


@dataclass
class Counter:
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self) -> None:
        with self.lock:
            self.runs += 1


@dataclass(frozen=True)
class Stampeder:
    """One way to serve 100 callers: ``make(counter)`` returns (call, reset, kind)."""

    name: str
    kind: str  # "threads" or "tasks"
    make: Callable[[Counter], tuple[Callable[[], Any], Callable[[], None]]]


def guide_threads(counter: Counter) -> tuple[Callable[[], Any], Callable[[], None]]:
    @cached_function
    def expensive_query(user_id, include_details=False):  # type: ignore[no-untyped-def]
        counter.bump()
        time.sleep(COMPUTE)
        return VALUE

    key = f"func:expensive_query:{generate_cache_key(7)}"
    return lambda: expensive_query(7), lambda: cache.delete(key)


def memoize_threads(counter: Counter) -> tuple[Callable[[], Any], Callable[[], None]]:
    from djredis.cache import memoize

    @memoize(300)
    def expensive_query(user_id: int, include_details: bool = False) -> dict[str, Any]:
        counter.bump()
        time.sleep(COMPUTE)
        return VALUE

    return lambda: expensive_query(7), lambda: expensive_query.invalidate(7)


def get_or_set_threads(stampede: bool) -> Callable[[Counter], Any]:
    def make(counter: Counter) -> tuple[Callable[[], Any], Callable[[], None]]:
        def compute() -> dict[str, Any]:
            counter.bump()
            time.sleep(COMPUTE)
            return VALUE

        if stampede:
            return (
                lambda: cache.get_or_set("gos", compute, 300, stampede=True),  # type: ignore[call-arg]
                lambda: cache.delete("gos"),
            )
        return lambda: cache.get_or_set("gos", compute, 300), lambda: cache.delete("gos")

    return make


def guide_async_port(counter: Counter) -> tuple[Callable[[], Any], Callable[[], None]]:
    async def expensive_query(user_id: int) -> dict[str, Any]:
        counter.bump()
        await asyncio.sleep(COMPUTE)
        return VALUE

    async def call() -> Any:  # the guide's logic with the a* API
        key = f"func:expensive_query:{generate_cache_key(7)}"
        result = await cache.aget(key)
        if result is None:
            result = await expensive_query(7)
            await cache.aset(key, result, timeout=300)
        return result

    return call, lambda: cache.delete(f"func:expensive_query:{generate_cache_key(7)}")


def memoize_tasks(counter: Counter) -> tuple[Callable[[], Any], Callable[[], None]]:
    from djredis.cache import memoize

    @memoize(300)
    async def expensive_query(user_id: int) -> dict[str, Any]:
        counter.bump()
        await asyncio.sleep(COMPUTE)
        return VALUE

    return lambda: expensive_query(7), lambda: expensive_query.invalidate(7)


STAMPEDERS = (
    Stampeder("guide cached_function", "threads", guide_threads),
    Stampeder("Django get_or_set", "threads", get_or_set_threads(False)),
    Stampeder("djredis get_or_set(stampede=True)", "threads", get_or_set_threads(True)),
    Stampeder("djredis memoize", "threads", memoize_threads),
    Stampeder("guide logic, async port", "tasks", guide_async_port),
    Stampeder("djredis memoize, async def", "tasks", memoize_tasks),
)


def storm_threads(call: Callable[[], Any]) -> list[float]:
    barrier = threading.Barrier(CALLERS)
    waits = [0.0] * CALLERS

    def worker(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        if call() != VALUE:
            raise RuntimeError("wrong value")
        waits[i] = time.perf_counter() - started

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return waits


def storm_tasks(call: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> list[float]:
    async def one() -> float:
        started = time.perf_counter()
        if await call() != VALUE:
            raise RuntimeError("wrong value")
        return time.perf_counter() - started

    async def main() -> list[float]:
        return list(await asyncio.gather(*(one() for _ in range(CALLERS))))

    return loop.run_until_complete(main())


@dataclass
class StormResults:
    runs: dict[str, list[int]] = field(default_factory=dict)
    waits: dict[str, list[list[float]]] = field(default_factory=dict)

    def latency(self, name: str, q: float | None) -> float:
        """Return the median over rounds of each round's ``q``-th percentile latency (s);
        ``q=None`` for each round's slowest caller. One bad round moves it little."""
        per_round = [max(w) if q is None else percentile(w, q) for w in self.waits[name]]
        return statistics.median(per_round)


def run_storms(rounds: int) -> StormResults:
    results = StormResults()
    loop = asyncio.new_event_loop()
    prepared = []
    for stampeder in STAMPEDERS:
        counter = Counter()
        call, reset = stampeder.make(counter)
        prepared.append((stampeder, counter, call, reset))
    try:
        for number in range(rounds):
            for stampeder, counter, call, reset in rotated_list(prepared, number):
                reset()
                counter.runs = 0
                if stampeder.kind == "threads":
                    waits = storm_threads(call)
                else:
                    waits = storm_tasks(call, loop)
                results.runs.setdefault(stampeder.name, []).append(counter.runs)
                results.waits.setdefault(stampeder.name, []).append(waits)
            print(f"  stampede round {number + 1}/{rounds} done", file=sys.stderr)
    finally:
        loop.close()
    return results


def rotated_list(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
