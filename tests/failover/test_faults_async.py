"""The async path under faults: handshakes, lost replies, cancellation, stalls, bad servers.

Every test talks to a real redis-server; a few put a tiny misbehaving TCP server in front
of it (``Proxy``: drops a reply, injects one, trickles bytes) or instead of it
(``FakeServer``: answers chosen bytes) — servers that break the protocol, not mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import socket
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from asgiref.sync import async_to_sync
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._core.errors import CONNECTION_ERRORS, ProtocolError
from djredis.cache import RedisCache
from tests._servers import RedisServer

T = TypeVar("T")
PASSWORD = "s3cret-pass"
CacheFactory = Callable[..., RedisCache]


@pytest.fixture
def build() -> Iterator[CacheFactory]:
    """Build caches (``build(location, **OPTIONS)``), closed after the test."""
    made: list[RedisCache] = []

    def factory(location: str, **options: Any) -> RedisCache:
        cache = RedisCache(location, {"OPTIONS": options})
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


def run(coroutine: Callable[[], Awaitable[T]]) -> tuple[T, list[dict[str, Any]]]:
    """Run ``coroutine()`` on a fresh loop; return its result and what asyncio reported
    to the loop's exception handler ("Fatal error...", unretrieved exceptions)."""
    reported: list[dict[str, Any]] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx))
        return await coroutine()

    result = asyncio.run(main())
    gc.collect()  # futures whose exception nobody retrieved are reported when collected
    return result, reported


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a redis-server that misbehaves on cue."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.drop_next_reply = threading.Event()  # execute, then close before replying
        self.inject = b""  # sent (once) right after the next reply
        self.trickle: tuple[int, float] | None = None  # (bytes, pause): stream replies slowly
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.drop_next_reply.is_set():
                    self.drop_next_reply.clear()
                    for sock in (source, sink):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                if replies and self.inject:
                    data, self.inject = data + self.inject, b""
                if replies and self.trickle:
                    size, pause = self.trickle
                    for start in range(0, len(data), size):
                        sink.sendall(data[start : start + size])
                        time.sleep(pause)
                else:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


class FakeServer:
    """A TCP server on 127.0.0.1 that answers every chunk it receives with ``reply``
    (nothing when ``reply`` is None)."""

    def __init__(self, reply: bytes | None) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._sockets.append(client)
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        try:
            while client.recv(65536):
                if self._reply is not None:
                    client.sendall(self._reply)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[Proxy]:
    found = Proxy(redis_server.port)
    yield found
    found.close()


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop (SIGSTOP) or kill clients on."""
    server = RedisServer().start()
    yield server
    server.stop()


async def staggered(count: int, call: Callable[[int], Awaitable[T]]) -> list[T | BaseException]:
    """Start ``call(i)`` after ``i`` loop iterations, so that some land mid-handshake."""

    async def one(i: int) -> T:
        for _ in range(i):
            await asyncio.sleep(0)
        return await call(i)

    return await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)


# -- 1. nothing is written before the handshake --------------------------------------------


def test_fresh_loops_never_read_or_write_another_database(
    redis_server: RedisServer, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(redis_server.url(5))
    cache.set("present", "here")
    wrong = 0
    for trial in range(60):

        async def scenario(trial: int = trial) -> list[Any]:
            async def call(i: int) -> Any:
                if (i + trial) % 2:
                    return await cache.aset(f"t{trial}-{i}", i)
                return await cache.aget("present")

            return await staggered(40, call)

        results, _ = run(scenario)
        wrong += sum(1 for got in results[trial % 2 :: 2] if got != "here")
    assert wrong == 0
    assert redis_server.client(0).dbsize() == 0
    assert redis_server.client(5).dbsize() == 1 + 60 * 20


def test_client_kill_mid_traffic_never_lands_in_database_0(
    private_server: RedisServer, build: CacheFactory
) -> None:
    cache = build(private_server.url(5), SOCKET_TIMEOUT=2)
    cache.set("present", "here")
    admin = private_server.client(0)

    async def scenario() -> tuple[int, int]:
        stop = time.monotonic() + 1.5
        wrong_reads = kills = 0

        async def worker(w: int) -> None:
            nonlocal wrong_reads
            n = 0
            while time.monotonic() < stop:
                for _ in range(random.randrange(8)):  # spread the workers over iterations
                    await asyncio.sleep(0)
                try:
                    await cache.aset(f"w{w}-{n}", n)
                    if await cache.aget("present") != "here":
                        wrong_reads += 1
                except CONNECTION_ERRORS:
                    pass
                n += 1

        async def killer() -> None:
            nonlocal kills
            while time.monotonic() < stop:
                await asyncio.sleep(0.02)
                kills += await asyncio.to_thread(
                    admin.client_kill_filter, _type="normal", skipme=True
                )

        await asyncio.gather(killer(), *(worker(w) for w in range(20)))
        return wrong_reads, kills

    (wrong_reads, kills), _ = run(scenario)
    assert kills > 10
    assert wrong_reads == 0
    assert admin.dbsize() == 0


def test_no_command_reaches_a_password_server_before_auth(build: CacheFactory) -> None:
    server = RedisServer(password=PASSWORD).start()
    try:
        cache = build(server.url(3))
        errors: list[BaseException] = []
        for _ in range(40):

            async def scenario() -> list[Any]:
                return await staggered(30, lambda i: cache.aset(f"k{i}", i))

            results, _ = run(scenario)
            errors += [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert "errorstat_NOAUTH" not in server.client().info("errorstats")
        assert server.client(0).dbsize() == 0
        assert server.client(3).dbsize() == 30
    finally:
        server.stop()


def test_a_wrong_password_fails_the_handshake_cleanly(build: CacheFactory) -> None:
    server = RedisServer(password=PASSWORD).start()
    try:
        cache = build(f"redis://:wrong@127.0.0.1:{server.port}/3")

        async def scenario() -> list[Any]:
            return await asyncio.gather(cache.aget("a"), cache.aset("b", 1), return_exceptions=True)

        results, reported = run(scenario)
        assert all(isinstance(r, AuthenticationError) for r in results), results
        assert reported == []
        assert server.client(0).dbsize() == server.client(3).dbsize() == 0
    finally:
        server.stop()


# -- 2. only what surely did not run, or only reads, is sent again ----------------------------


def test_an_incr_whose_reply_is_lost_is_applied_once(
    proxy: Proxy, redis_server: RedisServer, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(proxy.url())
    cache.set("n", 0)
    cache.incr("n")  # loads the script, so that the dropped reply is the increment's
    cache.set("n", 0)

    async def scenario() -> None:
        await cache.aget("warm")  # the loop's connection is open
        proxy.drop_next_reply.set()
        with pytest.raises(RedisConnectionError):
            await cache.aincr("n")

    run(scenario)
    assert not proxy.drop_next_reply.is_set()
    assert cache.get("n") == 1


def test_incr_version_whose_reply_is_lost_reports_the_connection_error(
    proxy: Proxy, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(proxy.url())
    cache.set("v", "value")

    async def scenario() -> None:
        await cache.aget("warm")
        proxy.drop_next_reply.set()
        with pytest.raises(RedisConnectionError):
            await cache.aincr_version("v")

    run(scenario)
    assert cache.get("v", version=2) == "value"
    assert cache.get("v") is None


def test_a_read_whose_reply_is_lost_is_sent_again(
    proxy: Proxy, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(proxy.url())
    cache.set("k", "value")

    async def scenario() -> Any:
        await cache.aget("warm")
        proxy.drop_next_reply.set()
        return await cache.aget("k")

    got, _ = run(scenario)
    assert got == "value"
    assert proxy.accepted == 3  # the sync set, the loop's first connection, the resend's


# -- 3. one coroutine's cancellation never reaches another ----------------------------------


@pytest.mark.parametrize("ignore", [False, True], ids=["raise", "ignore_exceptions"])
def test_cancelling_the_coroutine_that_connects_fails_only_that_one(
    redis_server: RedisServer, redis_client: Any, build: CacheFactory, ignore: bool
) -> None:
    cache = build(redis_server.url(5), IGNORE_EXCEPTIONS=ignore)
    cache.set("k", "value")
    for _ in range(10):

        async def scenario() -> list[Any]:
            tasks = [asyncio.ensure_future(cache.aget("k")) for _ in range(50)]
            await asyncio.sleep(0)  # every task started; the first is opening the connection
            tasks[0].cancel()
            return await asyncio.gather(*tasks, return_exceptions=True)

        results, reported = run(scenario)
        assert isinstance(results[0], asyncio.CancelledError)
        assert results[1:] == ["value"] * 49
        assert reported == []


# -- 4. one deadline per write ---------------------------------------------------------------


def test_a_stalled_server_times_out_every_call_within_socket_timeout(
    private_server: RedisServer, build: CacheFactory
) -> None:
    timeout = 0.6
    cache = build(private_server.url(), SOCKET_TIMEOUT=timeout, SOCKET_CONNECT_TIMEOUT=timeout)
    assert private_server.process is not None
    pid = private_server.process.pid

    async def timed(delay: float) -> tuple[float, BaseException | None]:
        await asyncio.sleep(delay)
        start = time.monotonic()
        try:
            await cache.aget("k")
        except CONNECTION_ERRORS as exc:
            return time.monotonic() - start, exc
        return time.monotonic() - start, None

    async def scenario() -> list[tuple[float, BaseException | None]]:
        await cache.aget("warm")
        await asyncio.sleep(timeout + 0.1)  # no timer left from the warm-up
        await cache.aget("warm")  # a reply just before the stall
        os.kill(pid, signal.SIGSTOP)
        try:
            delays = [0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.9, 1.2]
            return await asyncio.gather(*(timed(d * timeout) for d in delays))
        finally:
            os.kill(pid, signal.SIGCONT)

    results, _ = run(scenario)
    longest = max(took for took, _ in results)
    assert all(isinstance(exc, RedisTimeoutError) for _, exc in results)
    assert longest < timeout + 0.3, results


def test_retry_on_timeout_resends_reads_but_not_writes(
    private_server: RedisServer, build: CacheFactory
) -> None:
    timeout = 0.4
    cache = build(
        private_server.url(),
        SOCKET_TIMEOUT=timeout,
        SOCKET_CONNECT_TIMEOUT=timeout,
        RETRY_ON_TIMEOUT=True,
    )
    assert private_server.process is not None
    pid = private_server.process.pid

    async def took(call: Awaitable[Any]) -> float:
        start = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await call
        return time.monotonic() - start

    async def scenario() -> tuple[float, float]:
        await cache.aget("warm")
        await asyncio.sleep(timeout + 0.1)  # no timer left from the warm-up
        os.kill(pid, signal.SIGSTOP)
        try:
            return await took(cache.aget("k")), await took(cache.aset("k", 1))
        finally:
            os.kill(pid, signal.SIGCONT)

    (read, write), _ = run(scenario)
    assert 2 * timeout - 0.1 < read < 2 * timeout + 0.4  # sent twice
    assert write < timeout + 0.3  # sent once


def test_replies_streaming_slower_than_the_minimum_rate_time_out(
    proxy: Proxy, redis_client: Any, build: CacheFactory
) -> None:
    """Bytes arrive every 20 ms (never a silence of SOCKET_TIMEOUT), but at 50 kB/s, half
    of ``progress.MIN_RATE``: the write's allowance grows half as fast as time passes, so
    its replies time out at about twice SOCKET_TIMEOUT, not after the 8 s they would take."""
    timeout = 0.5
    cache = build(proxy.url(), SOCKET_TIMEOUT=timeout)
    cache.set_many({f"big{i}": "x" * 40_000 for i in range(10)})

    async def timed(i: int) -> tuple[float, Any]:
        start = time.monotonic()
        try:
            got = await cache.aget(f"big{i}")
        except RedisTimeoutError as exc:
            got = exc
        return time.monotonic() - start, got

    async def scenario() -> list[tuple[float, Any]]:
        await cache.aget("warm")
        proxy.trickle = (1000, 0.02)  # 50 kB/s: 400 KB in 8 s
        return await asyncio.gather(*(timed(i) for i in range(10)))  # one write

    results, _ = run(scenario)
    proxy.trickle = None
    assert max(took for took, _ in results) < 2 * timeout + 0.4, results
    assert any(isinstance(got, RedisTimeoutError) for _, got in results)


# -- 5. protocol violations ------------------------------------------------------------------

BAD_REPLIES = {
    "unknown type byte": b"?oops\r\n",
    "bad bulk length": b"$abc\r\n",
    "negative bulk length": b"$-5\r\nab\r\n",
    "deep nesting": b"*1\r\n" * 100 + b":1\r\n",  # past MAX_DEPTH (64), under hiredis's 1024
    "RESP3 map": b"%1\r\n+a\r\n+b\r\n",
    "RESP3 double": b",1.5\r\n",
    "RESP3 boolean": b"#t\r\n",
    "RESP3 double in an array": b"*2\r\n:1\r\n,1.5\r\n",
    "an HTTP server": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("reply", BAD_REPLIES.values(), ids=BAD_REPLIES.keys())
@pytest.mark.parametrize("db", [0, 5])
def test_a_protocol_violation_discards_the_connection_and_names_the_server(
    reply: bytes, db: int, build: CacheFactory
) -> None:
    server = FakeServer(reply)
    try:
        cache = build(server.url(db), SOCKET_TIMEOUT=2)
        ignoring = build(server.url(db), SOCKET_TIMEOUT=2, IGNORE_EXCEPTIONS=True)

        async def scenario() -> tuple[list[Any], Any]:
            raised = await asyncio.gather(cache.aget("a"), cache.aget("b"), return_exceptions=True)
            return raised, await ignoring.aget("a", "miss")

        (raised, ignored), reported = run(scenario)
        assert all(isinstance(exc, ProtocolError) for exc in raised), raised
        assert all(f"127.0.0.1:{server.port}" in str(exc) for exc in raised)
        assert ignored == "miss"
        assert reported == []
        assert server.accepted >= 2  # the broken connection was not reused
    finally:
        server.close()


def test_a_server_that_never_answers_times_out_or_is_a_miss(build: CacheFactory) -> None:
    server = FakeServer(None)
    try:
        options = {"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3}
        cache = build(server.url(5), **options)
        ignoring = build(server.url(5), **options, IGNORE_EXCEPTIONS=True)

        async def scenario() -> tuple[BaseException | None, Any, float]:
            start = time.monotonic()
            try:
                await cache.aget("a")
            except CONNECTION_ERRORS as exc:
                error: BaseException | None = exc
            else:
                error = None
            return error, await ignoring.aget("a", "miss"), time.monotonic() - start

        (error, ignored, took), reported = run(scenario)
        assert isinstance(error, RedisTimeoutError)
        assert ignored == "miss"
        assert took < 4 * 0.3 + 0.5
        assert reported == []
    finally:
        server.close()


def test_an_unsolicited_reply_discards_the_connection(
    proxy: Proxy, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(proxy.url())

    async def scenario() -> list[Any]:
        await cache.aset("a", "A")
        proxy.inject = b"$6\r\nWRONG1\r\n$6\r\nWRONG2\r\n"
        await cache.aset("b", "B")
        return [await cache.aget(key) for key in ("a", "b", "a", "b")]

    got, reported = run(scenario)
    assert got == ["A", "B", "A", "B"]
    assert proxy.accepted == 2
    assert reported == []


# -- 6. a finished loop leaves nothing behind -------------------------------------------------


def test_finished_loops_are_freed_and_their_connections_closed(
    redis_server: RedisServer, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(redis_server.url(), client_name="djredis-fresh-loops")
    loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    async def one() -> Any:
        loops.add(asyncio.get_running_loop())
        return await cache.aget("k", "default")

    for _ in range(150):
        assert asyncio.run(one()) == "default"
    for _ in range(50):
        assert async_to_sync(one)() == "default"
    gc.collect()
    assert len(loops) == 0

    def ours() -> int:
        return sum(1 for c in redis_client.client_list() if c["name"] == "djredis-fresh-loops")

    deadline = time.monotonic() + 5
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours() == 0


def test_a_server_error_is_not_a_protocol_error(
    redis_server: RedisServer, redis_client: Any, build: CacheFactory
) -> None:
    cache = build(redis_server.url())
    redis_client.hset(cache.make_key("h"), "f", "v")

    async def scenario() -> Any:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await cache.aget("h")
        return await cache.aget("absent", "default")

    got, reported = run(scenario)
    assert got == "default"
    assert reported == []


def test_rediss_pointed_at_a_plain_port_says_the_tls_handshake_failed(
    redis_server: RedisServer, build: CacheFactory
) -> None:
    """The shared async connection words a failed TLS handshake as the blocking pool and the
    exclusive connections do (``protocol.tls_handshake_error``), within connect_timeout."""
    cache = build(
        f"rediss://127.0.0.1:{redis_server.port}/0", ssl_cert_reqs="none", SOCKET_TIMEOUT=1
    )

    async def scenario() -> tuple[BaseException | None, float]:
        start = time.monotonic()
        try:
            await cache.aget("k")
        except CONNECTION_ERRORS as exc:
            return exc, time.monotonic() - start
        return None, time.monotonic() - start

    (error, took), reported = run(scenario)
    assert isinstance(error, (RedisConnectionError, RedisTimeoutError)), repr(error)
    assert "TLS handshake" in str(error)
    assert "is it a TLS port?" in str(error)
    assert f"127.0.0.1:{redis_server.port}" in str(error)
    assert took < 4 * 1 + 0.5  # connect_timeout (socket_timeout) per attempt
    assert reported == []
