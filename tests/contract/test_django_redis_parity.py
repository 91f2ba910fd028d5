"""Differential: the same random calls on django-redis 7.0 and on djredis, the same results.

Each example runs one sequence of set, hash and sorted-set calls (and ``incr``/
``delete_many``) against django-redis on its own redis-server and against djredis, and
compares every result (or the exception's class). Left out, because they differ on
purpose (docs/migrating-from-django-redis.md): ``sscan(match=...)`` (djredis matches decoded
``str`` members; django-redis globs the pickled bytes), ``smove(version=...)`` (django-redis
ignores the version for the destination), ``hset(field, None)`` (django-redis raises) and the
random picks of ``spop``/``srandmember`` (compared by size only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from djredis.cache import RedisCache
from djredis.cache.legacy import convert_from_django_redis

POOL: list[Any] = [0, 1, -3, 2**40, "a", "1", "", 1.5, (1, "x"), True, None, date(2020, 5, 1)]
KEYS = ["k1", "k2", "k3"]
FIELDS = ["f", "g", "h"]

members = st.sampled_from(POOL)
keys = st.sampled_from(KEYS)
# Distinct members never tie on score (ties order by the encoded bytes, which differ).
offsets = {repr(m): i / 64 for i, m in enumerate(POOL)}


def _score(member: Any, base: int) -> float:
    return base + offsets[repr(member)]


def _calls() -> st.SearchStrategy[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    many = st.lists(members, min_size=1, max_size=4)
    score_maps = st.dictionaries(members, st.integers(-5, 5), min_size=1, max_size=4).map(
        lambda d: {m: _score(m, s) for m, s in d.items()}
    )
    bound = st.sampled_from([-5, 0, 2, "-inf", "+inf", "(1", "(0"])
    return st.one_of(
        st.tuples(
            st.just("sadd"),
            st.tuples(keys).flatmap(lambda k: many.map(lambda m: (*k, *m))),
            st.just({}),
        ),
        st.tuples(st.just("srem"), st.tuples(keys, members), st.just({})),
        st.tuples(
            st.sampled_from(["scard", "smembers", "hlen", "hkeys", "zcard"]),
            st.tuples(keys),
            st.just({}),
        ),
        st.tuples(
            st.sampled_from(["sismember", "zscore", "zrank"]), st.tuples(keys, members), st.just({})
        ),
        st.tuples(
            st.just("smismember"),
            st.tuples(keys).flatmap(lambda k: many.map(lambda m: (*k, *m))),
            st.just({}),
        ),
        st.tuples(
            st.sampled_from(["sdiff", "sinter", "sunion"]), st.tuples(keys, keys), st.just({})
        ),
        st.tuples(
            st.sampled_from(["sdiffstore", "sinterstore", "sunionstore"]),
            st.tuples(keys, keys, keys),
            st.just({}),
        ),
        st.tuples(st.just("smove"), st.tuples(keys, keys, members), st.just({})),
        # SPOP removes members Redis picks at random, so after it the two sides' sets may
        # differ by luck alone; it is compared once, on its own, below.
        st.tuples(
            st.just("srandmember"),
            st.tuples(keys, st.sampled_from([None, 0, 2, -3])),
            st.just({}),
        ),
        st.tuples(
            st.just("hset"),
            st.tuples(keys, st.sampled_from(FIELDS), members.filter(lambda m: m is not None)),
            st.just({}),
        ),
        st.tuples(
            st.just("hset"),
            st.tuples(keys),
            st.fixed_dictionaries(
                {"mapping": st.dictionaries(st.sampled_from(FIELDS), st.integers(), min_size=1)}
            ),
        ),
        st.tuples(
            st.sampled_from(["hdel", "hexists"]),
            st.tuples(keys, st.sampled_from(FIELDS)),
            st.just({}),
        ),
        st.tuples(
            st.just("zadd"),
            st.tuples(keys, score_maps),
            st.fixed_dictionaries(
                {}, optional={"nx": st.booleans(), "ch": st.booleans(), "gt": st.booleans()}
            ),
        ),
        st.tuples(st.just("zincrby"), st.tuples(keys, st.integers(-3, 3), members), st.just({})),
        st.tuples(
            st.sampled_from(["zpopmax", "zpopmin"]),
            st.tuples(keys, st.sampled_from([None, 1, 3])),
            st.just({}),
        ),
        st.tuples(
            st.sampled_from(["zrange", "zrevrange"]),
            st.tuples(keys, st.integers(-3, 2), st.integers(-2, 4)),
            st.fixed_dictionaries({}, optional={"withscores": st.booleans()}),
        ),
        st.tuples(
            st.sampled_from(["zrangebyscore", "zcount", "zremrangebyscore"]),
            st.tuples(keys, bound, bound),
            st.just({}),
        ),
        st.tuples(
            st.just("zrevrangebyscore"),
            st.tuples(keys, bound, bound),
            st.fixed_dictionaries({"withscores": st.booleans()}),
        ),
        st.tuples(st.just("zrem"), st.tuples(keys, members), st.just({})),
        st.tuples(
            st.just("incr"),
            st.tuples(st.sampled_from(["n1", "n2"]), st.integers(-3, 3)),
            st.fixed_dictionaries({"ignore_key_check": st.booleans()}),
        ),
        st.tuples(
            st.just("delete_many"),
            st.tuples(st.lists(st.sampled_from([*KEYS, "n1", "n2"]), max_size=3)),
            st.just({}),
        ),
    )


def _outcome(cache: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        result = getattr(cache, name)(*args, **kwargs)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    if name in ("spop", "srandmember"):
        return ("picked", None if result is None else len(result) if args[1] is not None else 1)
    if name == "delete_many" and not args[0]:
        return ("deleted none", None)  # django-redis 0, djredis None (Django's contract)
    if name == "hkeys":
        return sorted(result)
    return result


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(_calls(), min_size=1, max_size=25))
def test_random_calls_answer_like_django_redis(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    make_cache: Callable[..., RedisCache],
    redis_client: Any,
    django_redis_cache: Any,
) -> None:
    ours = make_cache(KEY_PREFIX="p")
    redis_client.flushdb()
    django_redis_cache.client.get_client().flushdb()
    for name, args, kwargs in calls:
        theirs = _outcome(django_redis_cache, name, args, kwargs)
        mine = _outcome(ours, name, args, kwargs)
        assert mine == theirs, f"{name}{args}{kwargs}: djredis {mine!r}, django-redis {theirs!r}"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("smembers", ("k",)),
        ("spop", ("k", 2)),
        ("zrange", ("k", 0, -1)),
        ("zpopmax", ("k",)),
        ("hkeys", ("k",)),
        ("sscan", ("k",)),
    ],
)
def test_empty_structures_answer_like_django_redis(
    name: str, args: tuple[Any, ...], cache: RedisCache, django_redis_cache: Any
) -> None:
    assert getattr(cache, name)(*args) == getattr(django_redis_cache, name)(*args)


def test_values_django_redis_wrote_are_misses_and_its_integers_survive(
    django_redis_server: Any, django_redis_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """After the BACKEND swap the cache starts cold instead of failing: django-redis's
    pickles read as misses (logged); the integers it stored as digits read back."""
    django_redis_cache.set("obj", {"a": 1})
    django_redis_cache.set("text", "hello")
    django_redis_cache.set("count", 41)
    django_redis_cache.incr("count")
    django_redis_cache.sadd("tags", "x", 7)
    ours = RedisCache(django_redis_server.url(0), {"KEY_PREFIX": "p"})
    try:
        assert ours.get("obj", "miss") == "miss"
        assert ours.get_many(["obj", "text", "count"]) == {"count": 42}
        assert ours.incr("count") == 43
        assert ours.smembers("tags") == {7}  # the pickled "x" is left out
    finally:
        ours.close()
    assert "cannot be decoded" in caplog.text


def test_convert_from_django_redis_makes_its_structures_readable(
    django_redis_server: Any, django_redis_cache: Any
) -> None:
    django_redis_cache.sadd("tags", "x", 7, (1, 2))
    django_redis_cache.zadd("board", {"ann": 3, (9,): 1.5})
    django_redis_cache.hset("profile", mapping={"name": "ann", "age": 41, "tags": ["a"]})
    django_redis_cache.set("obj", {"a": 1}, timeout=100)
    django_redis_cache.set("other", "not converted")
    ours = RedisCache(django_redis_server.url(0), {"KEY_PREFIX": "p"})
    try:
        counts = convert_from_django_redis(ours, "[tbpo][aorb]*")
        assert counts == {"string": 1, "set": 1, "zset": 1, "hash": 1}
        assert ours.smembers("tags") == {"x", 7, (1, 2)}
        assert ours.sismember("tags", "x") is True
        assert ours.sadd("tags", "x") == 0  # the same member, not a second one
        assert ours.zrange("board", 0, -1, withscores=True) == [((9,), 1.5), ("ann", 3.0)]
        assert ours.zscore("board", "ann") == 3.0
        assert ours.hgetall("profile") == {"name": "ann", "age": 41, "tags": ["a"]}
        assert ours.get("obj") == {"a": 1}
        assert 90 < ours.ttl("obj") <= 100  # KEEPTTL
        assert ours.get("other", "miss") == "miss"  # outside the pattern: untouched
        assert convert_from_django_redis(ours, "*") == {"string": 1, "set": 0, "zset": 0, "hash": 0}
        assert convert_from_django_redis(ours, "*") == {"string": 0, "set": 0, "zset": 0, "hash": 0}
    finally:
        ours.close()
