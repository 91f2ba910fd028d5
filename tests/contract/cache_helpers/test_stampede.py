"""Stampede protection on a real Redis: one computation for 100 concurrent callers.

The callers are threads (the sync API) or asyncio tasks (the native async API), all asking
for a key that is missing while its computation takes 50 ms. Counts are asserted exactly;
times only loosely (benchmarks/stampede.py measures them).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from djredis.cache import RedisCache, Stampede, memoize
from djredis.cache.stampede import lock_key
from tests._sessions import sent_commands

CALLERS = 100
COMPUTE_SECONDS = 0.05


class Computation:
    """A 50 ms computation that counts its runs (and may fail on chosen runs)."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.runs = 0
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def _start(self) -> int:
        with self._lock:
            self.runs += 1
            return self.runs

    def __call__(self) -> str:
        run = self._start()
        time.sleep(COMPUTE_SECONDS)
        if run in self.fail_on:
            raise RuntimeError(f"run {run} failed")
        return "value"

    async def acompute(self) -> str:
        run = self._start()
        await asyncio.sleep(COMPUTE_SECONDS)
        if run in self.fail_on:
            raise RuntimeError(f"run {run} failed")
        return "value"


def in_threads(call: Callable[[], Any], n: int = CALLERS) -> tuple[list[Any], float]:
    """Run ``call`` in ``n`` threads released together; return results and the longest wait."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    waits = [0.0] * n

    def worker(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        waits[i] = time.perf_counter() - started

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, max(waits)


def in_tasks(call: Callable[[], Any], n: int = CALLERS) -> tuple[list[Any], float]:
    """Run the coroutine function ``call`` as ``n`` tasks; return results and longest wait."""

    async def one() -> tuple[Any, float]:
        started = time.perf_counter()
        try:
            result = await call()
        except Exception as exc:
            result = exc
        return result, time.perf_counter() - started

    async def main() -> list[tuple[Any, float]]:
        return await asyncio.gather(*(one() for _ in range(n)))

    pairs = asyncio.run(main())
    return [result for result, _ in pairs], max(wait for _, wait in pairs)


# -- one computation for 100 callers ------------------------------------------------------


def test_memoize_runs_once_for_100_threads_on_a_missing_key(big_pool_cache: RedisCache) -> None:
    computation = Computation()
    cached = memoize(60, cache=big_pool_cache)(computation)

    results, longest = in_threads(cached)

    assert computation.runs == 1
    assert results == ["value"] * CALLERS
    assert longest < 20 * COMPUTE_SECONDS + 2  # loose: nobody waits for the lock timeout


def test_memoize_runs_once_for_100_tasks_on_a_missing_key(cache: RedisCache) -> None:
    computation = Computation()

    @memoize(60, cache=cache)
    async def cached() -> str:
        return await computation.acompute()

    results, longest = in_tasks(cached)

    assert computation.runs == 1
    assert results == ["value"] * CALLERS
    assert longest < 20 * COMPUTE_SECONDS + 2


def test_get_or_set_with_stampede_runs_once_for_100_threads(big_pool_cache: RedisCache) -> None:
    computation = Computation()

    results, _ = in_threads(
        lambda: big_pool_cache.get_or_set("hot", computation, 60, stampede=True)
    )

    assert computation.runs == 1
    assert results == ["value"] * CALLERS
    assert big_pool_cache.get("hot") == "value"  # stored as is: a plain get reads it


def test_aget_or_set_with_stampede_runs_once_for_100_tasks(cache: RedisCache) -> None:
    computation = Computation()

    results, _ = in_tasks(lambda: cache.aget_or_set("hot", computation.acompute, 60, stampede=True))

    assert computation.runs == 1
    assert results == ["value"] * CALLERS


def test_without_protection_every_caller_computes(big_pool_cache: RedisCache) -> None:
    """The control: the same 100 threads with stampede=False compute many times."""
    computation = Computation()
    cached = memoize(60, cache=big_pool_cache, stampede=False)(computation)

    in_threads(cached)

    assert computation.runs > 1


def test_lock_is_released_and_value_stored_with_its_ttl(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    cache.get_or_set("k", lambda: "v", 30, stampede=True)

    full = cache.make_key("k")
    assert redis_client.exists(lock_key(full)) == 0
    assert 29_000 < redis_client.pttl(full) <= 30_000


def test_round_trips_hit_is_one_get_miss_is_read_claim_fill(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    cached = memoize(60, cache=cache)(Computation())
    cached()  # loads the scripts and opens the connection
    cached.invalidate()

    with sent_commands(redis_client) as miss:
        cached()
    with sent_commands(redis_client) as hit:
        cached()

    assert miss == ["GET", "EVALSHA", "EVALSHA"]
    assert hit == ["GET"]


# -- a failing or vanished lock holder ---------------------------------------------------


def test_holder_exception_releases_the_lock_and_a_waiter_computes(
    big_pool_cache: RedisCache, redis_client: redis.Redis
) -> None:
    computation = Computation(fail_on=(1,))
    cached = memoize(60, cache=big_pool_cache)(computation)

    results, _ = in_threads(cached)

    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1  # only the holder sees its own failure
    assert results.count("value") == CALLERS - 1
    assert computation.runs == 2
    assert redis_client.exists(lock_key(big_pool_cache.make_key(cached.cache_key()))) == 0


def test_async_holder_exception_releases_the_lock(cache: RedisCache) -> None:
    computation = Computation(fail_on=(1,))

    @memoize(60, cache=cache)
    async def cached() -> str:
        return await computation.acompute()

    results, _ = in_tasks(cached)

    assert sum(isinstance(r, RuntimeError) for r in results) == 1
    assert results.count("value") == CALLERS - 1
    assert computation.runs == 2


def test_cancelled_holder_releases_the_lock(cache: RedisCache, redis_client: redis.Redis) -> None:
    started = asyncio.Event()
    computation = Computation()

    @memoize(60, cache=cache)
    async def cached() -> str:
        started.set()
        if computation.runs == 0:
            computation.runs = -1
            await asyncio.sleep(60)  # the first holder hangs until cancelled
        return await computation.acompute()

    async def main() -> list[Any]:
        holder = asyncio.create_task(cached())
        await started.wait()
        waiters = [asyncio.create_task(cached()) for _ in range(10)]
        await asyncio.sleep(0.05)
        holder.cancel()
        return await asyncio.gather(*waiters)

    assert asyncio.run(main()) == ["value"] * 10
    assert computation.runs == 0  # -1, then the single recomputation
    assert redis_client.exists(lock_key(cache.make_key(cached.cache_key()))) == 0


def test_lock_left_by_a_dead_holder_expires_and_one_waiter_computes(
    big_pool_cache: RedisCache, redis_client: redis.Redis
) -> None:
    computation = Computation()
    cached = memoize(60, cache=big_pool_cache)(computation)
    # A holder killed mid-computation leaves its lock with its PX lifetime.
    redis_client.set(lock_key(big_pool_cache.make_key(cached.cache_key())), "dead", px=300)

    results, _ = in_threads(cached, 20)

    assert results == ["value"] * 20
    assert computation.runs == 1


def test_waiters_give_up_after_lock_timeout_and_compute_themselves(
    cache: RedisCache, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    computation = Computation()
    cached = memoize(60, cache=cache, stampede=Stampede(lock_timeout=0.2))(computation)
    # A lock that never expires (written by hand): waiting for it would be forever.
    redis_client.set(lock_key(cache.make_key(cached.cache_key())), "stuck")

    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert cached() == "value"
    assert computation.runs == 1
    assert "still being recomputed" in caplog.text


# -- XFetch: early recomputation ----------------------------------------------------------


def test_xfetch_recomputes_an_entry_close_to_expiry(cache: RedisCache) -> None:
    computation = Computation()
    cached = memoize(60, cache=cache)(computation)
    # An entry that took 10 s to compute and expires in 10 ms: recomputed with p ≈ 0.999.
    cache.set(cached.cache_key(), ["old", 10.0, time.time() + 0.01], 60)

    assert cached() == "value"
    assert computation.runs == 1
    value, delta, expiry = cache.get(cached.cache_key())
    assert value == "value"
    assert COMPUTE_SECONDS <= delta < 10
    assert expiry == pytest.approx(time.time() + 60, abs=5)


def test_xfetch_refreshes_once_for_100_tasks_and_nobody_waits(cache: RedisCache) -> None:
    computation = Computation()

    @memoize(60, cache=cache)
    async def cached() -> str:
        return await computation.acompute()

    cache.set(cached.cache_key(), ["old", 10.0, time.time() + 0.01], 60)

    results, _ = in_tasks(cached)

    assert computation.runs == 1
    assert results.count("value") == 1  # the caller that refreshed it
    assert results.count("old") == CALLERS - 1  # the others got the value they had


def test_xfetch_serves_the_old_value_while_another_caller_refreshes(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    computation = Computation()
    cached = memoize(60, cache=cache)(computation)
    cache.set(cached.cache_key(), ["old", 10.0, time.time() + 0.01], 60)
    redis_client.set(lock_key(cache.make_key(cached.cache_key())), "other", px=5000)

    assert cached() == "old"
    assert computation.runs == 0


def test_xfetch_off_with_beta_zero(cache: RedisCache) -> None:
    computation = Computation()
    cached = memoize(60, cache=cache, stampede=Stampede(beta=0))(computation)
    cache.set(cached.cache_key(), ["old", 10.0, time.time() + 0.01], 60)

    assert cached() == "old"
    assert computation.runs == 0


def test_fresh_entry_is_not_recomputed(cache: RedisCache) -> None:
    computation = Computation()
    cached = memoize(60, cache=cache)(computation)
    cache.set(cached.cache_key(), ["old", 0.05, time.time() + 60], 60)

    assert [cached() for _ in range(50)] == ["old"] * 50
    assert computation.runs == 0


# -- Redis away -----------------------------------------------------------------------------


def test_memoize_fails_open_when_redis_is_down(
    make_cache: Callable[..., RedisCache], dead_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(dead_location)
    computation = Computation()
    cached = memoize(60, cache=cache)(computation)

    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert cached() == cached() == "value"
    assert computation.runs == 2
    assert "could not reach Redis" in caplog.text


def test_async_memoize_fails_open_when_redis_is_down(
    make_cache: Callable[..., RedisCache], dead_location: str
) -> None:
    cache = make_cache(dead_location)
    computation = Computation()

    @memoize(60, cache=cache)
    async def cached() -> str:
        return await computation.acompute()

    assert asyncio.run(cached()) == "value"
    assert computation.runs == 1


def test_get_or_set_stampede_follows_ignore_exceptions(
    make_cache: Callable[..., RedisCache], dead_location: str
) -> None:
    strict = make_cache(dead_location)
    lenient = make_cache(dead_location, OPTIONS={"IGNORE_EXCEPTIONS": True})

    with pytest.raises(RedisConnectionError):
        strict.get_or_set("k", lambda: "v", stampede=True)
    assert lenient.get_or_set("k", lambda: "v", stampede=True) == "v"


def test_get_or_set_keeps_djangos_signature(cache: RedisCache) -> None:
    assert cache.get_or_set("k", "v", 60, None) == "v"
    assert cache.get_or_set("k", lambda: "other", timeout=60, version=None) == "v"
    assert (
        cache.get_or_set("k2", "plain", stampede=True) == "plain"
    )  # not callable: nothing to protect


# -- every topology -----------------------------------------------------------------------


@pytest.mark.topologies
def test_stampede_lock_and_value_share_a_slot_on_every_topology(
    make_cache: Callable[..., RedisCache], topology: Any
) -> None:
    cache = make_cache(OPTIONS={"CONNECTION_POOL_KWARGS": {"max_connections": 200}})
    computation = Computation()

    results, _ = in_threads(
        lambda: cache.get_or_set("{odd}key", computation, 60, stampede=True), 20
    )

    assert results == ["value"] * 20
    assert computation.runs == 1
    # memoize on the cache itself (not the test's read-your-writes wrapper).
    memoized = Computation()
    cached = memoize(60, cache=getattr(cache, "_cache", cache))(memoized)
    results, _ = in_threads(cached, 20)
    assert results == ["value"] * 20
    assert memoized.runs == 1


def test_redis_dying_mid_computation_returns_the_computed_value(
    make_cache: Callable[..., RedisCache], own_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The holder computes, Redis goes away before the value is stored: the caller still
    gets its value (logged); nothing raises."""
    cache = make_cache(own_server.url(0))
    runs = []

    def compute() -> str:
        runs.append(1)
        own_server.stop()
        return "computed"

    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert memoize(60, cache=cache)(compute)() == "computed"
    assert len(runs) == 1
    assert "could not reach Redis" in caplog.text


def test_waiters_fail_open_when_redis_dies_while_they_wait(
    make_cache: Callable[..., RedisCache], own_server: Any
) -> None:
    cache = make_cache(own_server.url(0))
    computation = Computation()
    cached = memoize(60, cache=cache)(computation)
    # Another process holds the lock; then Redis dies while these callers wait for it.
    own_server.client().set(cache.make_key(cached.cache_key()) + ":\x00lock", "other", px=5000)
    timer = threading.Timer(0.1, own_server.stop)
    timer.start()

    results, _ = in_threads(cached, 5)

    timer.join()
    assert results == ["value"] * 5
    assert computation.runs == 5  # each computes on its own: there is no cache to share


def test_unpicklable_result_raises_type_error_and_releases_the_lock(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    @memoize(60, cache=cache)
    def make_callback() -> Any:
        return lambda: None

    with pytest.raises(TypeError, match="cannot serialize a value of type function"):
        make_callback()
    assert redis_client.exists(lock_key(cache.make_key(make_callback.cache_key()))) == 0
