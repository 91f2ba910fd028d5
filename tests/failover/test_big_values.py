"""Big values and slow peers: SOCKET_TIMEOUT bounds every silence, not a transfer's size.

The rule (``djredis._io.protocol``, docs/cache.md "Timeouts"), the same on both APIs: a
request and its replies may take as long as bytes keep moving with no pause longer than
SOCKET_TIMEOUT, provided they average at least ``MIN_RATE`` (100 kB/s); a server that
stops, before or in the middle of a value, times out SOCKET_TIMEOUT after it stopped (a
quarter more on the async API while a big request is still being written), and a trickle
times out about SOCKET_TIMEOUT after the write. The link is a real TCP proxy in front of
a real redis-server (``tests._proxy.FaultyProxy``): throttled, stalled or trickling.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._io.protocol import MIN_RATE
from djredis.cache import RedisCache
from tests._proxy import FaultyProxy
from tests._servers import RedisServer

TIMEOUT = 0.3
# Scheduling slack for a busy 2-core machine.
SLACK = 0.4
# How long after the last byte moved a stall is noticed, at worst (async samples the
# progress of a big write every quarter of the timeout).
STALL_BOUND = TIMEOUT * 1.25


@pytest.fixture
def proxy(server: RedisServer, direct: Any) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(("127.0.0.1", server.port))
    yield proxy
    proxy.close()


@pytest.fixture
def make_cache() -> Iterator[Callable[[str], RedisCache]]:
    made: list[RedisCache] = []

    def factory(location: str) -> RedisCache:
        cache = RedisCache(
            location,
            {
                "OPTIONS": {
                    "SOCKET_TIMEOUT": TIMEOUT,
                    "SOCKET_CONNECT_TIMEOUT": 1,
                    "CLOSE_CONNECTION": True,
                }
            },
        )
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


def call(api: str, cache: RedisCache, name: str, *args: Any) -> tuple[float, Any]:
    """Run ``cache.<name>(*args)`` (``a<name>`` on a fresh loop for async); return how long
    it took and its result or exception."""

    async def run_async() -> Any:
        try:
            return await getattr(cache, f"a{name}")(*args)
        finally:
            await cache.aclose()

    started = time.monotonic()
    try:
        outcome = getattr(cache, name)(*args) if api == "sync" else asyncio.run(run_async())
    except Exception as exc:
        outcome = exc
    return time.monotonic() - started, outcome


APIS = ["sync", "async"]


@pytest.mark.parametrize("api", APIS)
def test_a_value_that_keeps_flowing_is_never_cut_for_its_size(
    api: str, proxy: FaultyProxy, make_cache: Callable[[str], RedisCache]
) -> None:
    """3 MB at about 3 MB/s each way: a second per transfer, three times SOCKET_TIMEOUT."""
    value = os.urandom(3 << 20)
    cache = make_cache(proxy.location())
    proxy.throttle = (64 << 10, 0.02)
    took_set, stored = call(api, cache, "set", "big", value)
    took_get, got = call(api, cache, "get", "big")
    assert stored in (None, True), stored
    assert got == value, got if not isinstance(got, bytes) else len(got)
    assert took_set > TIMEOUT
    assert took_get > TIMEOUT


@pytest.mark.parametrize("api", APIS)
def test_a_reply_that_stops_midway_times_out_one_timeout_after_it_stopped(
    api: str, proxy: FaultyProxy, make_cache: Callable[[str], RedisCache]
) -> None:
    value = os.urandom(8 << 20)  # 2.5 s at the throttled rate: it stops long before
    make_cache(proxy.location()).set("big", value)
    cache = make_cache(proxy.location())
    proxy.throttle = (64 << 10, 0.02)
    stall_after = 2 * TIMEOUT
    timer = threading.Timer(stall_after, proxy.stall)
    timer.start()
    try:
        took, outcome = call(api, cache, "get", "big")
    finally:
        timer.cancel()
    assert isinstance(outcome, RedisTimeoutError), outcome
    assert "socket_timeout" in str(outcome)
    # Not cut while it flowed; cut within the bound once it stopped.
    assert stall_after < took < stall_after + STALL_BOUND + SLACK, took


@pytest.mark.parametrize("api", APIS)
def test_a_stopped_server_times_out_a_big_write(
    api: str, server: RedisServer, direct: Any, make_cache: Callable[[str], RedisCache]
) -> None:
    """SIGSTOP: the kernel takes the first megabytes, then nothing moves."""
    value = os.urandom(32 << 20)
    cache = make_cache(server.url())
    process = server.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        took, outcome = call(api, cache, "set", "big", value)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    assert isinstance(outcome, RedisTimeoutError), outcome
    # Connecting (1 s at most: the stopped server's kernel still accepts), then the write.
    assert took < 1 + STALL_BOUND + SLACK, took


@pytest.mark.parametrize("api", APIS)
def test_a_trickling_reply_times_out_about_one_timeout_after_the_write(
    api: str, proxy: FaultyProxy, make_cache: Callable[[str], RedisCache]
) -> None:
    make_cache(proxy.location()).set("small", "x" * 2000)
    cache = make_cache(proxy.location())
    call(api, cache, "get", "warm")  # connected: what follows is the reply alone
    proxy.trickle = 0.005  # a byte every 5 ms: 10 s for the value, never a long silence
    took, outcome = call(api, cache, "get", "small")
    proxy.trickle = 0.0
    assert isinstance(outcome, RedisTimeoutError), outcome
    assert took < TIMEOUT * (1 + 1000 / MIN_RATE) + SLACK, took


@pytest.mark.parametrize("api", APIS)
def test_a_reply_slower_than_the_minimum_rate_times_out(
    api: str, proxy: FaultyProxy, make_cache: Callable[[str], RedisCache]
) -> None:
    """50 kB/s, half the minimum: the allowance grows half as fast as time passes, so the
    reply is late at twice the timeout (it would take 8 s)."""
    make_cache(proxy.location()).set("big", os.urandom(400_000))
    cache = make_cache(proxy.location())
    call(api, cache, "get", "warm")
    proxy.throttle = (1000, 0.02)
    took, outcome = call(api, cache, "get", "big")
    assert isinstance(outcome, RedisTimeoutError), outcome
    assert took < 2 * TIMEOUT + SLACK, took
