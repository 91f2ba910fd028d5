"""Native async: concurrency, multiplexing onto few connections, loops, no thread hops."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from redis.exceptions import ResponseError

from djredis import get_async_redis_connection
from djredis.cache import RedisCache
from tests._servers import RedisServer

AsyncCacheFactory = Callable[..., RedisCache]


def our_connections(redis_client: Any) -> int:
    """Count the server's clients other than the test's own inspection client."""
    me = redis_client.client_id()
    return sum(1 for client in redis_client.client_list() if int(client["id"]) != me)


def test_a_thousand_concurrent_incrs_add_up_and_keep_the_ttl(cache: RedisCache) -> None:
    async def scenario() -> tuple[int, int | None]:
        await cache.aset("hits", 0, 300)
        await asyncio.gather(*(cache.aincr("hits") for _ in range(1000)))
        return await cache.aget("hits"), await cache.attl("hits")

    hits, ttl = asyncio.run(scenario())
    assert hits == 1000
    assert ttl is not None
    assert 290 < ttl <= 300


def test_concurrent_gets_and_sets_get_their_own_replies(cache: RedisCache) -> None:
    async def worker(i: int) -> tuple[Any, Any]:
        await asyncio.sleep(random.random() / 100)
        await cache.aset(f"k{i}", {"owner": i, "pad": "x" * (i * 37 % 3000)})
        got = await cache.aget(f"k{i}")
        many = await cache.aget_many([f"k{i}", "absent"])
        return got, many

    async def scenario() -> list[tuple[Any, Any]]:
        return await asyncio.gather(*(worker(i) for i in range(200)))

    for i, (got, many) in enumerate(asyncio.run(scenario())):
        assert got["owner"] == i
        assert list(many) == [f"k{i}"]
        assert many[f"k{i}"]["owner"] == i


def test_a_server_error_in_a_batch_fails_only_its_own_command(
    cache: RedisCache, redis_client: Any
) -> None:
    redis_client.hset(cache.make_key("hash"), "f", "v")

    async def scenario() -> list[Any]:
        await cache.aset_many({f"k{i}": i for i in range(100)})
        calls = [cache.aget(f"k{i}") for i in range(100)]
        calls.insert(50, cache.aget("hash"))  # WRONGTYPE, sent in the same write
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())
    error = results.pop(50)
    assert isinstance(error, ResponseError)
    assert "WRONGTYPE" in str(error)
    assert results == list(range(100))


def test_restarting_redis_fails_in_flight_commands_and_later_ones_succeed() -> None:
    server = RedisServer().start()
    cache = RedisCache(server.url(), {"OPTIONS": {"SOCKET_TIMEOUT": 2}})

    async def scenario() -> tuple[list[Any], list[Any]]:
        await cache.aset("k", 1)
        during = asyncio.gather(
            *(cache.aset(f"x{i}", "v" * 10_000) for i in range(2000)), return_exceptions=True
        )
        await asyncio.sleep(0)  # the commands are written...
        await asyncio.to_thread(server.restart)  # ...and the server goes away under them
        first = await during
        after = await asyncio.gather(*(cache.aset(f"y{i}", i) for i in range(50)))
        return first, after

    try:
        first, after = asyncio.run(scenario())
    finally:
        server.stop()
    assert all(r is True or isinstance(r, Exception) for r in first)
    assert after == [True] * 50


def test_a_hundred_concurrent_requests_share_one_connection(
    cache: RedisCache, redis_client: Any
) -> None:
    baseline = our_connections(redis_client)
    peak = 0

    async def request(i: int) -> Any:
        nonlocal peak
        await cache.aset(f"k{i}", i)
        value = await cache.aget(f"k{i}")
        await cache.aget_many([f"k{i}", f"k{i + 1}"])
        peak = max(peak, our_connections(redis_client) - baseline)
        return value

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(request(i) for i in range(100)))

    assert asyncio.run(scenario()) == list(range(100))
    assert 1 <= peak <= 4


def test_commands_from_one_loop_iteration_are_written_together(
    cache: RedisCache, redis_client: Any
) -> None:
    async def scenario() -> None:
        await cache.aset("warm", 1)  # connect first
        before = redis_client.info("stats")["total_reads_processed"]
        await asyncio.gather(*(cache.aget(f"k{i}") for i in range(200)))
        after = redis_client.info("stats")["total_reads_processed"]
        # 200 commands arrived in a handful of socket reads (one write), not 200.
        assert after - before <= 10

    asyncio.run(scenario())


def test_callers_woken_by_one_batch_of_replies_send_their_next_commands_together(
    cache: RedisCache, redis_client: Any
) -> None:
    """50 coroutines each awaiting one aget after another: the replies to one write wake them
    together, and what they send next leaves in one write, not a lone first command and then
    the rest (which would take Redis two reads per round)."""
    rounds, workers = 40, 50

    async def worker(i: int) -> None:
        for _ in range(rounds):
            await cache.aget(f"k{i}")

    async def scenario() -> int:
        await cache.aset("warm", 1)  # connect first
        before = redis_client.info("stats")["total_reads_processed"]
        await asyncio.gather(*(worker(i) for i in range(workers)))
        after: int = redis_client.info("stats")["total_reads_processed"]
        return after - before

    # One read per round (one more when a round's replies reach us split in two); split
    # writes take 1.5 to 2 reads per round (57 to 81 here before callers were batched). A
    # busy machine can split a round's replies more often, so the best of three runs counts.
    counts = [asyncio.run(scenario()) for _ in range(3)]
    print(f"\n{rounds} rounds of {workers} concurrent aget: {counts} socket reads by Redis")
    assert min(counts) <= rounds * 1.25


def test_a_command_on_an_idle_connection_is_written_before_the_loop_turns(
    cache: RedisCache, redis_client: Any
) -> None:
    """With nothing in flight, a command leaves in its caller's own step: the loop is kept
    blocked here, and Redis gets the SET all the same (batching waits for a loop turn)."""
    key = cache.make_and_validate_key("eager")

    async def scenario() -> bool:
        await cache.aset("warm", 1)  # connected, nothing in flight
        setting = asyncio.ensure_future(cache.aset("eager", 1))
        await asyncio.sleep(0)  # the task's first step ran: the SET is queued (and written?)
        deadline = time.monotonic() + 2
        arrived = False
        while not arrived and time.monotonic() < deadline:  # blocks the loop on purpose
            arrived = bool(redis_client.exists(key))
            time.sleep(0.01)
        await setting
        return arrived

    assert asyncio.run(scenario()) is True


def test_async_to_sync_loops_leave_no_connection_behind(
    cache: RedisCache, redis_client: Any
) -> None:
    baseline = our_connections(redis_client)

    async def one_request(i: int) -> Any:
        await cache.aset(f"k{i}", i)
        return await cache.aget(f"k{i}")

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for i in range(20):  # asgiref makes (and closes) a new event loop per call
            assert async_to_sync(one_request)(i) == i
        gc.collect()
    deadline_checks = 0
    while our_connections(redis_client) > baseline and deadline_checks < 100:
        deadline_checks += 1
        async_to_sync(asyncio.sleep)(0.01)
    # Not more than before: connections of earlier tests on this shared server may still be
    # closing while this one runs (seen: 248 after a baseline of 249), never ours staying.
    assert our_connections(redis_client) <= baseline


def test_no_async_method_hops_to_a_thread(
    cache: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asgiref.sync

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an a* method went through sync_to_async / a thread")

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", forbidden)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor = forbidden  # type: ignore[method-assign]
        await cache.aset("k", 1, 30)
        await cache.aadd("a", 1)
        await cache.aget("k")
        await cache.aget_or_set("g", lambda: 1)
        await cache.atouch("k", 40)
        await cache.ahas_key("k")
        await cache.aset_many({"m": 1})
        await cache.aget_many(["m"])
        await cache.adelete_many(["m"])
        await cache.aincr("k")
        await cache.adecr("k")
        await cache.aincr_version("k")
        await cache.adecr_version("k", version=2)
        await cache.attl("k")
        await cache.apttl("k")
        await cache.aexpire("k", 10)
        await cache.apexpire("k", 10_000)
        await cache.aexpire_at("k", 2_000_000_000)
        await cache.apexpire_at("k", 2_000_000_000_000)
        await cache.apersist("k")
        async with cache.alock("lock", timeout=5):
            pass
        assert [key async for key in cache.aiter_keys("*")]
        await cache.akeys("*")
        await cache.adelete_pattern("a*")
        await cache.adelete("k")
        await cache.aclear()
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.asyncio
async def test_async_cache_under_pytest_asyncio(make_cache: AsyncCacheFactory) -> None:
    cache = make_cache()

    async def compute() -> str:
        return "from a coroutine"

    assert await cache.aget_or_set("k", compute) == "from a coroutine"
    assert await cache.aget("k") == "from a coroutine"


@pytest.mark.asyncio
async def test_get_async_redis_connection_gives_a_redis_asyncio_client(
    django_caches: Any,
) -> None:
    client = get_async_redis_connection("default")
    await client.set("direct", "value")
    assert await client.get("direct") == b"value"
    pubsub = client.pubsub()
    await pubsub.subscribe("news")
    await client.publish("news", "hello")
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
    assert message is not None
    assert message["data"] == b"hello"
    await pubsub.aclose() if hasattr(pubsub, "aclose") else await pubsub.close()


def test_async_views_through_djangos_test_client(settings: Any, django_caches: Any) -> None:
    from django.test import AsyncClient, Client

    settings.ROOT_URLCONF = "tests.async_urls"
    assert Client().get("/counter/").content == b"1"
    assert Client().get("/counter/").content == b"2"

    async def via_async_client() -> bytes:
        response = await AsyncClient().get("/counter/")
        return bytes(response.content)

    assert asyncio.run(via_async_client()) == b"3"


def test_the_async_api_runs_on_uvloop(cache: RedisCache) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[Any, ...]:
        await cache.aset("k", {"on": "uvloop"}, 30)
        values = await asyncio.gather(*(cache.aget("k") for _ in range(50)))
        return values[0], await cache.aincr_version("k"), await cache.aget("k", version=2)

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(scenario()) == ({"on": "uvloop"}, 2, {"on": "uvloop"})
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
