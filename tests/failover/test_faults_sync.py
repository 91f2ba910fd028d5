"""The sync connection layer under faults: lost replies, restarts, hangs, broken protocol, TLS.

Every fault is real: a redis-server restarted or stopped (SIGSTOP), a tiny TCP proxy on
127.0.0.1 in front of a real redis-server that loses, slows down or garbles the server's
replies, a server that is not Redis, a plain port behind ``rediss://``. The rules checked:

- a command is sent again only when it surely did not reach Redis, or when it only reads;
- an idle socket closed by the server is never written on, so a restart costs no errors;
- all replies to one write arrive within ``SOCKET_TIMEOUT`` of it, and no call waits longer
  than ``(retries + 1) * (SOCKET_CONNECT_TIMEOUT + SOCKET_TIMEOUT)``;
- a protocol violation discards the connection and raises ``ProtocolError`` naming the
  server (a miss with ``IGNORE_EXCEPTIONS``), and the next call gets its own reply.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._core.errors import ProtocolError
from djredis.cache import RedisCache
from djredis.sessions import SessionStore
from tests._proxy import FaultyProxy
from tests._servers import RedisServer

SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.5
RETRIES = 1  # djredis's default (config.DEFAULT_RETRIES)
# The documented bound on one call, plus scheduling slack for a busy 2-core CI machine.
CALL_BOUND = (RETRIES + 1) * (CONNECT_TIMEOUT + SOCKET_TIMEOUT)
SLACK = 0.4


@pytest.fixture
def proxy(server: RedisServer, direct: Any) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(("127.0.0.1", server.port))
    yield proxy
    proxy.close()


@pytest.fixture
def make_cache() -> Iterator[Callable[..., RedisCache]]:
    made: list[RedisCache] = []

    def factory(location: str, **options: Any) -> RedisCache:
        options = {
            "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
            "SOCKET_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            **options,
        }
        cache = RedisCache(location, {"OPTIONS": options})
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


def raises_or_returns(call: Callable[[], Any]) -> Any:
    """Return what ``call`` returned, or the exception it raised."""
    try:
        return call()
    except Exception as exc:  # the test looks at which one
        return exc


# -- 1. lost replies: a write is never applied twice ----------------------------------------


def test_incr_whose_reply_is_lost_is_applied_once(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("n", 0)
    cache.incr("n")  # the script is loaded: the next EVALSHA runs it
    proxy.fault = ("drop", None)
    outcome = raises_or_returns(lambda: cache.incr("n"))
    assert isinstance(outcome, RedisConnectionError)
    assert cache.get("n") == 2  # applied exactly once
    assert proxy.count(b"EVALSHA") == 2


def test_incr_version_whose_reply_is_lost_moves_the_key_once(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("k", "v")
    proxy.fault = ("drop", None)
    outcome = raises_or_returns(lambda: cache.incr_version("k"))
    assert isinstance(outcome, RedisConnectionError)  # never ValueError("Key not found")
    assert cache.get("k", version=2) == "v"
    assert cache.get("k") is None
    assert proxy.count(b"RENAME") == 1


def test_incr_version_whose_reply_is_lost_is_a_no_op_with_ignore_exceptions(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location(), IGNORE_EXCEPTIONS=True)
    cache.set("k", "v")
    proxy.fault = ("drop", None)
    assert cache.incr_version("k") is None  # the fallback, not ValueError
    assert cache.get("k", version=2) == "v"


@pytest.mark.parametrize(
    ("operation", "command"),
    [
        (lambda c: c.set_many({"a": 1, "b": 2}, 60), b"EXEC"),  # one MULTI/EXEC
        (lambda c: c.set("a", 1), b"SET"),
        (lambda c: c.delete("a"), b"DEL"),
        (lambda c: c.decr("n"), b"EVALSHA"),
    ],
    ids=["set_many_with_timeout", "set", "delete", "decr"],
)
def test_writes_whose_reply_is_lost_are_sent_once(
    proxy: FaultyProxy,
    make_cache: Callable[..., RedisCache],
    operation: Callable[[RedisCache], Any],
    command: bytes,
) -> None:
    cache = make_cache(proxy.location())
    cache.set("n", 5)
    operation(cache)  # scripts are loaded: the next EVALSHA runs them
    before = proxy.count(command)
    proxy.fault = ("drop", None)
    assert isinstance(raises_or_returns(lambda: operation(cache)), RedisConnectionError)
    assert proxy.count(command) - before == 1


def test_session_save_whose_reply_is_lost_runs_once(
    proxy: FaultyProxy, direct: Any, settings: Any
) -> None:
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {
        "url": proxy.location(),
        "prefix": "s",
        "OPTIONS": {"SOCKET_TIMEOUT": SOCKET_TIMEOUT},
    }
    store = SessionStore()
    store["user"] = "ann"
    store.save()
    before = proxy.count(b"EVALSHA")
    store["cart"] = 3
    proxy.fault = ("drop", None)
    assert isinstance(raises_or_returns(store.save), RedisConnectionError)
    assert proxy.count(b"EVALSHA") - before == 1
    assert SessionStore(store.session_key).load() == {"user": "ann", "cart": 3}


def test_a_read_whose_reply_is_lost_is_sent_again(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("k", "v")
    proxy.fault = ("drop", None)
    assert cache.get("k") == "v"
    assert proxy.count(b"GET") == 2


# -- 2. a Redis restart costs no errors ---------------------------------------------------------


def test_no_get_fails_after_a_restart_of_redis(
    server: RedisServer, direct: Any, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(server.url(), client_name="djredis-restart")
    cache.set("k", "v")

    def named() -> int:
        return sum(1 for c in direct.client_list() if c["name"] == "djredis-restart")

    barrier = threading.Barrier(20)

    def burst() -> None:
        barrier.wait()
        for _ in range(20):
            cache.get("k")

    deadline = time.monotonic() + 20
    while named() < 20 and time.monotonic() < deadline:  # twenty threads fill the pool
        threads = [threading.Thread(target=burst) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert named() >= 20
    server.restart()
    outcomes = [raises_or_returns(lambda: cache.get("k", "gone")) for _ in range(25)]
    failures = [o for o in outcomes if isinstance(o, Exception)]
    print(f"\nfailed gets among 25 after a restart: {len(failures)}")
    assert failures == []
    assert outcomes == ["gone"] * 25  # no persistence: the restart emptied it


# -- 3. timeouts: one deadline per write ----------------------------------------------------------


@pytest.mark.parametrize("retry_on_timeout", [False, True])
@pytest.mark.parametrize("fresh", [False, True], ids=["pooled", "new-connection"])
def test_no_call_to_a_hanging_redis_waits_longer_than_the_bound(
    server: RedisServer,
    direct: Any,
    make_cache: Callable[..., RedisCache],
    retry_on_timeout: bool,
    fresh: bool,
) -> None:
    cache = make_cache(
        server.url(db=1),
        RETRY_ON_TIMEOUT=retry_on_timeout,
        client_name=f"hang-{fresh}-{retry_on_timeout}",  # a pool of its own
    )
    if not fresh:
        cache.set("k", 1)  # a pooled connection, handshake done
    assert server.process is not None
    durations: dict[str, float] = {}
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        for name, call in [
            ("get", lambda: cache.get("k")),
            ("set", lambda: cache.set("k", 2)),
            ("incr", lambda: cache.incr("k")),
            ("get_many", lambda: cache.get_many(["k", "j"])),
        ]:
            started = time.monotonic()
            outcome = raises_or_returns(call)
            durations[name] = time.monotonic() - started
            assert isinstance(outcome, (RedisTimeoutError, RedisConnectionError)), name
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    print(f"\nlongest sync call against a stopped Redis: {durations}")
    assert max(durations.values()) < CALL_BOUND + SLACK, durations
    if not retry_on_timeout:  # nothing is resent: one timeout per call
        assert max(durations.values()) < CONNECT_TIMEOUT + SOCKET_TIMEOUT + SLACK, durations


def test_a_trickling_reply_times_out_at_socket_timeout(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("big", "x" * 2000)
    proxy.trickle = 0.01  # 20 s for the whole reply, but a byte every 10 ms
    started = time.monotonic()
    outcome = raises_or_returns(lambda: cache.get("big"))
    elapsed = time.monotonic() - started
    assert isinstance(outcome, RedisTimeoutError)
    assert "socket_timeout" in str(outcome)
    assert elapsed < SOCKET_TIMEOUT + SLACK


# -- 4. protocol violations ---------------------------------------------------------------------

VIOLATIONS = {
    "unknown-type": b"?what\r\n",
    "bad-length": b"$abc\r\n",
    "negative-length": b"$-5\r\n",
    "bad-integer": b":12x\r\n",
    "too-deep": b"*1\r\n" * 100_000 + b":1\r\n",
    "resp3-map": b"%1\r\n+a\r\n:1\r\n",
    "resp3-double": b",1.5\r\n",
    "resp3-boolean": b"#t\r\n",
    "resp3-push": b">2\r\n+message\r\n+hello\r\n",
}


@pytest.mark.parametrize("reply", list(VIOLATIONS.values()), ids=list(VIOLATIONS))
def test_a_protocol_violation_raises_protocol_error_naming_the_server(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache], reply: bytes
) -> None:
    cache = make_cache(proxy.location())
    cache.set("k", "v")
    proxy.fault = ("replace", reply)
    outcome = raises_or_returns(lambda: cache.get("k"))
    assert isinstance(outcome, ProtocolError), repr(outcome)
    assert f"127.0.0.1:{proxy.port}" in str(outcome)
    assert cache.get("k") == "v"  # the next call has a connection of its own, in step


@pytest.mark.parametrize("reply", list(VIOLATIONS.values()), ids=list(VIOLATIONS))
def test_a_protocol_violation_is_a_miss_with_ignore_exceptions(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache], reply: bytes
) -> None:
    cache = make_cache(proxy.location(), IGNORE_EXCEPTIONS=True)
    cache.set("k", "v")
    proxy.fault = ("replace", reply)
    assert cache.get("k", "missed") == "missed"
    assert cache.get("k") == "v"


def test_an_unsolicited_extra_reply_never_reaches_a_later_call(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("a", "A")
    cache.set("b", "B")
    proxy.fault = ("append", b":1\r\n")
    assert isinstance(raises_or_returns(lambda: cache.has_key("nothing")), ProtocolError)
    assert cache.has_key("nothing") is False
    assert [cache.get("a"), cache.get("b")] == ["A", "B"]


def test_unsolicited_data_on_an_idle_connection_is_never_read_as_a_reply(
    proxy: FaultyProxy, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(proxy.location())
    cache.set("a", "A")
    proxy.push(b"$1\r\nX\r\n")  # the idle pooled connection receives a reply nobody asked for
    time.sleep(0.05)  # let it land in the socket before the next call looks at it
    assert cache.get("a") == "A"  # discarded before the write; the call went elsewhere


def test_a_location_that_is_not_redis_is_a_protocol_error(
    not_redis: int, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(f"redis://127.0.0.1:{not_redis}/0")
    for call in (lambda: cache.get("k"), lambda: cache.set("k", 1)):
        outcome = raises_or_returns(call)
        assert isinstance(outcome, ProtocolError), repr(outcome)
        assert f"127.0.0.1:{not_redis}" in str(outcome)


def test_a_location_that_is_not_redis_is_a_miss_with_ignore_exceptions(
    not_redis: int, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(f"redis://127.0.0.1:{not_redis}/0", IGNORE_EXCEPTIONS=True)
    assert cache.get("k", "missed") == "missed"
    assert cache.set("k", 1) is False


# -- 5. error clarity ---------------------------------------------------------------------------


def test_rediss_pointed_at_a_plain_port_says_the_tls_handshake_failed(
    server: RedisServer, direct: Any, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(f"rediss://127.0.0.1:{server.port}/0", ssl_cert_reqs="none")
    started = time.monotonic()
    outcome = raises_or_returns(lambda: cache.get("k"))
    elapsed = time.monotonic() - started
    assert isinstance(outcome, (RedisConnectionError, RedisTimeoutError)), repr(outcome)
    assert "TLS handshake" in str(outcome)
    assert f"127.0.0.1:{server.port}" in str(outcome)
    assert elapsed < CALL_BOUND + SLACK
