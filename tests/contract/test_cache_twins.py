"""Methods written once with ``twin``: both forms take the same arguments, say the same
thing, and give back a fresh fallback every time Redis is away."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from djredis.cache import RedisCache
from tests._servers import free_port

TWINS = [
    name
    for name in dir(RedisCache)
    if not name.startswith("_")
    and f"a{name}" in dir(RedisCache)
    and getattr(getattr(RedisCache, name), "__wrapped__", None) is not None
]


def test_the_structure_methods_are_written_once() -> None:
    assert {"sadd", "smembers", "hset", "hgetall", "zrange", "ttl", "persist"} <= set(TWINS)


@pytest.mark.parametrize("name", TWINS)
def test_a_method_and_its_async_twin_share_signature_and_docstring(name: str) -> None:
    sync, aio = getattr(RedisCache, name), getattr(RedisCache, f"a{name}")
    assert inspect.signature(sync) == inspect.signature(aio)
    assert not str(inspect.signature(sync).return_annotation).startswith("Operation")
    assert sync.__doc__ == aio.__doc__
    assert sync.__doc__
    assert asyncio.iscoroutinefunction(aio)
    assert not asyncio.iscoroutinefunction(sync)
    assert aio.__name__ == f"a{name}"


def test_an_ignored_error_gives_a_fresh_empty_value_each_time() -> None:
    cache = RedisCache(
        f"redis://127.0.0.1:{free_port()}/0", {"OPTIONS": {"IGNORE_EXCEPTIONS": True}}
    )
    first = cache.smembers("s")
    first.add("changed by the caller")
    assert cache.smembers("s") == set()
    listed = asyncio.run(cache.ahkeys("h"))
    listed.append("changed by the caller")
    assert asyncio.run(cache.ahkeys("h")) == []
    assert asyncio.run(cache.azrange("z", 0, -1)) == []
    assert cache.hgetall("h") == {}
