"""The near-cache (``OPTIONS['NEAR_CACHE']``) on every topology: local hits cost no round
trip, other clients' writes invalidate, this process's writes are visible at once, no
stale fill, FLUSHDB and the key's TTL empty it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._near import NEAR, wait_for, warm

pytestmark = pytest.mark.topologies


def deaf(cache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore Redis's invalidations from now on, so only the process's own writes can
    drop local entries (the health heartbeat goes on)."""
    monkeypatch.setattr(cache._near, "invalidate", lambda keys: None)


def test_near_stats_is_none_when_the_near_cache_is_off(plain: RedisCache) -> None:
    assert plain.near_stats() is None


def test_a_hot_key_is_served_locally_without_a_round_trip(
    near: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    near.set("hot", {"flag": True})
    warm(near, "hot")
    gets = stats().get("get", 0)
    hits = near.near_stats()["hits"]
    for _ in range(200):
        assert near.get("hot") == {"flag": True}
    assert stats().get("get", 0) == gets
    assert near.near_stats()["hits"] - hits == 200


def test_a_hot_key_is_served_locally_without_a_round_trip_async(
    near: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    near.set("hot", {"flag": True})
    warm(near, "hot")
    gets = stats().get("get", 0)

    async def scenario() -> list[Any]:
        return [await near.aget("hot") for _ in range(200)]

    assert asyncio.run(scenario()) == [{"flag": True}] * 200
    assert stats().get("get", 0) == gets


def test_writes_on_every_primary_invalidate(near: RedisCache, plain: RedisCache) -> None:
    """Keys spread over every hash slot range (every primary of a Cluster)."""
    keys = [f"spread{i}" for i in range(60)]
    plain.set_many(dict.fromkeys(keys, "old"))
    warm(near, keys[0])
    assert near.get_many(keys) == dict.fromkeys(keys, "old")
    plain.set_many(dict.fromkeys(keys, "new"))
    wait_for(lambda: near.get_many(keys) == dict.fromkeys(keys, "new"), 2.0, "every key")


def test_a_local_hit_returns_a_fresh_copy_each_time(near: RedisCache) -> None:
    near.set("list", [1, 2])
    warm(near, "list")
    near.get("list").append(3)
    assert near.get("list") == [1, 2]


def test_another_clients_write_invalidates_the_local_entry(
    near: RedisCache, plain: RedisCache
) -> None:
    near.set("flag", "old")
    warm(near, "flag")
    plain.set("flag", "new")
    wait_for(lambda: near.get("flag") == "new", 1.0, "the new value")
    assert near.near_stats()["invalidations"] >= 1


def test_get_many_and_has_key_use_the_local_tier(
    near: RedisCache, plain: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    near.set_many({"a": 1, "b": 2})
    warm(near, "a")
    near.get_many(["a", "b"])
    before = stats()
    assert near.get_many(["a", "b", "absent"]) == {"a": 1, "b": 2}
    assert near.has_key("a")
    after = stats()
    assert after.get("exists", 0) == before.get("exists", 0)
    # Only the absent key went to Redis (GET + PTTL in one round trip).
    assert after.get("get", 0) - before.get("get", 0) == 1
    plain.delete("b")
    wait_for(lambda: near.get_many(["a", "b"]) == {"a": 1}, 1.0, "b invalidated")


WRITES: dict[str, tuple[Callable[[RedisCache], Any], Any]] = {
    "set": (lambda c: c.set("k", "new"), "new"),
    "delete": (lambda c: c.delete("k"), None),
    "incr": (lambda c: c.incr("k", 5), 6),
    "incr_version": (lambda c: c.incr_version("k"), None),
    "clear": (lambda c: c.clear(), None),
    "touch": (lambda c: c.touch("k", 0), None),
    "set_many": (lambda c: c.set_many({"k": "many"}), "many"),
    "delete_many": (lambda c: c.delete_many(["k"]), None),
    "add_after_delete": (lambda c: (c.delete("k"), c.add("k", "added")), "added"),
}
ASYNC_WRITES: dict[str, Callable[[RedisCache], Any]] = {
    "set": lambda c: c.aset("k", "new"),
    "delete": lambda c: c.adelete("k"),
    "incr": lambda c: c.aincr("k", 5),
    "incr_version": lambda c: c.aincr_version("k"),
    "clear": lambda c: c.aclear(),
    "touch": lambda c: c.atouch("k", 0),
    "set_many": lambda c: c.aset_many({"k": "many"}),
    "delete_many": lambda c: c.adelete_many(["k"]),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_this_process_reads_its_own_write_at_once(
    near: RedisCache, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    near.set("k", 1)
    warm(near, "k")
    deaf(near, monkeypatch)
    operation, expected = WRITES[write]
    operation(near)
    assert near.get("k") == expected


@pytest.mark.parametrize("write", sorted(ASYNC_WRITES))
def test_this_process_reads_its_own_async_write_at_once(
    near: RedisCache, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    near.set("k", 1)
    warm(near, "k")
    deaf(near, monkeypatch)
    expected = WRITES[write][1]

    async def scenario() -> Any:
        assert await near.aget("k") == 1
        await ASYNC_WRITES[write](near)
        return await near.aget("k"), await near.aget_many(["k"]), await near.ahas_key("k")

    got, many, exists = asyncio.run(scenario())
    assert got == expected
    assert many == ({} if expected is None else {"k": expected})
    assert exists is (expected is not None)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_this_process_reads_its_own_stampede_fill_at_once(
    near: RedisCache, plain: RedisCache, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stampede plan's writes go through the cache's runner, write watch included."""
    near.set("k", 1)
    warm(near, "k")
    deaf(near, monkeypatch)
    plain.delete("k")  # unheard: the local tier still holds 1
    if api == "sync":
        filled = near.get_or_set("k", lambda: "computed", stampede=True)
    else:
        filled = asyncio.run(near.aget_or_set("k", lambda: "computed", stampede=True))
    assert filled == "computed"
    assert near.get("k") == "computed"


def test_a_reply_read_before_an_invalidation_is_not_stored(
    near: RedisCache, plain: RedisCache
) -> None:
    """No stale fill: the GET is answered (old value), then another client writes and its
    invalidation is applied, then the old reply arrives: it must not be kept."""
    near.set("race", "old")
    near.get("other")
    wait_for(lambda: near.near_stats()["healthy"], 10.0, "tracking")
    state = near._near
    assert state is not None
    full = near.make_key("race")
    read = near._near_read(state, full, None)
    batch = next(read)
    old_reply = near._group.execute(batch)  # the GET + PTTL as the runner would send them
    plain.set("race", "new")
    wait_for(lambda: state._tier._tickets.get(full) is None, 1.0, "the invalidation")
    with pytest.raises(StopIteration) as stop:
        read.send(old_reply)
    assert stop.value.value == "old"  # the caller gets what Redis answered...
    assert state.stats()["entries"] == 0  # ...but it is not kept
    assert near.get("race") == "new"


def test_flushdb_empties_the_local_tier(near: RedisCache, topology: Any) -> None:
    near.set("a", 1)
    warm(near, "a")
    assert near.near_stats()["entries"] == 1
    for node in topology.primaries():
        topology.admin(node).flushdb()
    wait_for(lambda: near.near_stats()["entries"] == 0, 1.0, "the flush")
    assert near.get("a") is None


def test_a_local_entry_never_outlives_the_keys_ttl(
    near: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    near.set("brief", "soon gone", 0.4)
    warm(near, "brief")
    deaf(near, monkeypatch)  # Redis's expiry notice would hide a wrong local expiry
    wait_for(lambda: near.get("brief") is None, 2.0, "the local expiry")
    assert near.near_stats()["entries"] == 0


def test_only_the_keys_option_prefixes_are_kept(make_cache: Callable[..., RedisCache]) -> None:
    options = {"NEAR_CACHE": {**NEAR["NEAR_CACHE"], "KEYS": ["hot:"]}}
    cache = make_cache(KEY_PREFIX="near", OPTIONS=options)
    cache.set("hot:menu", 1)
    cache.set("cold", 2)
    warm(cache, "hot:menu")
    for _ in range(3):
        assert cache.get("cold") == 2
    assert cache.get_many(["hot:menu", "cold"]) == {"hot:menu": 1, "cold": 2}
    assert cache.near_stats()["entries"] == 1


def test_every_read_server_is_tracked(near: RedisCache, topology: Any) -> None:
    near.get("any")
    wait_for(lambda: near.near_stats()["healthy"], 10.0, "tracking")
    servers = near.near_stats()["servers"]
    expected = len(topology.primaries()) + (
        len(topology.replicas()) if topology.reads_from_replicas else 0
    )
    assert len(servers) == expected


def test_a_forked_child_starts_empty(near: RedisCache) -> None:
    near.set("a", "parent")
    warm(near, "a")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave without pytest's cleanup
        try:
            entries = near.near_stats()["entries"]
            value = near.get("a")
            warm(near, "a")
            os.write(write, f"{entries} {value}".encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as answer:
        assert answer.read() == "0 parent"
    assert near.near_stats()["entries"] == 1
    assert near.get("a") == "parent"


def test_threads_share_one_local_tier(make_cache: Callable[..., RedisCache]) -> None:
    first = make_cache(KEY_PREFIX="near", OPTIONS=NEAR)
    second = make_cache(KEY_PREFIX="near", OPTIONS=NEAR)
    first.set("shared", 1)
    warm(first, "shared")
    hits = second.near_stats()["hits"]
    assert second.get("shared") == 1
    assert second.near_stats()["hits"] == hits + 1


def test_memory_stays_within_max_bytes_under_churn(
    make_cache: Callable[..., RedisCache],
) -> None:
    cache = make_cache(
        KEY_PREFIX="near", OPTIONS={"NEAR_CACHE": {"MAX_BYTES": 64 * 1024, "MAX_ENTRIES": 10**6}}
    )
    cache.set_many({f"k{i}": "x" * (i * 37 % 2000) for i in range(400)})
    warm(cache, "k1")
    peak = 0
    for round_ in range(3):
        for i in range(400):
            cache.get(f"k{(i * 7 + round_) % 400}")
            peak = max(peak, cache.near_stats()["bytes"])
    final = cache.near_stats()
    assert peak <= 64 * 1024
    assert final["evictions"] > 0
