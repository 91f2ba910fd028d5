"""The metrics beyond the cache counters: near-cache, rate limiting, the channel layer,
sessions, pools and reconnects, read back from real prometheus_client registries after real
traffic on real redis-servers (nothing of prometheus_client is mocked).

Figures read from live objects (near-cache counters, pool state) are sampled when the
registry is collected, so every ``scrape`` below reads them fresh.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.exceptions import ChannelFull
from django.core.cache import caches
from django.test import RequestFactory
from prometheus_client import CollectorRegistry

import djredis.metrics
from djredis.cache.near.tier import close_all
from djredis.channels import RedisChannelLayer
from djredis.ratelimit import Rule
from tests._api import run_api
from tests._observed import scrape
from tests._servers import RedisServer, free_port


def poll(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- near-cache -------------------------------------------------------------------------------


def test_near_cache_hits_evictions_and_invalidations_are_exported_per_alias(
    registry: CollectorRegistry, settings: Any, redis_server: RedisServer
) -> None:
    prefix = f"n{uuid.uuid4().hex[:8]}"
    # An alias of its own: near-caches of earlier tests may still be labelled "near".
    alias = f"near-{prefix}"
    settings.CACHES = {
        alias: {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(6),
            "KEY_PREFIX": prefix,
            "OPTIONS": {"NEAR_CACHE": {"MAX_ENTRIES": 2}},
        }
    }
    cache = caches[alias]
    try:
        cache.set_many({"a": 1, "b": 2, "c": 3}, 60)

        def local_hit() -> bool:
            cache.get("a")
            stats = cache.near_stats()
            return bool(stats and stats["hits"])

        poll(local_hit, "the near-cache to serve a local hit")
        for key in ("b", "c", "b", "c"):  # two entries at most: "a" is evicted
            cache.get(key)
        other = redis.Redis.from_url(redis_server.url(6))
        try:
            other.set(cache.make_key("b"), b"written elsewhere")  # Redis invalidates "b"
        finally:
            other.close()
        poll(lambda: cache.near_stats()["invalidations"], "the invalidation of 'b'")
        stats = cache.near_stats()
        assert stats["hits"] > 0
        assert stats["evictions"] > 0
        assert scrape(registry, "djredis_near_cache_hits_total", alias=alias) == stats["hits"]
        assert scrape(registry, "djredis_near_cache_misses_total", alias=alias) == stats["misses"]
        evictions = scrape(registry, "djredis_near_cache_evictions_total", alias=alias)
        assert evictions == stats["evictions"]
        invalidations = scrape(registry, "djredis_near_cache_invalidations_total", alias=alias)
        assert invalidations == stats["invalidations"] == 1
        assert scrape(registry, "djredis_near_cache_entries", alias=alias) == stats["entries"]
        # Counters only grow: a second scrape adds what was counted since, nothing twice.
        cache.get("c")
        assert scrape(registry, "djredis_near_cache_hits_total", alias=alias) == stats["hits"] + 1
    finally:
        close_all()  # the listeners: their PINGs must not reach other tests' servers


# -- rate limiting ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_rate_limit_decisions_are_counted_by_rule_and_outcome(
    api: str, registry: CollectorRegistry, settings: Any, redis_server: RedisServer
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": redis_server.url(7)},
        "down": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    settings.RATELIMIT_USE_CACHE = "default"
    redis.Redis.from_url(redis_server.url(7)).flushdb()
    request = RequestFactory().post("/login", REMOTE_ADDR="203.0.113.7")
    login = Rule(key="ip", rate="2/m", group=f"login-{api}")
    closed = Rule(key="ip", rate="2/m", group=f"search-{api}", fail_open=False)
    opened = Rule(key="ip", rate="2/m", group=f"feed-{api}", fail_open=True)
    nobody = Rule(key="ip", rate="0/m", group=f"closed-{api}")

    def sync() -> None:
        for _ in range(3):
            login.check(request)
        nobody.check(request)
        settings.RATELIMIT_USE_CACHE = "down"
        closed.check(request)
        opened.check(request)

    async def coroutine() -> None:
        for _ in range(3):
            await login.acheck(request)
        await nobody.acheck(request)
        settings.RATELIMIT_USE_CACHE = "down"
        await closed.acheck(request)
        await opened.acheck(request)

    run_api(api, sync, coroutine)
    name = "djredis_ratelimit_decisions_total"
    assert scrape(registry, name, rule=f"login-{api}", outcome="allowed") == 2
    assert scrape(registry, name, rule=f"login-{api}", outcome="limited") == 1
    assert scrape(registry, name, rule=f"closed-{api}", outcome="limited") == 1
    assert scrape(registry, name, rule=f"search-{api}", outcome="failed_closed") == 1
    assert scrape(registry, name, rule=f"feed-{api}", outcome="failed_open") == 1


# -- channel layer ----------------------------------------------------------------------------


def test_channel_sends_receives_and_full_channels_are_counted(
    registry: CollectorRegistry, redis_server: RedisServer
) -> None:
    layer = RedisChannelLayer(
        hosts=[redis_server.url(8)], capacity=1, prefix=f"m{uuid.uuid4().hex[:6]}"
    )

    async def traffic() -> None:
        try:
            await layer.send("work", {"type": "a"})
            with pytest.raises(ChannelFull):
                await layer.send("work", {"type": "b"})
            assert (await layer.receive("work"))["type"] == "a"
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("room", first)
            await layer.group_add("room", second)
            await layer.group_send("room", {"type": "hello"})
            assert (await layer.receive(first))["type"] == "hello"
            assert (await layer.receive(second))["type"] == "hello"
        finally:
            await layer.flush()

    asyncio.run(traffic())
    name = "djredis_channel_messages_total"
    assert scrape(registry, name, event="sent") == 1
    assert scrape(registry, name, event="group_sent") == 2
    assert scrape(registry, name, event="received") == 3
    assert scrape(registry, "djredis_channel_full_total") == 1


# -- sessions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_session_logins_and_revocations_are_counted(
    api: str, registry: CollectorRegistry, settings: Any, redis_server: RedisServer
) -> None:
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {"url": redis_server.url(9), "prefix": f"s{uuid.uuid4().hex[:6]}"}
    engine = import_module("djredis.sessions")
    store_class = engine.SessionStore

    def sync() -> int:
        laptop = store_class()
        laptop["_auth_user_id"] = "7"  # what django.contrib.auth.login() stores
        laptop.save()  # a login
        again = store_class(laptop.session_key)
        again["cart"] = [1]
        again.save()  # the same user's next request: no login
        phone = store_class()
        phone["_auth_user_id"] = "7"
        phone.save()  # a second login
        anonymous = store_class()
        anonymous["cart"] = [2]
        anonymous.save()  # no user: no login
        return int(engine.revoke_all_sessions(7))

    async def coroutine() -> int:
        laptop = store_class()
        laptop["_auth_user_id"] = "7"
        await laptop.asave()
        again = store_class(laptop.session_key)
        await again.aload()
        again["cart"] = [1]
        await again.asave()
        phone = store_class()
        phone["_auth_user_id"] = "7"
        await phone.asave()
        anonymous = store_class()
        anonymous["cart"] = [2]
        await anonymous.asave()
        return int(await engine.arevoke_all_sessions(7))

    assert run_api(api, sync, coroutine) == 2
    assert scrape(registry, "djredis_session_logins_total") == 2
    assert scrape(registry, "djredis_session_revocations_total") == 2


# -- pools and reconnects ---------------------------------------------------------------------


def test_pool_connections_in_use_and_waits_are_read_when_scraped(
    registry: CollectorRegistry, settings: Any, own_server: RedisServer
) -> None:
    settings.CACHES = {
        "one": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": own_server.url(0),
            "OPTIONS": {
                "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
                "CONNECTION_POOL_KWARGS": {"max_connections": 1, "timeout": 10},
                "socket_timeout": 10,
            },
        }
    }
    server = f"127.0.0.1:{own_server.port}/0"
    cache = caches["one"]
    cache.set("k", 1, 60)
    assert scrape(registry, "djredis_pool_connections", server=server, state="idle") == 1
    assert scrape(registry, "djredis_pool_max_connections", server=server) == 1
    os.kill(own_server.process.pid, signal.SIGSTOP)  # the next reply is late
    results: list[Any] = []
    readers = [threading.Thread(target=lambda: results.append(cache.get("k"))) for _ in range(2)]
    try:
        for reader in readers:
            reader.start()
        poll(
            lambda: scrape(registry, "djredis_pool_waits_total", server=server) == 1,
            "the second reader to wait for the one connection",
        )
        assert scrape(registry, "djredis_pool_connections", server=server, state="in_use") == 1
        assert scrape(registry, "djredis_pool_connections", server=server, state="idle") == 0
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
        for reader in readers:
            reader.join(20)
    assert results == [1, 1]
    assert scrape(registry, "djredis_pool_connections", server=server, state="in_use") == 0
    cache.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_connection_opened_again_after_the_server_dropped_it_is_a_reconnect(
    api: str, registry: CollectorRegistry, settings: Any, own_server: RedisServer
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": own_server.url(0)}
    }
    cache = caches["default"]
    server = f"127.0.0.1:{own_server.port}/0"
    admin = own_server.client(0)

    def drop_clients() -> None:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1

    def sync() -> None:
        cache.set("k", 1, 60)
        drop_clients()
        assert cache.get("k") == 1  # the dead idle socket is replaced: one reconnect

    async def coroutine() -> None:
        await cache.aset("k", 1, 60)
        drop_clients()
        assert await cache.aget("k") == 1

    try:
        run_api(api, sync, coroutine)
        assert scrape(registry, "djredis_reconnects_total", server=server) == 1
    finally:
        admin.close()
        cache.close()


# -- stampede protection ----------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_stampede_protected_reads_carry_the_cache_alias(
    api: str, registry: CollectorRegistry, django_caches: Any
) -> None:
    cache = django_caches["other"]

    def sync() -> None:
        assert cache.get_or_set("k", lambda: 5, 30, stampede=True) == 5

    async def coroutine() -> None:
        assert await cache.aget_or_set("k", lambda: 5, 30, stampede=True) == 5

    run_api(api, sync, coroutine)
    ops = "djredis_operations_total"
    assert scrape(registry, ops, component="cache", alias="other", operation="get_or_set") >= 2
    labels = [
        sample.labels
        for family in registry.collect()
        for sample in family.samples
        if sample.name == ops
    ]
    assert all(found["alias"] == "other" for found in labels), labels
    count = "djredis_command_duration_seconds_count"
    assert scrape(registry, count, alias="other", command="EVALSHA stampede_claim") >= 1


# -- several worker processes -----------------------------------------------------------------

NEAR_WORKER = """
import sys, time
sys.path[:0] = [{src!r}, {root!r}]
import django
from django.conf import settings
settings.configure(
    CACHES={{"near": {{
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": {url!r},
        "KEY_PREFIX": {prefix!r},
        "OPTIONS": {{"NEAR_CACHE": True}},
    }}}},
    DJREDIS_PROMETHEUS=True,
    INSTALLED_APPS=["djredis"],
)
django.setup()
from django.core.cache import caches
cache = caches["near"]
cache.set("k", 1, 60)
deadline = time.monotonic() + 10
while cache.near_stats()["hits"] < {hits} and time.monotonic() < deadline:
    cache.get("k")
    time.sleep(0.005)
print(cache.near_stats()["hits"])
"""


def test_near_cache_counters_of_every_worker_add_up_in_multiprocess_mode(
    tmp_path: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Path(__file__).resolve().parents[2]
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    prefix = f"mp{uuid.uuid4().hex[:6]}"
    counted = 0
    for hits in (3, 5):  # each worker exits before any sampling period: written at exit
        script = NEAR_WORKER.format(
            src=str(project / "src"),
            root=str(project),
            url=redis_server.url(13),
            prefix=prefix,
            hits=hits,
        )
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        counted += int(done.stdout.split()[-1])
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    site = djredis.metrics.collecting_registry()
    assert counted >= 8
    assert scrape(site, "djredis_near_cache_hits_total", alias="near") == counted
