"""``djredis.cache.memoize`` on a real Redis: keys, values, invalidation, sync and async."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from djredis.cache import RedisCache, Stampede, memoize


def test_bare_decorator_caches_result(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache)
    def double(n: int) -> int:
        calls["double"] += 1
        return n * 2

    assert [double(2), double(2), double(3)] == [4, 4, 6]
    assert calls["double"] == 2


def test_memoize_without_parentheses_uses_default_cache(
    django_caches: Any, calls: Counter[str]
) -> None:
    @memoize
    def triple(n: int) -> int:
        calls["triple"] += 1
        return n * 3

    assert triple(2) == triple(2) == 6
    assert calls["triple"] == 1
    assert caches["default"].get(triple.cache_key(2)) is not None


def test_same_call_spelled_differently_shares_one_key(
    cache: RedisCache, calls: Counter[str]
) -> None:
    @memoize(cache=cache)
    def f(a: int, x: int = 2) -> tuple[int, int]:
        calls["f"] += 1
        return (a, x)

    assert f(1, x=2) == f(x=2, a=1) == f(1) == f(1, 2) == (1, 2)
    assert calls["f"] == 1
    key = f.cache_key
    assert key(1) == key(a=1) == key(1, x=2) == key(x=2, a=1)
    assert key(1, 3) != key(1)


def test_dict_arguments_key_does_not_depend_on_insertion_order(
    cache: RedisCache, calls: Counter[str]
) -> None:
    @memoize(cache=cache)
    def f(options: dict[str, Any], **kwargs: Any) -> int:
        calls["f"] += 1
        return len(options) + len(kwargs)

    assert f({"a": 1, "b": {2, 3}}, y=1, z=2) == 4
    assert f({"b": {3, 2}, "a": 1}, z=2, y=1) == 4
    assert calls["f"] == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        ("a,b", ("a", "b")),
        ([1, 2], (1, 2)),
        ((1, (2, 3)), ((1, 2), 3)),
        ({"a": 1}, [("a", 1)]),
        (b"x", "x"),
        (None, "None"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
    ],
)
def test_different_arguments_never_share_a_key(one: Any, other: Any) -> None:
    @memoize(cache=LocMemCache("memo", {}))
    def f(x: Any) -> Any:
        return x

    assert f.cache_key(one) != f.cache_key(other)


def test_none_is_cached_as_a_value(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache)
    def nothing() -> None:
        calls["nothing"] += 1

    assert nothing() is None
    assert nothing() is None
    assert calls["nothing"] == 1


def test_timeout_sets_the_entry_ttl(cache: RedisCache, redis_client: redis.Redis) -> None:
    @memoize(30, cache=cache)
    def f() -> str:
        return "v"

    f()
    assert 29_000 < redis_client.pttl(cache.make_key(f.cache_key())) <= 30_000


def test_timeout_none_never_expires(cache: RedisCache, redis_client: redis.Redis) -> None:
    @memoize(None, cache=cache)
    def f() -> str:
        return "v"

    f()
    assert redis_client.pttl(cache.make_key(f.cache_key())) == -1


def test_timeout_zero_never_stores(
    cache: RedisCache, redis_client: redis.Redis, calls: Counter[str]
) -> None:
    @memoize(0, cache=cache)
    def f() -> str:
        calls["f"] += 1
        return "v"

    assert f() == f() == "v"
    assert calls["f"] == 2
    assert redis_client.dbsize() == 0


def test_cache_alias_and_version(
    django_caches: Any, redis_client: redis.Redis, calls: Counter[str]
) -> None:
    @memoize(cache="other", version=7)
    def f(n: int) -> int:
        calls["f"] += 1
        return n

    f(1)
    other = django_caches["other"]
    value, delta, expiry = other.get(f.cache_key(1), version=7)
    assert value == 1
    assert 0 <= delta < 1
    assert expiry == pytest.approx(time.time() + 300, abs=5)  # the cache's default TIMEOUT
    assert other.get(f.cache_key(1)) is None
    assert django_caches["default"].get(f.cache_key(1), version=7) is None


def test_custom_key_format_string(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache, key="profile:{user_id}")
    def profile(user_id: int, verbose: bool = False) -> str:
        calls["profile"] += 1
        return f"profile {user_id}"

    assert profile(5) == profile(5, verbose=True) == "profile 5"
    assert calls["profile"] == 1
    assert cache.has_key("profile:5")


def test_custom_key_callable(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache, key=lambda obj: f"obj:{obj.ident}")
    def describe(obj: Any) -> str:
        calls["describe"] += 1
        return f"#{obj.ident}"

    class Thing:
        def __init__(self, ident: int) -> None:
            self.ident = ident

    assert describe(Thing(3)) == describe(Thing(3)) == "#3"
    assert calls["describe"] == 1
    assert cache.has_key("obj:3")


def test_invalidate_drops_exactly_that_call(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache)
    def f(n: int, scale: int = 1) -> int:
        calls[f"f{n}"] += 1
        return n * scale

    f(1), f(2)
    assert f.invalidate(1, scale=1) is True
    assert f.invalidate(1) is False
    f(1), f(2)
    assert Counter({"f1": 2, "f2": 1}) == calls


def test_async_function_is_memoized_natively(cache: RedisCache, calls: Counter[str]) -> None:
    @memoize(cache=cache)
    async def fetch(n: int) -> dict[str, int]:
        calls["fetch"] += 1
        await asyncio.sleep(0)
        return {"n": n}

    async def main() -> list[Any]:
        first = await fetch(4)
        second = await fetch(n=4)
        assert await fetch.ainvalidate(4) is True
        third = await fetch(4)
        return [first, second, third]

    assert asyncio.iscoroutinefunction(fetch)
    assert asyncio.run(main()) == [{"n": 4}] * 3
    assert calls["fetch"] == 2


def test_method_on_a_plain_object_needs_a_key(cache: RedisCache) -> None:
    class Report:
        @memoize(cache=cache)
        def total(self) -> int:
            return 1

    with pytest.raises(TypeError, match=r"Report.*key="):
        Report().total()


def test_dataclass_and_ordered_dict_arguments_have_value_keys(
    cache: RedisCache, calls: Counter[str]
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Query:
        term: str
        page: int

    @memoize(cache=cache)
    def search(query: Query, extra: OrderedDict[str, int]) -> str:
        calls["search"] += 1
        return query.term

    assert search(Query("a", 1), OrderedDict(b=1)) == "a"
    assert search(Query("a", 1), OrderedDict(b=1)) == "a"
    assert search(Query("a", 2), OrderedDict(b=1)) == "a"
    assert calls["search"] == 2


@pytest.mark.django_db
def test_model_instances_are_keyed_by_model_and_pk(cache: RedisCache, calls: Counter[str]) -> None:
    from django.contrib.auth.models import Group, User

    @memoize(cache=cache)
    def name_of(obj: Any) -> str:
        calls["name_of"] += 1
        return str(obj)

    ada = User.objects.create_user("ada")
    assert name_of(ada) == name_of(User.objects.get(pk=ada.pk)) == "ada"
    group = Group.objects.create(pk=ada.pk, name="g")
    assert name_of(group) == "g"
    assert calls["name_of"] == 2
    with pytest.raises(TypeError, match="unsaved"):
        name_of(User(username="new"))


def test_garbage_at_the_key_is_a_miss_and_a_log_line(
    cache: RedisCache,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    calls: Counter[str],
) -> None:
    @memoize(cache=cache)
    def f() -> str:
        calls["f"] += 1
        return "fresh"

    redis_client.set(cache.make_key(f.cache_key()), b"\xc8not a pickle")
    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert f() == "fresh"
    assert "cannot be decoded" in caplog.text
    # A value of another shape at the key (not a memoize entry) is recomputed too.
    cache.set(f.cache_key(), "plain")
    assert f() == "fresh"
    assert f() == "fresh"
    assert calls["f"] == 2


def test_works_on_other_django_caches_without_protection(calls: Counter[str]) -> None:
    local = LocMemCache("memo-other", {})

    @memoize(cache=local)
    def f(n: int) -> None:
        calls["f"] += 1

    async def af_main() -> None:
        @memoize(cache=local)
        async def af(n: int) -> int:
            calls["af"] += 1
            return n

        assert await af(1) == await af(1) == 1

    assert f(1) is None
    assert f(1) is None
    asyncio.run(af_main())
    assert Counter({"f": 1, "af": 1}) == calls


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "60"}, "timeout must be a number"),
        ({"cache": 3}, "cache= must be a cache alias"),
        ({"key": 3}, "key= must be a str or a callable"),
        ({"stampede": "yes"}, "stampede must be True, False or a djredis.cache.Stampede"),
    ],
)
def test_bad_arguments_raise_type_error_naming_them(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(TypeError, match=error):
        memoize(**kwargs)


def test_bad_stampede_settings_raise_value_error() -> None:
    with pytest.raises(ValueError, match="lock_timeout"):
        Stampede(lock_timeout=0)
    with pytest.raises(ValueError, match="beta"):
        Stampede(beta=-1)


def test_json_serializer_stores_entries(
    make_cache: Callable[..., RedisCache], calls: Counter[str]
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": "djredis.serializers.JSONSerializer"})

    @memoize(cache=cache)
    def f(n: int) -> dict[str, Any]:
        calls["f"] += 1
        return {"n": n, "none": None}

    assert f(1) == f(1) == {"n": 1, "none": None}
    assert calls["f"] == 1
