"""A computation that fails under stampede protection, on a real Redis.

Two promises: a failure does not turn the waiting callers into a queue (each taking the lock
in turn and failing after the function's own time), and an exception raised by the user's
function is never taken for Redis being unreachable, whatever its type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis

from djredis.cache import RecomputeError, RedisCache, memoize
from djredis.cache.stampede import failures_key, lock_key

from .test_stampede import Computation, in_tasks, in_threads

CALLERS = 20
ALWAYS = tuple(range(1, 1000))


def storm(cache: RedisCache, computation: Computation, how: str, mode: str) -> list[Any]:
    """``CALLERS`` concurrent callers of ``computation`` through ``how`` (memoize or
    get_or_set), as threads (sync) or tasks (async); return what each got or raised."""
    if mode == "sync":
        if how == "memoize":
            return in_threads(memoize(60, cache=cache)(computation), CALLERS)[0]
        return in_threads(lambda: cache.get_or_set("hot", computation, 60, stampede=True), CALLERS)[
            0
        ]
    if how == "memoize":

        @memoize(60, cache=cache)
        async def cached() -> str:
            return await computation.acompute()

        return in_tasks(cached, CALLERS)[0]
    return in_tasks(
        lambda: cache.aget_or_set("hot", computation.acompute, 60, stampede=True), CALLERS
    )[0]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("how", ["memoize", "get_or_set"])
def test_a_failing_computation_runs_twice_and_releases_every_waiter(
    big_pool_cache: RedisCache, redis_client: redis.Redis, how: str, mode: str
) -> None:
    """The holder fails: one waiter tries once more; when that fails too, the others raise
    RecomputeError at once. Before, each waiter took the lock in turn (20 runs, 1 s)."""
    computation = Computation(fail_on=ALWAYS)

    results = storm(big_pool_cache, computation, how, mode)

    assert computation.runs == 2
    own = [r for r in results if type(r) is RuntimeError]
    waited = [r for r in results if isinstance(r, RecomputeError)]
    assert len(own) == 2  # the two callers that ran it see its own exception
    assert len(waited) == CALLERS - 2
    assert all(r.error == "builtins.RuntimeError" for r in waited)
    assert "failed to compute twice" in str(waited[0])
    keys = [k.decode() for k in redis_client.keys("*")]
    assert not [k for k in keys if k.endswith(":\x00lock")]  # released


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("how", ["memoize", "get_or_set"])
def test_a_computation_failing_once_is_retried_once_and_everyone_gets_the_value(
    big_pool_cache: RedisCache, how: str, mode: str
) -> None:
    computation = Computation(fail_on=(1,))

    results = storm(big_pool_cache, computation, how, mode)

    assert computation.runs == 2
    assert sum(type(r) is RuntimeError for r in results) == 1
    assert results.count("value") == CALLERS - 1


def test_failures_of_an_earlier_burst_do_not_refuse_a_later_caller(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    """The failure count is relative to what each caller saw when it began waiting."""
    failing = Computation(fail_on=ALWAYS)
    in_threads(lambda: cache.get_or_set("k", failing, 60, stampede=True), 5)
    assert int(redis_client.hget(failures_key(cache.make_key("k")), "n") or 0) >= 1

    assert cache.get_or_set("k", lambda: "fine", 60, stampede=True) == "fine"


def test_a_waiter_counts_only_failures_after_it_began_waiting(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    """Two failures recorded before a caller arrives, a lock held by someone else: the
    caller waits (it does not raise), and takes the lock once it is free."""
    full = cache.make_key("k")
    redis_client.hset(failures_key(full), mapping={"n": 2, "error": "builtins.ValueError"})
    redis_client.set(lock_key(full), "other", px=200)

    assert cache.get_or_set("k", lambda: "computed", 60, stampede=True) == "computed"


def test_the_failure_count_expires(cache: RedisCache, redis_client: redis.Redis) -> None:
    failing = Computation(fail_on=ALWAYS)
    with pytest.raises(RuntimeError):
        cache.get_or_set("k", failing, 60, stampede=True)

    pttl = redis_client.pttl(failures_key(cache.make_key("k")))
    assert 0 < pttl <= 2 * 10_000  # twice the default lock_timeout


def test_garbage_in_the_failure_count_is_a_script_error_not_a_hang(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    """A failure record of the wrong type surfaces as Redis's error (WRONGTYPE)."""
    redis_client.set(failures_key(cache.make_key("k")), "garbage")

    with pytest.raises(redis.ResponseError):
        cache.get_or_set("k", lambda: "v", 60, stampede=True)


# -- the user's own exception is not Redis being away --------------------------------------

TRANSPORT_LOOKALIKES = [
    redis.ConnectionError("the function's own connection failed"),
    redis.TimeoutError("the function's own call timed out"),
]


def _raiser(error: Exception, runs: list[int]) -> Callable[[], Any]:
    def compute() -> Any:
        runs.append(1)
        raise error

    return compute


def _araiser(error: Exception, runs: list[int]) -> Callable[[], Any]:
    async def compute() -> Any:
        runs.append(1)
        await asyncio.sleep(0)
        raise error

    return compute


@pytest.mark.parametrize("error", TRANSPORT_LOOKALIKES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("stampede", [True, False])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_memoized_function_raising_a_redis_error_runs_once_and_raises_it(
    cache: RedisCache, error: Exception, stampede: bool, mode: str
) -> None:
    runs: list[int] = []
    if mode == "sync":
        cached = memoize(60, cache=cache, stampede=stampede)(_raiser(error, runs))
        with pytest.raises(type(error)) as raised:
            cached()
    else:
        cached = memoize(60, cache=cache, stampede=stampede)(_araiser(error, runs))
        with pytest.raises(type(error)) as raised:
            asyncio.run(cached())

    assert raised.value is error
    assert len(runs) == 1
    # Its traceback still reaches into the function that raised it.
    assert raised.traceback[-1].name == "compute"


@pytest.mark.parametrize("error", TRANSPORT_LOOKALIKES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_get_or_set_default_raising_a_redis_error_runs_once_even_when_ignoring_errors(
    make_cache: Callable[..., RedisCache], error: Exception, mode: str
) -> None:
    """IGNORE_EXCEPTIONS is about Redis: the default's own error is raised, not ignored
    and not retried."""
    lenient = make_cache(OPTIONS={"IGNORE_EXCEPTIONS": True})
    runs: list[int] = []

    def call() -> Any:
        if mode == "sync":
            return lenient.get_or_set("k", _raiser(error, runs), 60, stampede=True)
        return asyncio.run(lenient.aget_or_set("k", _araiser(error, runs), 60, stampede=True))

    with pytest.raises(type(error)) as raised:
        call()

    assert raised.value is error
    assert len(runs) == 1


def test_exception_chain_of_the_users_error_is_kept(cache: RedisCache) -> None:
    @memoize(60, cache=cache)
    def chained() -> None:
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("wrapped") from exc

    with pytest.raises(ValueError, match="wrapped") as raised:
        chained()
    assert isinstance(raised.value.__cause__, KeyError)


def test_a_failure_count_that_is_not_a_number_counts_as_none(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    redis_client.hset(failures_key(cache.make_key("k")), mapping={"n": "x", "error": b"\xff"})

    assert cache.get_or_set("k", lambda: "v", 60, stampede=True) == "v"


@pytest.mark.topologies
def test_failure_count_shares_the_keys_slot_on_every_topology(
    make_cache: Callable[..., RedisCache], topology: Any
) -> None:
    """The claim script reads the value, the lock and the failure count: in a Cluster they
    must share one hash slot (the user key is the hash tag)."""
    cache = make_cache(OPTIONS={"CONNECTION_POOL_KWARGS": {"max_connections": 200}})
    computation = Computation(fail_on=ALWAYS)

    results = in_threads(lambda: cache.get_or_set("key", computation, 60, stampede=True), 10)[0]

    assert computation.runs == 2
    assert sum(isinstance(r, RecomputeError) for r in results) == 8
