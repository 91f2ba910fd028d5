"""django-redis 7.0's sets, hashes and sorted sets on the cache: its results, on every topology,
through the sync methods and their native ``a*`` twins."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from redis.exceptions import DataError, ResponseError

from djredis.cache import RedisCache
from djredis.cache.members import CrossSlotError
from tests._topologies import Topology

pytestmark = pytest.mark.topologies

# Members of every kind a cache value can be; equal values must meet in Redis' set.
MEMBERS = [1, -7, "a", "1", 1.5, (1, 2), b"raw", None, True, date(2024, 1, 2), 2**70]


# -- sets -----------------------------------------------------------------------------------


def test_sadd_smembers_round_trip_any_value(cache: RedisCache) -> None:
    assert cache.sadd("s", *MEMBERS) == len(MEMBERS)
    assert cache.sadd("s", 1, "a", (1, 2)) == 0  # equal values encode to equal members
    assert cache.smembers("s") == set(MEMBERS)
    assert cache.scard("s") == len(MEMBERS)
    assert cache.sismember("s", (1, 2)) is True
    assert cache.sismember("s", (2, 1)) is False
    assert cache.smismember("s", "1", 2, None) == [True, False, True]


def test_int_and_str_members_stay_distinct(cache: RedisCache) -> None:
    assert cache.sadd("s", 1, "1", True) == 3  # three members in Redis, as in django-redis
    assert cache.sismember("s", "1") is True
    assert cache.srem("s", 1) == 1
    assert cache.sismember("s", True) is True
    assert cache.sismember("s", 1) is False


def test_missing_set_is_empty(cache: RedisCache) -> None:
    assert cache.smembers("nope") == set()
    assert cache.scard("nope") == 0
    assert cache.sismember("nope", 1) is False
    assert cache.spop("nope") is None
    assert cache.spop("nope", 3) == set()
    assert cache.srandmember("nope") is None
    assert cache.srandmember("nope", 3) == []
    assert cache.srem("nope", 1) == 0
    assert cache.sscan("nope") == set()
    assert list(cache.sscan_iter("nope")) == []


def test_srem_spop_srandmember(cache: RedisCache) -> None:
    cache.sadd("s", "a", "b", "c", "d")
    assert cache.srem("s", "a", "zz") == 1
    assert cache.srandmember("s") in {"b", "c", "d"}
    picked = cache.srandmember("s", -5)
    assert isinstance(picked, list)
    assert len(picked) == 5  # a negative count may repeat members
    assert set(picked) <= {"b", "c", "d"}
    popped = cache.spop("s", 2)
    assert isinstance(popped, set)
    assert len(popped) == 2
    last = cache.spop("s")
    assert {last} | popped == {"b", "c", "d"}
    assert cache.scard("s") == 0


def test_set_algebra_and_stores(cache: RedisCache) -> None:
    cache.sadd("{g}a", 1, 2, 3, "x")
    cache.sadd("{g}b", 2, "x", (9,))
    assert cache.sdiff("{g}a", "{g}b") == {1, 3}
    assert cache.sinter("{g}a", "{g}b") == {2, "x"}
    assert cache.sunion("{g}a", "{g}b") == {1, 2, 3, "x", (9,)}
    assert cache.sdiff("{g}a", "{g}missing") == {1, 2, 3, "x"}
    assert cache.sdiffstore("{g}d", "{g}a", "{g}b") == 2
    assert cache.smembers("{g}d") == {1, 3}
    assert cache.sinterstore("{g}i", "{g}a", "{g}b") == 2
    assert cache.smembers("{g}i") == {2, "x"}
    assert cache.sunionstore("{g}u", "{g}a", "{g}b") == 5
    assert cache.smembers("{g}u") == {1, 2, 3, "x", (9,)}


def test_smove(cache: RedisCache) -> None:
    cache.sadd("{g}src", "m", (1,))
    assert cache.smove("{g}src", "{g}dst", (1,)) is True
    assert cache.smove("{g}src", "{g}dst", "absent") is False
    assert cache.smembers("{g}src") == {"m"}
    assert cache.smembers("{g}dst") == {(1,)}


def test_version_and_prefix_name_the_keys(
    make_cache: Callable[..., Any], redis_client: Any
) -> None:
    cache = make_cache(KEY_PREFIX="pre", VERSION=3)
    cache.sadd("s", "v3")
    cache.sadd("s", "v5", version=5)
    assert cache.smembers("s") == {"v3"}
    assert cache.smembers("s", version=5) == {"v5"}
    assert redis_client.exists(cache.make_key("s")) == 1
    assert cache.make_key("s").startswith("pre:3:")
    assert redis_client.type(cache.make_key("s", version=5)) == b"set"
    cache.sadd("{g}a", 1, version=5)
    cache.sadd("{g}b", 2, version=5)
    assert cache.sunionstore("{g}u", "{g}a", "{g}b", version=5) == 2
    assert cache.smembers("{g}u", version=5) == {1, 2}
    assert cache.sdiffstore("{g}d", "{g}a", version_dest=7, version_keys=5) == 1
    assert cache.smembers("{g}d", version=7) == {1}
    assert cache.smove("{g}a", "{g}b", 1, version=5) is True
    assert cache.smembers("{g}b", version=5) == {1, 2}


def test_sscan_pages_and_match(cache: RedisCache) -> None:
    members = {f"bar{i}" for i in range(300)} | {"foo", "ebar3", 12}
    cache.sadd("big", *members)
    assert set(cache.sscan_iter("big", count=50)) == members
    assert set(cache.sscan_iter("big", match="bar1?")) == {f"bar1{i}" for i in range(10)}
    assert set(cache.sscan_iter("big", match="[ef]*")) == {"foo", "ebar3"}
    cache.sadd("small", "bar1", "bar2", "ebar3", "bar10")
    assert cache.sscan("small", match="bar*") == {"bar1", "bar2", "bar10"}
    assert cache.sscan("small") == {"bar1", "bar2", "ebar3", "bar10"}
    cache.sadd("small", 5)
    assert cache.sscan("small", match="*") == {"bar1", "bar2", "ebar3", "bar10", 5}
    assert cache.sscan("small", match="*0") == {"bar10"}  # only str members match a glob


def test_sscan_match_works_with_compression(make_cache: Callable[..., Any]) -> None:
    cache = make_cache(
        OPTIONS={"COMPRESSOR": "djredis.compressors.ZlibCompressor", "COMPRESS_MIN_LENGTH": 0}
    )
    cache.sadd("s", "x" * 400, "y" * 400)
    assert cache.sscan("s", match="x*") == {"x" * 400}


def test_multi_key_set_commands_need_one_slot_on_cluster(
    cache: RedisCache, topology: Topology
) -> None:
    cache.sadd("left", 1)
    cache.sadd("right", 1)
    if topology.name != "cluster":
        assert cache.sinter("left", "right") == {1}
        return
    for call in (
        lambda: cache.sinter("left", "right"),
        lambda: cache.sunionstore("dest", "left"),
        lambda: cache.smove("left", "right", 1),
    ):
        with pytest.raises(CrossSlotError, match=r"'left'.*'right'|'dest'.*'left'"):
            call()


def test_undecodable_member_is_left_out_and_logged(
    cache: RedisCache, redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache.sadd("s", "good")
    redis_client.sadd(cache.make_key("s"), b"\xc9garbage")
    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert cache.smembers("s") == {"good"}
    assert "cannot be decoded" in caplog.text


def test_wrong_type_surfaces(cache: RedisCache) -> None:
    cache.set("plain", "value")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        cache.sadd("plain", 1)


# -- hashes ---------------------------------------------------------------------------------


def test_hash_methods_follow_django_redis(cache: RedisCache) -> None:
    assert cache.hset("h", "f", {"deep": [1, 2]}) == 1
    assert cache.hset("h", "f", "again") == 0
    assert cache.hset("h", mapping={"g": 1, "k": (3,)}) == 2
    assert cache.hset("h", "m", 5, mapping={"n": 6}) == 2
    assert cache.hlen("h") == 5
    assert sorted(cache.hkeys("h")) == ["f", "g", "k", "m", "n"]
    assert cache.hexists("h", "g") is True
    assert cache.hexists("h", "zz") is False
    assert cache.hdel("h", "g") == 1
    assert cache.hdel("h", "g") == 0
    assert cache.hget("h", "k") == (3,)
    assert cache.hget("h", "zz", "dflt") == "dflt"
    assert cache.hgetall("h") == {"f": "again", "k": (3,), "m": 5, "n": 6}


def test_missing_hash(cache: RedisCache) -> None:
    assert cache.hlen("nope") == 0
    assert cache.hkeys("nope") == []
    assert cache.hexists("nope", "f") is False
    assert cache.hdel("nope", "f") == 0
    assert cache.hgetall("nope") == {}


def test_a_field_that_is_not_utf8_comes_back_as_bytes(cache: RedisCache, redis_client: Any) -> None:
    cache.hset("h", "ok", 1)
    redis_client.hset(cache.make_key("h"), b"\xff\xfe", cache.make_key("h"))
    assert sorted(cache.hkeys("h"), key=repr) == ["ok", b"\xff\xfe"]
    assert cache.hdel("h", b"\xff\xfe") == 1


def test_undecodable_hash_value_is_left_out(cache: RedisCache, redis_client: Any) -> None:
    cache.hset("h", mapping={"a": 1, "b": 2})
    redis_client.hset(cache.make_key("h"), "b", b"\xc9garbage")
    assert cache.hgetall("h") == {"a": 1}
    assert cache.hget("h", "b", "miss") == "miss"


def test_hset_without_fields_is_a_data_error(cache: RedisCache) -> None:
    with pytest.raises(DataError):
        cache.hset("h")


def test_hash_keys_are_versioned(make_cache: Callable[..., Any]) -> None:
    cache = make_cache(KEY_PREFIX="p")
    cache.hset("h", "f", 1, version=2)
    assert cache.hlen("h") == 0
    assert cache.hkeys("h", version=2) == ["f"]


# -- sorted sets ----------------------------------------------------------------------------


def test_zadd_and_reads_follow_django_redis(cache: RedisCache) -> None:
    assert cache.zadd("z", {"a": 1, (2,): 2.5, 7: 3}) == 3
    assert cache.zadd("z", {"a": 1}) == 0
    assert cache.zadd("z", {"a": 2}, ch=True) == 1
    assert cache.zcard("z") == 3
    assert cache.zcount("z", 2, 3) == 3
    assert cache.zcount("z", "(2", "+inf") == 2
    assert cache.zscore("z", (2,)) == 2.5
    assert cache.zscore("z", "nope") is None
    assert cache.zrank("z", 7) == 2
    assert cache.zrank("z", "nope") is None
    assert cache.zrange("z", 0, -1) == ["a", (2,), 7]
    assert cache.zrange("z", 0, 1, desc=True) == [7, (2,)]
    assert cache.zrange("z", 0, -1, withscores=True) == [("a", 2.0), ((2,), 2.5), (7, 3.0)]
    assert cache.zrange("z", 0, 0, withscores=True, score_cast_func=int) == [("a", 2)]
    assert cache.zrevrange("z", 0, -1) == [7, (2,), "a"]
    assert cache.zrevrange("z", 0, 0, withscores=True) == [(7, 3.0)]
    assert cache.zrangebyscore("z", 2.5, "+inf") == [(2,), 7]
    assert cache.zrangebyscore("z", "-inf", "+inf", start=1, num=1, withscores=True) == [
        ((2,), 2.5)
    ]
    assert cache.zrevrangebyscore("z", 3, 2) == [7, (2,), "a"]
    assert cache.zrevrangebyscore("z", "+inf", "-inf", start=0, num=2) == [7, (2,)]


def test_zadd_flags(cache: RedisCache) -> None:
    cache.zadd("z", {"a": 5})
    assert cache.zadd("z", {"a": 1, "b": 1}, nx=True) == 1
    assert cache.zscore("z", "a") == 5.0
    assert cache.zadd("z", {"a": 3, "c": 1}, xx=True) == 0
    assert cache.zscore("z", "a") == 3.0
    assert cache.zscore("z", "c") is None
    assert cache.zadd("z", {"a": 1}, gt=True, ch=True) == 0
    assert cache.zadd("z", {"a": 9}, gt=True, ch=True) == 1
    assert cache.zadd("z", {"a": 4}, lt=True, ch=True) == 1
    assert cache.zadd("z", {"a": 2.5}, incr=True) == 6.5
    assert cache.zadd("z", {"new": 1}, incr=True, xx=True) is None
    for bad in (
        {"nx": True, "xx": True},
        {"gt": True, "lt": True},
        {"nx": True, "gt": True},
    ):
        with pytest.raises(DataError):
            cache.zadd("z", {"a": 1}, **bad)
    with pytest.raises(DataError):
        cache.zadd("z", {"a": 1, "b": 2}, incr=True)
    with pytest.raises(DataError):
        cache.zadd("z", {})


def test_zincrby_zrem_zremrangebyscore(cache: RedisCache) -> None:
    assert cache.zincrby("z", 2, "m") == 2.0
    assert cache.zincrby("z", 0.5, "m") == 2.5
    cache.zadd("z", {"x": 10, "y": 20})
    assert cache.zrem("z", "m", "nope") == 1
    assert cache.zremrangebyscore("z", 15, "+inf") == 1
    assert cache.zrange("z", 0, -1) == ["x"]


def test_zpop(cache: RedisCache) -> None:
    cache.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert cache.zpopmax("z") == ("d", 4.0)
    assert cache.zpopmin("z") == ("a", 1.0)
    assert cache.zpopmax("z", 5) == [("c", 3.0), ("b", 2.0)]
    assert cache.zpopmin("z") is None
    assert cache.zpopmax("z") is None
    assert cache.zpopmin("z", 2) == []


def test_missing_sorted_set(cache: RedisCache) -> None:
    assert cache.zcard("nope") == 0
    assert cache.zcount("nope", "-inf", "+inf") == 0
    assert cache.zrange("nope", 0, -1) == []
    assert cache.zrange("nope", 0, -1, withscores=True) == []
    assert cache.zrangebyscore("nope", 0, 1) == []
    assert cache.zrem("nope", 1) == 0
    assert cache.zpopmax("nope", 1) == []


def test_zrangebyscore_needs_start_and_num_together(cache: RedisCache) -> None:
    with pytest.raises(DataError):
        cache.zrangebyscore("z", 0, 1, start=1)


def test_sorted_set_keys_are_versioned(make_cache: Callable[..., Any], redis_client: Any) -> None:
    cache = make_cache(KEY_PREFIX="p")
    cache.zadd("z", {"m": 1}, version=4)
    assert cache.zcard("z") == 0
    assert cache.zrange("z", 0, -1, version=4) == ["m"]
    assert redis_client.type(cache.make_key("z", version=4)) == b"zset"


@pytest.mark.parametrize(
    ("call", "command"),
    [
        (lambda c: c.sadd("s", 1, 2, 3), "sadd"),
        (lambda c: c.smembers("s"), "smembers"),
        (lambda c: c.smismember("s", 1, 9), "smismember"),
        (lambda c: c.sinterstore("{g}d", "{g}a", "{g}b"), "sinterstore"),
        (lambda c: c.hset("h", "f", 1, mapping={"g": 2}), "hset"),
        (lambda c: c.hgetall("h"), "hgetall"),
        (lambda c: c.zadd("z", {"a": 1, "b": 2}, ch=True), "zadd"),
        (lambda c: c.zrange("z", 0, -1, withscores=True), "zrange"),
        (lambda c: c.zrevrangebyscore("z", "+inf", 0, start=0, num=5), "zrevrangebyscore"),
        (lambda c: c.zpopmax("z", 2), "zpopmax"),
        (lambda c: c.incr("n", ignore_key_check=True), "incrby"),
        (lambda c: c.delete_many(["x", "y"]), "del"),
    ],
)
def test_each_call_is_one_command(
    cache: RedisCache,
    stats: Callable[[], dict[str, int]],
    topology: Topology,
    call: Callable[[Any], Any],
    command: str,
) -> None:
    before = stats()
    call(cache)
    after = stats()
    changed = {
        cmd: after[cmd] - before.get(cmd, 0) for cmd in after if after[cmd] != before.get(cmd, 0)
    }
    # The stats call itself, replication waits (ReadYourWrites), and the handshake of a
    # connection opened for this call (the first command sent to a node).
    for bookkeeping in (
        "info",
        "wait",
        "replconf",
        "ping",
        "auth",
        "hello",
        "select",
        "client|setinfo",
        "client|setname",
        "cluster|slots",
        "readonly",
        "sentinel|get-master-addr-by-name",
        "sentinel|replicas",
        "role",
    ):
        changed.pop(bookkeeping, None)
    slots = topology.slots(["x", "y"]) if command == "del" else 1
    assert changed == {command: slots}
