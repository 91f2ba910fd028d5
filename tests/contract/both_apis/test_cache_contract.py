"""Django's cache contract, checked against djredis.cache.RedisCache on a real server.

Django's own ``BaseCacheTests`` is the reference for what these assert; round-trip claims
are counted with INFO commandstats.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import CacheKeyWarning
from redis.exceptions import ResponseError

from djredis.cache import RedisCache
from tests._topologies import Topology

# Every test here runs on each topology (tests/conftest.py).
pytestmark = pytest.mark.topologies

CODECS = [
    pytest.param({}, id="pickle"),
    pytest.param({"SERIALIZER": "json", "COMPRESSOR": "zlib"}, id="json-zlib"),
    pytest.param({"SERIALIZER": "msgpack", "COMPRESSOR": "zstd"}, id="msgpack-zstd"),
    pytest.param({"SERIALIZER": "pickle", "COMPRESSOR": "lz4"}, id="pickle-lz4"),
    pytest.param({"SERIALIZER": "json", "COMPRESSOR": "gzip"}, id="json-gzip"),
    pytest.param({"SERIALIZER": "msgpack", "COMPRESSOR": "lzma"}, id="msgpack-lzma"),
]
# Values every serializer round-trips exactly (JSON has no tuples, sets or bytes).
PORTABLE_VALUES = [
    "text",
    "ünïcode ✓",
    "",
    0,
    -12,
    2**40,
    1.5,
    True,
    False,
    None,
    [1, "two", 3.0],
    {"nested": {"list": [1, 2], "flag": True}},
    "x" * 5000,
]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.01)


@pytest.fixture(params=CODECS)
def any_cache(request: Any, make_cache: Callable[..., RedisCache]) -> RedisCache:
    return make_cache(OPTIONS=request.param, KEY_PREFIX="contract")


@pytest.mark.parametrize("value", PORTABLE_VALUES, ids=repr)
def test_set_then_get_returns_an_equal_value(any_cache: RedisCache, value: Any) -> None:
    any_cache.set("key", value)
    assert any_cache.get("key", "missing") == value
    assert type(any_cache.get("key")) is type(value)


def test_get_many_round_trips_with_every_codec(any_cache: RedisCache) -> None:
    data = {f"k{i}": value for i, value in enumerate(PORTABLE_VALUES)}
    assert any_cache.set_many(data, 30) == []
    assert any_cache.get_many([*data, "absent"]) == data


def test_pickle_keeps_python_types(cache: RedisCache) -> None:
    value = {"tuple": (1, 2), "set": {3}, "bytes": b"\x00\xff", "frozen": frozenset("ab")}
    cache.set("py", value)
    assert cache.get("py") == value


def test_missing_key_returns_the_default(cache: RedisCache) -> None:
    assert cache.get("nope") is None
    assert cache.get("nope", "fallback") == "fallback"
    assert cache.get("nope", default=0) == 0


def test_a_stored_none_is_a_hit(cache: RedisCache) -> None:
    cache.set("none", None)
    assert cache.has_key("none")
    assert cache.get("none", "default") is None
    assert cache.get_many(["none"]) == {"none": None}


def test_add_stores_only_when_absent(cache: RedisCache) -> None:
    assert cache.add("k", "first") is True
    assert cache.add("k", "second") is False
    assert cache.get("k") == "first"


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_non_positive_timeouts_store_nothing(cache: RedisCache, timeout: float) -> None:
    cache.set("old", "value")
    cache.set("old", "new", timeout)
    assert cache.get("old") is None
    assert cache.add("added", "ham", timeout) is True
    assert cache.get("added") is None
    cache.set_many({"m1": 1, "m2": 2}, timeout)
    assert cache.get_many(["m1", "m2"]) == {}
    cache.set("touched", "x", 5)
    assert cache.touch("touched", timeout) is True
    assert cache.get("touched") is None


def test_none_timeout_never_expires(cache: RedisCache) -> None:
    cache.set("forever", 1, None)
    cache.set_many({"forever2": 2}, None)
    assert cache.ttl("forever") is None
    assert cache.ttl("forever2") is None


def test_default_timeout_comes_from_settings(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache(TIMEOUT=60)
    cache.set("k", 1)
    assert 59_000 < cache.pttl("k") <= 60_000
    persistent = make_cache(TIMEOUT=None, KEY_PREFIX="p")
    persistent.set("k", 1)
    assert persistent.ttl("k") is None


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.set("k", 1, 0.5),
        lambda c: c.add("k", 1, 0.5),
        lambda c: c.set_many({"k": 1}, 0.5),
        lambda c: (c.set("k", 1), c.touch("k", 0.5)),
        lambda c: c.get_or_set("k", 1, 0.5),
    ],
    ids=["set", "add", "set_many", "touch", "get_or_set"],
)
def test_timeouts_keep_millisecond_precision(cache: RedisCache, call: Callable[..., Any]) -> None:
    call(cache)
    assert 0 < cache.pttl("k") <= 500
    wait_until(lambda: not cache.has_key("k"), timeout=3)


def test_delete_reports_whether_the_key_existed(cache: RedisCache) -> None:
    cache.set("k", 1)
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None


def test_has_key(cache: RedisCache) -> None:
    assert cache.has_key("k") is False
    cache.set("k", "v")
    assert cache.has_key("k") is True


# The bulk operations are one command each; Redis Cluster cannot mix hash slots in one
# command, so there it is one command per slot (``topology.slots``), sent to every node in
# one round trip.


def test_get_many_is_one_mget(
    cache: RedisCache, stats: Callable[[], dict[str, int]], topology: Topology
) -> None:
    keys = [f"k{i}" for i in range(100)]
    cache.set_many({key: i for i, key in enumerate(keys)})
    before = stats()
    assert cache.get_many(keys) == {f"k{i}": i for i in range(100)}
    after = stats()
    mgets = topology.slots([cache.make_key(key) for key in keys])
    assert after.get("mget", 0) - before.get("mget", 0) == mgets
    assert after.get("get", 0) == before.get("get", 0)


def test_set_many_with_timeout_is_one_round_trip(
    cache: RedisCache, stats: Callable[[], dict[str, int]], topology: Topology
) -> None:
    data = {f"k{i}": i for i in range(100)}
    cache.set_many(data, 30)  # loads the script on every server
    before = stats()
    assert cache.set_many(data, 30) == []
    after = stats()
    changed = {
        cmd: after[cmd] - before.get(cmd, 0) for cmd in after if after[cmd] != before.get(cmd, 0)
    }
    changed.pop("info", None)  # the stats() call itself
    if topology.name == "cluster":
        # One script call per slot; its SETs run server-side.
        scripts = topology.slots([cache.make_key(key) for key in data])
        assert changed == {"evalsha": scripts, "set": 100}
    else:
        # One transaction: the values in one MSET, a script giving each key its TTL (the
        # values never pass through Lua: issue 19's set_many target).
        assert changed == {"multi": 1, "mset": 1, "eval": 1, "pexpire": 100, "exec": 1}
    assert 29_000 < cache.pttl("k99") <= 30_000


def test_set_many_without_timeout_is_one_mset(
    cache: RedisCache, stats: Callable[[], dict[str, int]], topology: Topology
) -> None:
    data = {f"k{i}": i for i in range(10)}
    before = stats()
    cache.set_many(data, None)
    msets = topology.slots([cache.make_key(key) for key in data])
    assert stats().get("mset", 0) - before.get("mset", 0) == msets


def test_delete_many_is_one_del(
    cache: RedisCache, stats: Callable[[], dict[str, int]], topology: Topology
) -> None:
    keys = [f"k{i}" for i in range(10)]
    cache.set_many(dict.fromkeys(keys, 1))
    before = stats()
    assert cache.delete_many(keys) == 10  # the count, as django-redis returns it
    dels = topology.slots([cache.make_key(key) for key in keys])
    assert stats().get("del", 0) - before.get("del", 0) == dels
    assert cache.get_many(keys) == {}


def test_incr_and_decr(cache: RedisCache) -> None:
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.incr("answer", -10) == 42
    assert cache.decr("answer") == 41
    assert cache.decr("answer", 10) == 31
    assert cache.decr("answer", -10) == 41


def test_incr_of_a_missing_key_raises_value_error(cache: RedisCache) -> None:
    with pytest.raises(ValueError, match="does_not_exist"):
        cache.incr("does_not_exist")
    with pytest.raises(ValueError, match="does_not_exist"):
        cache.decr("does_not_exist")
    assert cache.has_key("does_not_exist") is False


def test_incr_keeps_the_ttl(cache: RedisCache) -> None:
    cache.set("counter", 1, 100)
    cache.incr("counter", 5)
    assert 99_000 < cache.pttl("counter") <= 100_000


def test_incr_of_a_non_number_raises_type_error(cache: RedisCache) -> None:
    cache.set("null", None)
    with pytest.raises(TypeError):
        cache.incr("null")
    cache.set("text", "abc")
    with pytest.raises(TypeError):
        cache.incr("text")
    assert cache.get("text") == "abc"


def test_incr_works_on_floats_and_ints_beyond_64_bits_keeping_ttl(cache: RedisCache) -> None:
    cache.set("float", 1.5, 100)
    assert cache.incr("float") == 2.5
    assert cache.get("float") == 2.5
    big = 2**63 - 1
    cache.set("big", big, 100)
    assert cache.incr("big") == 2**63
    assert cache.get("big") == 2**63
    assert cache.incr("big", -1) == big
    assert 99_000 < cache.pttl("big") <= 100_000


def test_incr_is_atomic_across_threads(make_sync_cache: Callable[..., RedisCache]) -> None:
    cache = make_sync_cache()  # threads: the sync API only
    cache.set("hits", 0, 300)

    def worker() -> None:
        for _ in range(100):
            cache.incr("hits")

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("hits") == 1000
    assert cache.ttl("hits") > 290


def test_incr_version_moves_the_value_and_keeps_the_ttl(cache: RedisCache) -> None:
    cache.set("answer", 42, 100)
    assert cache.incr_version("answer") == 2
    assert cache.get("answer") is None
    assert cache.get("answer", version=2) == 42
    assert 99 <= cache.ttl("answer", version=2) <= 100
    assert cache.decr_version("answer", version=2) == 1
    assert cache.get("answer") == 42
    with pytest.raises(ValueError, match="does_not_exist"):
        cache.incr_version("does_not_exist")


def test_versions_are_separate_keys(make_cache: Callable[..., RedisCache]) -> None:
    v1 = make_cache(VERSION=1)
    v2 = make_cache(VERSION=2)
    v1.set("k", "one")
    v2.set("k", "two")
    assert v1.get("k") == "one"
    assert v2.get("k") == "two"
    assert v1.get("k", version=2) == "two"


def custom_key_func(key: str, key_prefix: str, version: int) -> str:
    return f"CUSTOM-{key_prefix}-{version}-{key}"


def test_key_prefix_and_key_function(
    make_cache: Callable[..., RedisCache], redis_client: Any, topology: Topology
) -> None:
    prefixed = make_cache(KEY_PREFIX="site")
    prefixed.set("k", 1)
    assert redis_client.exists(f"site:1:{topology.tagged('k')}")
    custom = make_cache(KEY_FUNCTION=custom_key_func, KEY_PREFIX="cp")
    custom.set("k", 2)
    assert redis_client.exists(f"CUSTOM-cp-1-{topology.tagged('k')}")
    dotted = make_cache(KEY_FUNCTION="tests.contract.both_apis.test_cache_contract.custom_key_func")
    assert dotted.get("k", version=1) is None
    assert custom.get("k") == 2


def test_touch(cache: RedisCache) -> None:
    assert cache.touch("missing", 10) is False
    cache.set("k", 1, 10)
    assert cache.touch("k", 100) is True
    assert 99 <= cache.ttl("k") <= 100
    assert cache.touch("k", None) is True
    assert cache.ttl("k") is None
    assert cache.touch("k", None) is True  # already persistent: still exists


def test_get_or_set(cache: RedisCache) -> None:
    assert cache.get_or_set("k", "computed") == "computed"
    assert cache.get_or_set("k", "other") == "computed"
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return 42

    assert cache.get_or_set("c", compute, 30) == 42
    assert cache.get_or_set("c", compute, 30) == 42
    assert calls == [1]
    assert cache.get_or_set("none", None) is None
    assert cache.has_key("none")


def test_get_or_set_returns_the_value_another_client_added_first(
    cache: RedisCache, redis_client: Any
) -> None:
    def slow_default() -> int:
        redis_client.set(cache.make_key("race"), 7)  # another request fills the key meanwhile
        return 1

    assert cache.get_or_set("race", slow_default) == 7


def test_clear_with_a_prefix_deletes_only_its_keys(
    make_cache: Callable[..., RedisCache], redis_client: Any, stats: Callable[[], dict[str, int]]
) -> None:
    mine = make_cache(KEY_PREFIX="mine")
    theirs = make_cache(KEY_PREFIX="mine2")
    bare = make_cache()
    mine.set_many({f"k{i}": i for i in range(2500)})
    theirs.set("k", "kept")
    bare.set("k", "kept too")
    redis_client.set("session:abc", "not a cache key")
    mine.clear()
    assert mine.get_many(["k0", "k2499"]) == {}
    assert theirs.get("k") == "kept"
    assert bare.get("k") == "kept too"
    assert redis_client.get("session:abc") == b"not a cache key"
    counts = stats()
    assert counts.get("keys", 0) == 0
    assert counts.get("flushdb", 0) == 0
    assert counts["scan"] >= 1
    assert counts["unlink"] >= 3  # batches of at most 1000


def test_clear_without_a_prefix_empties_the_database(cache: RedisCache, redis_client: Any) -> None:
    redis_client.set("anything", 1)
    redis_client.set("other", 1)
    cache.clear()
    assert redis_client.dbsize() == 0


def test_clear_without_a_prefix_keeps_other_databases(
    cache: RedisCache, topology: Topology
) -> None:
    if not topology.has_databases:
        pytest.skip("Redis Cluster has only database 0")
    other_db = topology.primaries()[0].client(1)
    other_db.set("elsewhere", 1)
    cache.clear()
    assert other_db.get("elsewhere") == b"1"
    other_db.flushdb()
    other_db.close()


def test_close_keeps_pooled_connections_unless_asked(
    make_cache: Callable[..., RedisCache], topology: Topology
) -> None:
    kept = make_cache(OPTIONS={"SOCKET_TIMEOUT": 3})
    kept.set("k", 1)
    kept.get("k")
    before = topology.connections_received()
    kept.close()
    kept.get("k")
    assert topology.connections_received() == before
    closing = make_cache(OPTIONS={"CLOSE_CONNECTION": True, "SOCKET_TIMEOUT": 4})
    closing.set("k", 1)
    closing.get("k")
    closing.close()
    before = topology.connections_received()
    closing.get("k")
    assert topology.connections_received() == before + 1


def test_memcached_unsafe_keys_warn_like_django(cache: RedisCache) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.set("key with spaces", 1)
        value = cache.get("key with spaces")
    assert any(issubclass(w.category, CacheKeyWarning) for w in caught)
    assert value == 1  # Redis itself has no problem with such keys


def test_unserializable_value_is_a_type_error_and_writes_nothing(
    make_cache: Callable[..., RedisCache],
) -> None:
    json_cache = make_cache(OPTIONS={"SERIALIZER": "json"})
    json_cache.set("k", "old")
    with pytest.raises(TypeError, match="set"):
        json_cache.set("k", {1, 2})
    with pytest.raises(TypeError, match="set"):
        json_cache.set_many({"a": 1, "k": {3}})
    assert json_cache.get("k") == "old"
    assert json_cache.get("a") is None


def test_garbage_in_redis_is_a_miss_and_a_log_line(
    cache: RedisCache, redis_client: Any, caplog: Any
) -> None:
    redis_client.set(cache.make_key("junk"), b"\x80 not a pickle")
    redis_client.set(cache.make_key("junk2"), b"hello")
    with caplog.at_level("WARNING", logger="djredis.cache"):
        assert cache.get("junk", "default") == "default"
        assert cache.get_many(["junk", "junk2"]) == {}
    assert "cannot be decoded" in caplog.text
    assert len(caplog.records) == 1  # a burst is logged once


def test_after_changing_serializer_and_compressor_old_values_read_only_where_accepted(
    make_cache: Callable[..., RedisCache],
) -> None:
    before = make_cache(OPTIONS={"SERIALIZER": "pickle", "COMPRESSOR": "zlib"}, KEY_PREFIX="live")
    before.set("big", "y" * 10_000)
    before.set("small", {"a": 1})
    after = make_cache(OPTIONS={"SERIALIZER": "json", "COMPRESSOR": "zstd"}, KEY_PREFIX="live")
    assert after.get("big", "miss") == "miss"  # decoding follows the settings, not the bytes
    assert after.get("small", "miss") == "miss"
    migrating = make_cache(
        OPTIONS={
            "SERIALIZER": "json",
            "COMPRESSOR": "zstd",
            "ACCEPT_SERIALIZERS": ["pickle"],
            "ACCEPT_COMPRESSORS": ["zlib"],
        },
        KEY_PREFIX="live",
    )
    assert migrating.get("big") == "y" * 10_000
    assert migrating.get("small") == {"a": 1}
    migrating.set("new", [1])
    assert after.get("new") == [1]


def test_wrongtype_is_a_server_error_that_always_surfaces(
    make_cache: Callable[..., RedisCache], redis_client: Any
) -> None:
    ignoring = make_cache(OPTIONS={"IGNORE_EXCEPTIONS": True})
    redis_client.hset(ignoring.make_key("h"), "f", "v")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        ignoring.get("h")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        ignoring.incr("h")
