"""django-redis's extras on djredis: same names, same semantics, on a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.core.cache import caches

from djredis import get_redis_connection
from djredis.cache import RedisCache

# Every test here runs on each topology (tests/conftest.py).
pytestmark = pytest.mark.topologies


def test_ttl_and_pttl_follow_django_redis(cache: RedisCache) -> None:
    assert cache.ttl("missing") == 0
    assert cache.pttl("missing") == 0
    cache.set("forever", 1, None)
    assert cache.ttl("forever") is None
    assert cache.pttl("forever") is None
    cache.set("soon", 1, 20)
    assert 19 <= cache.ttl("soon") <= 20
    assert 19_000 < cache.pttl("soon") <= 20_000


def test_expire_and_pexpire(cache: RedisCache) -> None:
    assert cache.expire("missing", 10) is False
    cache.set("k", 1, None)
    assert cache.expire("k", 30) is True
    assert 29 <= cache.ttl("k") <= 30
    assert cache.expire("k", timedelta(minutes=2)) is True
    assert 119 <= cache.ttl("k") <= 120
    assert cache.expire("k", 1.5) is True
    assert 1000 < cache.pttl("k") <= 1500
    assert cache.pexpire("k", 800) is True
    assert 0 < cache.pttl("k") <= 800


def test_expire_at_and_pexpire_at(cache: RedisCache) -> None:
    cache.set("k", 1, None)
    when = datetime.now(timezone.utc) + timedelta(seconds=50)
    assert cache.expire_at("k", when) is True
    assert 48 <= cache.ttl("k") <= 50
    assert cache.pexpire_at("k", int((time.time() + 20) * 1000)) is True
    assert 18 <= cache.ttl("k") <= 20
    assert cache.expire_at("missing", when) is False


def test_persist(cache: RedisCache) -> None:
    cache.set("k", 1, 10)
    assert cache.persist("k") is True
    assert cache.ttl("k") is None
    assert cache.persist("k") is False


def test_set_with_nx_and_xx(cache: RedisCache) -> None:
    assert cache.set("k", 1, nx=True) is True
    assert cache.set("k", 2, nx=True) is False
    assert cache.get("k") == 1
    assert cache.set("absent", 1, xx=True) is False
    assert cache.has_key("absent") is False
    assert cache.set("k", 3, xx=True) is True
    assert cache.get("k") == 3


def test_lock_is_exclusive_and_a_context_manager(cache: RedisCache, redis_client: Any) -> None:
    with cache.lock("job", timeout=5):
        assert redis_client.exists(cache.make_key("job"))
        other = cache.lock("job", blocking=False)
        assert other.acquire() is False
    assert not redis_client.exists(cache.make_key("job"))
    assert cache.lock("job").acquire(blocking=False) is True


def test_lock_serialises_threads(make_sync_cache: Callable[..., RedisCache]) -> None:
    cache = make_sync_cache()  # threads: the sync API only
    cache.set("shared", 0)

    def unsafe_increment() -> None:
        for _ in range(20):
            with cache.lock("guard", timeout=5, sleep=0.001):
                value = cache.get("shared")
                cache.set("shared", value + 1)

    threads = [threading.Thread(target=unsafe_increment) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("shared") == 80


def test_iter_keys_and_keys_return_user_keys(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache(KEY_PREFIX="app")
    cache.set_many({"user:1": 1, "user:2": 2, "post:1": 3})
    make_cache(KEY_PREFIX="other").set("user:3", 4)
    assert sorted(cache.iter_keys("user:*")) == ["user:1", "user:2"]
    assert sorted(cache.keys("*")) == ["post:1", "user:1", "user:2"]
    assert cache.keys("nothing*") == []


def test_iter_keys_uses_scan_not_keys(
    cache: RedisCache, stats: Callable[[], dict[str, int]]
) -> None:
    cache.set_many({f"k{i}": i for i in range(50)})
    assert len(list(cache.iter_keys("k*", itersize=10))) == 50
    counts = stats()
    assert counts.get("keys", 0) == 0
    assert counts["scan"] >= 2


def test_reverse_key_function_for_custom_key_functions(
    make_cache: Callable[..., RedisCache],
) -> None:
    cache = make_cache(
        KEY_PREFIX="cp",
        KEY_FUNCTION=lambda key, prefix, version: f"{prefix}|{version}|{key}",
        REVERSE_KEY_FUNCTION=lambda full: full.split("|", 2)[2],
    )
    cache.set("a", 1)
    assert cache.keys("*") == ["a"]


def test_delete_pattern_deletes_in_batches(
    cache: RedisCache, redis_client: Any, stats: Callable[[], dict[str, int]]
) -> None:
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(20_000):
            pipe.set(cache.make_key(f"session:{i}"), i)
        pipe.execute()
    cache.set("keep", 1)
    assert cache.delete_pattern("session:*", itersize=2000) == 20_000
    assert cache.get("keep") == 1
    assert cache.keys("session:*") == []
    counts = stats()
    assert counts["unlink"] >= 10  # one UNLINK per SCAN page, so memory stays bounded
    assert counts.get("keys", 0) == 0


def test_delete_pattern_respects_version_and_prefix(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache(KEY_PREFIX="p1")
    cache.set("a1", 1)
    cache.set("a2", 1, version=2)
    assert cache.delete_pattern("a*", version=2) == 1
    assert cache.get("a1") == 1
    other = make_cache(KEY_PREFIX="p2")
    other.set("a3", 1)
    assert cache.delete_pattern("a*", prefix="p2") == 1
    assert other.get("a3") is None


def test_glob_characters_in_a_prefix_are_escaped(make_cache: Callable[..., RedisCache]) -> None:
    star = make_cache(KEY_PREFIX="s*")
    plain = make_cache(KEY_PREFIX="sx")
    star.set("k", 1)
    plain.set("k", 2)
    star.clear()
    assert plain.get("k") == 2
    assert star.keys("*") == []


def test_get_redis_connection_and_client_get_client(django_caches: Any) -> None:
    conn = get_redis_connection("default")
    conn.set("direct", "value")
    assert conn.get("direct") == b"value"
    assert caches["default"].client.get_client(write=True) is conn
    assert get_redis_connection("other").connection_pool.connection_kwargs["db"] == 1


def test_get_redis_connection_refuses_other_backends(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with pytest.raises(NotImplementedError, match=r"djredis\.cache\.RedisCache"):
        get_redis_connection()
