"""The near-cache under concurrent misses, on every topology: a hot key read by many tasks
or threads at once is filled once and then served locally (it used to be never filled:
each miss voided the tickets of the reads in flight), also after a write invalidated it,
without giving up the no-stale-fill guarantee for any of the concurrent reads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._near import wait_for

pytestmark = pytest.mark.topologies

TASKS = 50
CALLS = 100


def _gets(stats: Callable[[], dict[str, int]]) -> int:
    counts = stats()
    return counts.get("get", 0) + counts.get("mget", 0)


def _ready(near: RedisCache) -> None:
    """Start the near-cache's tracking and wait until local entries may be served."""
    near.get("not-the-key")
    wait_for(lambda: near.near_stats()["healthy"], 10.0, "tracking")


def test_concurrent_tasks_on_a_cold_key_fill_it_once_and_hit_locally(
    near: RedisCache, plain: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    plain.set("cold", {"v": 1})
    _ready(near)
    before, hits = _gets(stats), near.near_stats()["hits"]

    async def reader() -> list[Any]:
        return [await near.aget("cold") for _ in range(CALLS)]

    async def scenario() -> list[list[Any]]:
        return await asyncio.gather(*(reader() for _ in range(TASKS)))

    assert asyncio.run(scenario()) == [[{"v": 1}] * CALLS] * TASKS
    # At most the first wave of misses (one per task) reaches Redis; before: every call.
    assert _gets(stats) - before <= TASKS
    assert near.near_stats()["hits"] - hits >= TASKS * CALLS - TASKS
    assert near.near_stats()["entries"] == 1


def test_concurrent_threads_on_a_cold_key_fill_it_once_and_hit_locally(
    make_cache: Callable[..., RedisCache],
    plain: RedisCache,
    stats: Callable[[], dict[str, int]],
) -> None:
    from tests._near import NEAR

    threads = 16
    # One cache object per thread, as Django makes them; they share the process's tier.
    caches = [make_cache(KEY_PREFIX="near", OPTIONS=NEAR) for _ in range(threads)]
    plain.set("cold", "value")
    _ready(caches[0])
    before = _gets(stats)
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[] for _ in range(threads)]

    def reader(i: int) -> None:
        barrier.wait()
        results[i] = [caches[i].get("cold") for _ in range(CALLS)]

    workers = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert results == [["value"] * CALLS] * threads
    assert _gets(stats) - before <= threads
    assert caches[0].near_stats()["entries"] == 1


def test_a_hot_key_invalidated_under_sustained_load_is_filled_again(
    near: RedisCache, make_cache: Callable[..., RedisCache]
) -> None:
    """50 tasks read the key without pause while another client writes it: the new value
    is stored locally again while the load goes on (it used to stay uncached)."""
    # The writer's thread competes for the GIL with 50 busy tasks: on a loaded machine its
    # reply can take longer than the default 1 s socket timeout to be read.
    plain = make_cache(KEY_PREFIX="near", OPTIONS={"SOCKET_TIMEOUT": 10})
    plain.set("hot", "old")
    _ready(near)
    state = near._near
    assert state is not None
    full = near.make_key("hot")

    def local() -> Any:
        raw = state._tier.get(full, time.monotonic())
        return None if raw is None else near._decode(raw, full, None)

    async def scenario() -> None:
        stop = asyncio.Event()

        async def reader() -> None:
            # A miss reads again at once (as a busy server's requests do); only a local hit,
            # which does not wait for anything, yields to the other tasks.
            while not stop.is_set():
                hits = state.hits
                await near.aget("hot")
                if state.hits != hits:
                    await asyncio.sleep(0)

        readers = [asyncio.create_task(reader()) for _ in range(TASKS)]
        try:
            # No synchronous read here: it would block the loop and fill the key alone.
            await _until(lambda: local() == "old")
            await asyncio.to_thread(plain.set, "hot", "new")
            # Stored again, with the new value, while the 50 readers go on.
            await _until(lambda: local() == "new")
            hits = near.near_stats()["hits"]
            await _until(lambda: near.near_stats()["hits"] > hits + 1000)
        finally:
            stop.set()
            await asyncio.gather(*readers)

    asyncio.run(scenario())
    assert local() == "new"


async def _until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        await asyncio.sleep(0.001)


def test_get_many_under_concurrent_load_fills_every_key_once(
    near: RedisCache, plain: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    keys = [f"many{i}" for i in range(20)]
    plain.set_many(dict.fromkeys(keys, "v"))
    _ready(near)
    before = stats()

    async def reader() -> None:
        for _ in range(20):
            assert await near.aget_many(keys) == dict.fromkeys(keys, "v")

    async def scenario() -> None:
        await asyncio.gather(*(reader() for _ in range(TASKS)))

    asyncio.run(scenario())
    after = stats()
    # The first wave of 50 requests reads the 20 keys (and their PTTL) in one round trip
    # each; the other 950 requests are served locally. Before: 20 GET + 20 PTTL each.
    assert after.get("get", 0) - before.get("get", 0) <= TASKS * len(keys)
    assert after.get("pttl", 0) - before.get("pttl", 0) <= TASKS * len(keys)
    assert near.near_stats()["entries"] == len(keys)


def test_concurrent_reads_in_flight_when_an_invalidation_arrives_store_nothing(
    near: RedisCache, plain: RedisCache
) -> None:
    """No stale fill with a shared ticket: two reads of the key are answered (old value),
    then another client writes and its invalidation is applied, then both old replies
    arrive: neither is kept, and the next read takes a fresh ticket that may fill."""
    near.set("race", "old")
    _ready(near)
    state = near._near
    assert state is not None
    full = near.make_key("race")
    first, second = near._near_read(state, full, None), near._near_read(state, full, None)
    replies = [near._group.execute(next(first)), near._group.execute(next(second))]
    assert state._tier._tickets.get(full) is not None
    plain.set("race", "new")
    wait_for(lambda: state._tier._tickets.get(full) is None, 1.0, "the invalidation")
    for read, reply in zip((first, second), replies, strict=True):
        with pytest.raises(StopIteration) as stop:
            read.send(reply)
        assert stop.value.value == "old"  # the callers get what Redis answered...
    assert state.stats()["entries"] == 0  # ...but none of it is kept
    assert near.get("race") == "new"
    assert near.get("race") == "new"
    assert state.stats()["entries"] == 1


def test_a_late_read_after_an_invalidation_does_not_revive_a_voided_ticket(
    near: RedisCache, plain: RedisCache
) -> None:
    """A read begun before the invalidation and one begun after it: only the later one,
    which saw the new value, may store."""
    near.set("race", "old")
    _ready(near)
    state = near._near
    assert state is not None
    full = near.make_key("race")
    early = near._near_read(state, full, None)
    early_reply = near._group.execute(next(early))
    plain.set("race", "new")
    wait_for(lambda: state._tier._tickets.get(full) is None, 1.0, "the invalidation")

    def late_read_stores() -> bool:
        # With replicas the near-cache hears each tracked server: the replica's invalidation
        # may come after the primary's and void a late read too (it stores nothing then);
        # a later one stores.
        late = near._near_read(state, full, None)
        late_reply = near._group.execute(next(late))
        with pytest.raises(StopIteration):
            late.send(late_reply)
        return state._tier.get(full, time.monotonic()) is not None

    wait_for(late_read_stores, 5.0, "a read begun after the invalidation to store")
    with pytest.raises(StopIteration):
        early.send(early_reply)  # arrives last, with the voided ticket
    raw = state._tier.get(full, time.monotonic())
    assert raw is None or near._decode(raw, full, None) == "new"  # never the old value
    assert state._tier._tickets.get(full) is None  # every holder done: nothing left behind
