"""What the cache does when Redis is gone, slow, or restarted (IGNORE_EXCEPTIONS)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis.cache import RedisCache
from tests._api import API_PARAMS, as_api, shutdown
from tests._servers import RedisServer, free_port

# Every public operation, with what it must return when IGNORE_EXCEPTIONS hides an error.
OPERATIONS: list[tuple[str, Callable[[RedisCache], Any], Any]] = [
    ("get", lambda c: c.get("k", "default"), "default"),
    ("set", lambda c: c.set("k", 1), False),
    ("add", lambda c: c.add("k", 1), False),
    ("get_or_set", lambda c: c.get_or_set("k", lambda: "computed"), "computed"),
    ("touch", lambda c: c.touch("k", 10), False),
    ("delete", lambda c: c.delete("k"), False),
    ("has_key", lambda c: c.has_key("k"), False),
    ("get_many", lambda c: c.get_many(["a", "b"]), {}),
    ("set_many", lambda c: c.set_many({"a": 1, "b": 2}, 10), ["a", "b"]),
    ("delete_many", lambda c: c.delete_many(["a", "b"]), None),
    ("incr", lambda c: c.incr("k"), None),
    ("decr", lambda c: c.decr("k"), None),
    ("incr_version", lambda c: c.incr_version("k"), None),
    ("clear", lambda c: c.clear(), None),
    ("ttl", lambda c: c.ttl("k"), 0),
    ("pttl", lambda c: c.pttl("k"), 0),
    ("expire", lambda c: c.expire("k", 10), False),
    ("pexpire", lambda c: c.pexpire("k", 10), False),
    ("expire_at", lambda c: c.expire_at("k", 2_000_000_000), False),
    ("persist", lambda c: c.persist("k"), False),
    ("lock", lambda c: c.lock("k").acquire(blocking=False), False),
    ("keys", lambda c: c.keys("*"), []),
    ("iter_keys", lambda c: list(c.iter_keys("*")), []),
    ("delete_pattern", lambda c: c.delete_pattern("*"), 0),
    ("sadd", lambda c: c.sadd("s", 1), 0),
    ("smembers", lambda c: c.smembers("s"), set()),
    ("sinter", lambda c: c.sinter("{g}s", "{g}t"), set()),
    ("sunionstore", lambda c: c.sunionstore("{g}d", "{g}s"), 0),
    ("sismember", lambda c: c.sismember("s", 1), False),
    ("smismember", lambda c: c.smismember("s", 1, 2), [False, False]),
    ("spop", lambda c: c.spop("s"), None),
    ("srandmember", lambda c: c.srandmember("s", 2), []),
    ("sscan", lambda c: c.sscan("s"), set()),
    ("sscan_iter", lambda c: list(c.sscan_iter("s")), []),
    ("hset", lambda c: c.hset("h", "f", 1), 0),
    ("hkeys", lambda c: c.hkeys("h"), []),
    ("hexists", lambda c: c.hexists("h", "f"), False),
    ("hget", lambda c: c.hget("h", "f", "default"), "default"),
    ("hgetall", lambda c: c.hgetall("h"), {}),
    ("zadd", lambda c: c.zadd("z", {"m": 1}), 0),
    ("zadd_incr", lambda c: c.zadd("z", {"m": 1}, incr=True), None),
    ("zscore", lambda c: c.zscore("z", "m"), None),
    ("zrange", lambda c: c.zrange("z", 0, -1, withscores=True), []),
    ("zpopmax", lambda c: c.zpopmax("z"), None),
    ("zpopmin_count", lambda c: c.zpopmin("z", 2), []),
    ("zincrby", lambda c: c.zincrby("z", 1, "m"), None),
    ("zcard", lambda c: c.zcard("z"), 0),
    ("zcount", lambda c: c.zcount("z", 0, 10), 0),
    ("zrem", lambda c: c.zrem("z", "m"), 0),
    ("zremrangebyscore", lambda c: c.zremrangebyscore("z", 0, 10), 0),
    ("scard", lambda c: c.scard("s"), 0),
    ("hdel", lambda c: c.hdel("h", "f"), 0),
    ("hlen", lambda c: c.hlen("h"), 0),
]


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture(params=API_PARAMS)
def build(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Build caches behind the sync or the async API (one event loop per test)."""
    loop = asyncio.new_event_loop()
    yield lambda location, params: as_api(RedisCache(location, params), request.param, loop)
    shutdown(loop)


@pytest.fixture
def dead_cache(build: Callable[..., Any]) -> Callable[..., Any]:
    """Build caches pointed at a port where nothing listens."""
    return lambda **options: build(
        f"redis://127.0.0.1:{free_port()}/0", {"KEY_PREFIX": "x", "OPTIONS": options}
    )


@pytest.mark.parametrize(("name", "call", "fallback"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_ignored_connection_errors_become_misses_and_no_ops(
    name: str, call: Callable[[RedisCache], Any], fallback: Any, dead_cache: Callable[..., Any]
) -> None:
    assert call(dead_cache(IGNORE_EXCEPTIONS=True)) == fallback


@pytest.mark.parametrize(("name", "call", "fallback"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_connection_errors_raise_by_default(
    name: str, call: Callable[[RedisCache], Any], fallback: Any, dead_cache: Callable[..., Any]
) -> None:
    with pytest.raises(RedisConnectionError):
        call(dead_cache())


def test_a_burst_of_errors_is_logged_once(caplog: Any, dead_cache: Callable[..., Any]) -> None:
    cache = dead_cache(IGNORE_EXCEPTIONS=True)
    with caplog.at_level("WARNING", logger="djredis.cache"):
        for _ in range(20):
            cache.get("k")
    assert len(caplog.records) == 1
    assert "IGNORE_EXCEPTIONS" in caplog.text
    assert "get on" in caplog.text


def test_log_ignored_exceptions_false_keeps_ignored_errors_out_of_the_log(
    caplog: Any, settings: Any, dead_cache: Callable[..., Any]
) -> None:
    """``LOG_IGNORED_EXCEPTIONS`` (OPTION or django-redis's global setting) is honoured."""
    with caplog.at_level("WARNING", logger="djredis.cache"):
        assert dead_cache(IGNORE_EXCEPTIONS=True, LOG_IGNORED_EXCEPTIONS=False).get("k") is None
        settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
        assert dead_cache(IGNORE_EXCEPTIONS=True).get("k") is None
    assert caplog.records == []


def test_django_redis_logger_names_the_logger_of_ignored_errors(
    caplog: Any, settings: Any, dead_cache: Callable[..., Any]
) -> None:
    settings.DJANGO_REDIS_LOGGER = "myproject.redis"
    with caplog.at_level("WARNING", logger="myproject.redis"):
        dead_cache(IGNORE_EXCEPTIONS=True).get("k")
    assert [record.name for record in caplog.records] == ["myproject.redis"]


def test_global_django_redis_setting_turns_on_ignore_exceptions(
    settings: Any, dead_cache: Callable[..., Any]
) -> None:
    settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    assert dead_cache().get("k", "fallback") == "fallback"


def test_a_hanging_redis_times_out_after_socket_timeout(
    black_hole: int, build: Callable[..., Any]
) -> None:
    options = {"SOCKET_TIMEOUT": 0.2, "SOCKET_CONNECT_TIMEOUT": 0.2}
    hanging = build(f"redis://127.0.0.1:{black_hole}/0", {"OPTIONS": options})
    with pytest.raises(RedisTimeoutError):
        hanging.get("k")
    ignoring = build(
        f"redis://127.0.0.1:{black_hole}/0", {"OPTIONS": {**options, "IGNORE_EXCEPTIONS": True}}
    )
    assert ignoring.get("k", "default") == "default"


def test_a_restarted_redis_is_reconnected_transparently(build: Callable[..., Any]) -> None:
    server = RedisServer().start()
    try:
        cache = build(server.url(), {})
        cache.set("before", 1)
        assert cache.get("before") == 1  # the pool now holds an open connection
        server.restart()  # that connection is now dead; nothing was persisted
        assert cache.get("before") is None
        cache.set("after", 2)
        assert cache.get("after") == 2
    finally:
        server.stop()
