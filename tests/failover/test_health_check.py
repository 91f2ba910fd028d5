"""``health_check_interval``: a connection idle for longer is PINGed before it is used.

As in redis-py: the pool PINGs an idle connection before handing it out, the multiplexed
connection PINGs before the first write after an idle period. A PING that fails costs the
command nothing: it was not sent, so it goes out on a fresh connection. A half-open
connection (a peer gone without a word, simulated by a proxy that stops forwarding) is then
caught by the PING within socket_timeout, instead of failing the user's command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._proxy import FaultyProxy
from tests._servers import RedisServer

SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.5
INTERVAL = 0.3
SLACK = 0.5
APIS = ["sync", "async"]


@pytest.fixture
def proxy(redis_server: RedisServer, redis_client: Any) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(("127.0.0.1", redis_server.port))
    yield proxy
    proxy.close()


@pytest.fixture
def make_cache(proxy: FaultyProxy) -> Iterator[Callable[..., RedisCache]]:
    made: list[RedisCache] = []

    def factory(interval: float) -> RedisCache:
        options = {
            "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
            "SOCKET_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            "health_check_interval": interval,
        }
        cache = RedisCache(proxy.location(), {"OPTIONS": options})
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


def run_steps(cache: RedisCache, api: str, steps: list[tuple[str, Any]]) -> list[Any]:
    """Run ("set", (key, value)), ("get", key) and ("sleep", seconds) steps on ``api``, on
    one event loop for async (the multiplexed connection lives as long as its loop)."""

    async def run_async() -> list[Any]:
        results: list[Any] = []
        for name, arg in steps:
            if name == "sleep":
                await asyncio.sleep(arg)
            elif name == "call":
                results.append(await arg(cache, True))
        return results

    if api == "async":
        return asyncio.run(run_async())
    results: list[Any] = []
    for name, arg in steps:
        if name == "sleep":
            time.sleep(arg)
        elif name == "call":
            results.append(arg(cache, False))
    return results


def set_value(key: str, value: str) -> Callable[[RedisCache, bool], Any]:
    return lambda cache, aio: cache.aset(key, value) if aio else cache.set(key, value)


def get_value(key: str) -> Callable[[RedisCache, bool], Any]:
    return lambda cache, aio: cache.aget(key) if aio else cache.get(key)


def timed(call: Callable[[RedisCache, bool], Any]) -> Callable[[RedisCache, bool], Any]:
    """Wrap a step so that it returns (outcome, seconds)."""

    def sync(cache: RedisCache) -> Any:
        started = time.monotonic()
        try:
            result = call(cache, False)
        except Exception as exc:  # the test looks at which one
            result = exc
        return result, time.monotonic() - started

    async def aio(cache: RedisCache) -> Any:
        started = time.monotonic()
        try:
            result = await call(cache, True)
        except Exception as exc:  # the test looks at which one
            result = exc
        return result, time.monotonic() - started

    return lambda cache, is_async: aio(cache) if is_async else sync(cache)


def stall(proxy: FaultyProxy) -> Callable[[RedisCache, bool], Any]:
    def step(cache: RedisCache, is_async: bool) -> Any:
        proxy.stall()
        if not is_async:
            return None

        async def done() -> None:
            return None

        return done()

    return step


@pytest.mark.parametrize("api", APIS)
def test_a_half_open_connection_is_caught_by_the_health_check_not_by_the_command(
    proxy: FaultyProxy,
    redis_client: Any,
    make_cache: Callable[..., RedisCache],
    api: str,
) -> None:
    cache = make_cache(INTERVAL)
    *_, (written, seconds) = run_steps(
        cache,
        api,
        [
            ("call", set_value("k", "old")),  # a connection through the proxy, now idle
            ("call", stall(proxy)),  # ...and half-open
            ("sleep", INTERVAL + 0.1),
            ("call", timed(set_value("k", "new"))),
        ],
    )
    print(f"\n{api} set on a half-open connection, health-checked: {seconds:.3f} s")
    assert written is True, repr(written)  # not a TimeoutError: the PING took it
    assert seconds < SOCKET_TIMEOUT + CONNECT_TIMEOUT + SLACK
    assert cache.get("k") == "new"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("interval", "pings"), [(0, 0), (INTERVAL, 1)])
def test_only_a_connection_idle_for_longer_than_the_interval_is_pinged(
    proxy: FaultyProxy,
    make_cache: Callable[..., RedisCache],
    api: str,
    interval: float,
    pings: int,
) -> None:
    cache = make_cache(interval)
    results = run_steps(
        cache,
        api,
        [
            ("call", set_value("k", "v")),
            ("call", get_value("k")),  # busy: no PING
            ("sleep", INTERVAL + 0.1),
            ("call", get_value("k")),  # idle for longer than the interval: one PING first
            ("call", get_value("k")),
        ],
    )
    assert results[1:] == ["v", "v", "v"]
    assert proxy.count(b"GET") == 3  # what the server received, through the proxy
    assert proxy.count(b"PING") == pings
