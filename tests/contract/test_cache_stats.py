"""djredis.cache.stats, the djredis_cache command and the Redis health check, on real Redis.

Counters are checked against the reads the test made; server figures against what the
test wrote to each database; the health view and the deploy check against a live server
and a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.cache import caches
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from djredis.cache.stats import (
    all_cache_stats,
    cache_stats,
    reset_cache_stats,
    server_stats,
)
from djredis.health import check_redis_servers, health
from tests._servers import RedisServer, free_port


@pytest.fixture
def redis_dbs(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's server with databases 0 to 2 emptied before and after the test."""
    for db in range(3):
        redis_server.client(db).flushdb()
    yield redis_server
    for db in range(3):
        redis_server.client(db).flushdb()


@pytest.fixture
def configured(settings: Any, redis_dbs: RedisServer) -> str:
    """CACHES with two djredis aliases (db 0 and 1), a near one and a locmem; return a prefix."""
    prefix = f"t{uuid.uuid4().hex[:8]}"  # counters are per (location, prefix): fresh ones
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_dbs.url(0),
            "KEY_PREFIX": prefix,
        },
        "other": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_dbs.url(1),
            "KEY_PREFIX": prefix + "o",
        },
        "near": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_dbs.url(2),
            "KEY_PREFIX": prefix + "n",
            "OPTIONS": {"NEAR_CACHE": True},
        },
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "djredis"]
    return prefix


@pytest.fixture
def unreachable(settings: Any, configured: str) -> str:
    """Add the alias 'down', a djredis cache on a port where nothing listens."""
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://:secret@127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    return "down"


@pytest.fixture
def command(configured: str) -> Callable[..., tuple[str, str]]:
    """Run ``manage.py djredis_cache``; return (stdout, stderr)."""

    def run(*args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command("djredis_cache", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    return run


# -- counters -----------------------------------------------------------------------------


def test_get_counts_one_hit_or_one_miss(configured: str) -> None:
    cache = caches["default"]
    cache.set("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("missing")

    stats = cache_stats("default")
    assert (stats.hits, stats.misses, stats.reads) == (2, 1, 3)
    assert stats.hit_ratio == pytest.approx(2 / 3)


def test_get_many_counts_each_key(configured: str) -> None:
    cache = caches["default"]
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_many(["a", "b", "c", "d", "e"]) == {"a": 1, "b": 2}
    stats = cache_stats("default")
    assert (stats.hits, stats.misses) == (2, 3)


def test_get_or_set_counts_its_read(configured: str) -> None:
    cache = caches["default"]
    cache.get_or_set("k", "v")  # miss, then stored
    cache.get_or_set("k", "other")  # hit
    stats = cache_stats("default")
    assert (stats.hits, stats.misses) == (1, 1)


def test_async_reads_are_counted_too(configured: str) -> None:
    async def reads() -> None:
        cache = caches["default"]
        await cache.aset("a", 1)
        await cache.aget("a")
        await cache.aget("nope")
        await cache.aget_many(["a", "nope"])
        await cache.aget_or_set("x", 1)

    asyncio.run(reads())
    stats = cache_stats("default")
    assert (stats.hits, stats.misses) == (2, 3)


def test_undecodable_value_counts_as_a_miss(configured: str, redis_dbs: RedisServer) -> None:
    cache = caches["default"]
    redis_dbs.client(0).set(cache.make_key("garbage"), b"\xff not a djredis value")
    assert cache.get("garbage", "default") == "default"
    stats = cache_stats("default")
    assert (stats.hits, stats.misses) == (0, 1)


def test_counters_are_shared_by_the_backends_of_every_thread(configured: str) -> None:
    """Django gives each thread its own backend object; they count into one set."""
    caches["default"].set("a", 1)

    def read() -> None:
        caches["default"].get("a")
        caches["default"].get("b")

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache_stats("default")
    assert (stats.hits, stats.misses) == (4, 4)


def test_aliases_count_separately_and_reset(configured: str) -> None:
    caches["default"].get("x")
    caches["other"].set("y", 1)
    caches["other"].get("y")

    every = all_cache_stats()
    assert set(every) == {"default", "other", "near"}  # not the locmem alias
    assert (every["default"].hits, every["default"].misses) == (0, 1)
    assert (every["other"].hits, every["other"].misses) == (1, 0)
    reset_cache_stats("other")
    assert cache_stats("other").reads == 0
    assert cache_stats("default").reads == 1


def test_near_cache_statistics_are_included_when_the_near_cache_is_on(configured: str) -> None:
    cache = caches["near"]
    cache.set("a", 1)
    deadline = time.monotonic() + 5  # the tier serves once its invalidation stream is up
    while (cache_stats("near").near or {}).get("hits", 0) < 1 and time.monotonic() < deadline:
        assert cache.get("a") == 1

    near = cache_stats("near").near
    assert near is not None
    assert near["hits"] >= 1
    assert cache_stats("near").hits >= near["hits"]  # local hits are counted as hits too
    assert cache_stats("default").near is None  # NEAR_CACHE off: near_stats() is None


def test_reads_answered_by_the_near_cache_count_as_hits(configured: str) -> None:
    """With NEAR_CACHE on, every read is counted, local or not, sync or async."""
    cache = caches["near"]
    cache.set_many({"a": 1, "b": 2})
    cache.get("a")
    cache.get("a")
    cache.get("missing", "default")
    cache.get_many(["a", "b", "c"])

    async def reads() -> None:
        await caches["near"].aget("a")
        await caches["near"].aget("nope")
        await caches["near"].aget_many(["a", "nope"])

    asyncio.run(reads())
    stats = cache_stats("near")
    assert (stats.hits, stats.misses) == (2 + 2 + 1 + 1, 1 + 1 + 1 + 1)


def test_stats_of_a_cache_that_is_not_djredis_is_a_type_error(configured: str) -> None:
    with pytest.raises(TypeError, match=r"CACHES\['local'\] is .*LocMemCache"):
        cache_stats("local")


# -- server figures ----------------------------------------------------------------------


def test_server_stats_count_keys_per_database(configured: str, redis_dbs: RedisServer) -> None:
    redis_dbs.client(0).mset({"a": 1, "b": 2, "c": 3})
    redis_dbs.client(1).mset({"d": 4, "e": 5})

    stats = server_stats("default")

    assert stats.reachable
    assert stats.keys_per_db.get(0) == 3
    assert stats.keys_per_db.get(1) == 2
    assert stats.version == redis_dbs.client(0).info("server")["redis_version"]
    assert stats.latency_ms is not None
    assert stats.latency_ms > 0
    assert stats.connected_clients is not None
    assert stats.connected_clients >= 1
    assert stats.used_memory is not None
    assert stats.used_memory > 0
    assert stats.maxmemory_policy == "noeviction"


def test_server_stats_of_an_unreachable_server_say_so(unreachable: str) -> None:
    stats = server_stats(unreachable)
    assert not stats.reachable
    assert stats.error is not None
    assert "Error connecting to 127.0.0.1" in stats.error
    assert stats.keys_per_db == {}


# -- health view and deploy check ------------------------------------------------------------


def test_health_view_is_200_when_every_server_answers(configured: str) -> None:
    response = health(RequestFactory().get("/health/"))
    assert response.status_code == 200
    body = __import__("json").loads(response.content)
    assert body["status"] == "ok"
    assert [s["alias"] for s in body["servers"]] == ["default", "other", "near"]
    assert all(s["reachable"] and s["latency_ms"] > 0 for s in body["servers"])


def test_health_view_is_503_naming_the_unreachable_server(unreachable: str) -> None:
    response = health(RequestFactory().get("/health/"))
    body = __import__("json").loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "error"
    down = [s for s in body["servers"] if not s["reachable"]]
    assert [s["alias"] for s in down] == ["down"]
    assert "secret" not in response.content.decode()  # the password is masked
    assert down[0]["location"].startswith("redis://***@127.0.0.1:")


def test_deploy_check_reports_each_server(unreachable: str) -> None:
    messages = check_redis_servers()
    ids = {m.id for m in messages}
    assert ids == {"djredis.I001", "djredis.W001"}
    warning = next(m for m in messages if m.id == "djredis.W001")
    assert "CACHES['down']" in warning.msg
    assert sum(m.id == "djredis.I001" for m in messages) == 3


def test_deploy_check_is_registered_for_check_deploy_only(unreachable: str) -> None:
    """With "djredis" installed, check --deploy runs it; a plain check does not."""
    deploy = {m.id for m in run_checks(include_deployment_checks=True, tags=["caches"])}
    plain = {m.id for m in run_checks(include_deployment_checks=False, tags=["caches"])}
    assert "djredis.W001" in deploy
    assert "djredis.W001" not in plain


# -- manage.py djredis_cache -----------------------------------------------------------------


def test_command_info_shows_each_alias(command: Callable[..., tuple[str, str]]) -> None:
    caches["default"].set("a", 1)
    out, _ = command("info")
    assert "default: redis://127.0.0.1:" in out
    assert "other: " in out
    assert "PING" in out
    assert "db0=1" in out
    assert "hit ratio (server-wide" in out


def test_command_info_reports_an_unreachable_server(
    unreachable: str, command: Callable[..., tuple[str, str]]
) -> None:
    out, _ = command("info", "--alias", unreachable)
    assert "unreachable: " in out
    assert "Error connecting to 127.0.0.1" in out


def test_command_keys_lists_matching_cache_keys(
    configured: str, command: Callable[..., tuple[str, str]]
) -> None:
    caches["default"].set_many({"user:1": 1, "user:2": 2, "page:1": 3})
    out, _ = command("keys", "user:*")
    assert sorted(out.splitlines()[:-1]) == [f"{configured}:1:user:1", f"{configured}:1:user:2"]
    assert out.splitlines()[-1].startswith("2 key(s)")


def test_command_delete_dry_run_deletes_nothing(
    configured: str, command: Callable[..., tuple[str, str]]
) -> None:
    caches["default"].set_many({f"user:{n}": n for n in range(30)})
    out, _ = command("delete", "user:*", "--dry-run")
    assert "dry run: 30 key(s) match" in out
    assert out.count("would delete") == 20  # a sample, not all of them
    assert len(caches["default"].get_many([f"user:{n}" for n in range(30)])) == 30


def test_command_delete_removes_only_this_caches_matching_keys(
    configured: str, command: Callable[..., tuple[str, str]], redis_dbs: RedisServer
) -> None:
    caches["default"].set_many({"user:1": 1, "user:2": 2, "page:1": 3})
    redis_dbs.client(0).set("user:raw", 1)  # not a cache key of this alias
    out, _ = command("delete", "user:*")
    assert "deleted 2 key(s)" in out
    assert caches["default"].get_many(["user:1", "user:2", "page:1"]) == {"page:1": 3}
    assert redis_dbs.client(0).exists("user:raw") == 1


def test_command_clear_prefix_removes_raw_keys_with_a_progress_bar(
    configured: str, command: Callable[..., tuple[str, str]], redis_dbs: RedisServer
) -> None:
    client = redis_dbs.client(0)
    client.mset({f"legacy:[x]:{n}": n for n in range(2500)})
    client.mset({f"legacyz{n}": n for n in range(10)})  # not under the prefix "legacy:"
    client.set("legacy?", 1)  # a glob character in the key: not matched by the prefix
    out, err = command("clear-prefix", "legacy:", "--progress", "--count", "500")
    assert "deleted 2500 key(s)" in out
    assert client.dbsize() == 11
    assert err.count("\r[") >= 2  # redrawn as the scan advances
    assert "100% of 2511 keys scanned" in err.replace(" 100%", "100%")


def test_command_hides_the_progress_bar_on_short_scans(
    configured: str, command: Callable[..., tuple[str, str]]
) -> None:
    caches["default"].set("user:1", 1)
    _, err = command("delete", "user:*")
    assert err == ""


def test_command_refuses_an_empty_prefix_and_an_unknown_alias(
    command: Callable[..., tuple[str, str]],
) -> None:
    with pytest.raises(CommandError, match="must not be empty"):
        command("clear-prefix", "")
    with pytest.raises(CommandError, match="'local' is not a djredis cache alias"):
        command("keys", "x*", "--alias", "local")
    with pytest.raises(CommandError, match="needs a pattern"):
        command("delete")
