"""Dedicated connections under faults: killed, restarted, stopped (SIGSTOP), cancelled, not Redis.

What a subscriber sees across a break: the call that finds the connection broken raises
``ConnectionError`` once, saying messages published meanwhile are lost (Redis drops them);
the next call reconnects and re-subscribes, and later messages arrive again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._core.errors import ProtocolError
from djredis._io.aio import AsyncConnection
from djredis._io.protocol import GAP, Message
from tests._dedicated import APIS, AsyncFace, SyncFace, open_face, server_config
from tests._proxy import FaultyProxy
from tests._servers import RedisServer

SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.5
SLACK = 0.5

Face = SyncFace | AsyncFace


@pytest.fixture
def open_dedicated(direct: Any) -> Iterator[Callable[..., Face]]:
    """``open_dedicated(location, api, **OPTIONS)``: a dedicated connection, closed after."""
    made: list[Face] = []

    def factory(location: str, api: str, **options: Any) -> Face:
        options = {
            "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
            "SOCKET_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            **options,
        }
        face = open_face(server_config(location, **options), api, f"faults-{len(made)}")
        made.append(face)
        return face

    yield factory
    for face in made:
        face.close()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # the test looks at which one
        return exc


def receive_after_gap(conn: Face, direct: Any, channel: str) -> list[Any]:
    """Read until the gap is reported, then publish and read again; return what was seen."""
    seen = [outcome(lambda: conn.get_message(2.0))]
    seen.append(outcome(lambda: conn.get_message(0.2)))  # reconnects and re-subscribes
    seen.append(direct.publish(channel, "after"))
    seen.append(outcome(lambda: conn.get_message(2.0)))
    return seen


@pytest.mark.parametrize("api", APIS)
def test_a_killed_subscriber_reports_the_gap_once_then_gets_messages_again(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    conn = open_dedicated(server.url(), api)
    conn.subscribe("news")
    first_id = conn.client_id()
    direct.publish("news", "before")
    assert conn.get_message(1.0) == Message("message", b"news", b"before")
    direct.client_kill_filter(_id=first_id)
    gap, quiet, receivers, after = receive_after_gap(conn, direct, "news")
    assert isinstance(gap, RedisConnectionError), repr(gap)
    assert GAP in str(gap)
    assert quiet is None
    assert receivers == 1
    assert after == Message("message", b"news", b"after")
    assert conn.client_id() != first_id


@pytest.mark.parametrize("api", APIS)
def test_a_restarted_redis_is_reported_as_a_gap_then_re_subscribed(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    conn = open_dedicated(server.url(), api)
    conn.subscribe("news")
    conn.psubscribe("room.*")
    server.restart()
    gap, quiet, receivers, after = receive_after_gap(conn, direct, "room.1")
    assert isinstance(gap, RedisConnectionError), repr(gap)
    assert GAP in str(gap)
    assert quiet is None
    assert receivers == 1
    assert after == Message("pmessage", b"room.1", b"after", b"room.*")
    assert direct.publish("news", "too") == 1  # the channel came back as well


@pytest.mark.parametrize("api", APIS)
def test_a_blocking_call_to_a_stopped_redis_times_out_at_block_plus_socket_timeout(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    conn = open_dedicated(server.url(), api)
    first_id = conn.client_id()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        failure = outcome(lambda: conn.call("BZPOPMIN", "queue", 1, block=1))
        elapsed = time.monotonic() - started
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    print(f"\n{api} BZPOPMIN block=1 against a stopped Redis failed after {elapsed:.3f} s")
    assert isinstance(failure, RedisTimeoutError), repr(failure)
    assert 1 + SOCKET_TIMEOUT - 0.05 < elapsed < 1 + SOCKET_TIMEOUT + SLACK
    assert not conn.conn.connected  # discarded: a late reply must not reach the next call
    assert conn.call("ECHO", "mine") == b"mine"
    assert conn.client_id() != first_id


@pytest.mark.parametrize("api", APIS)
def test_a_stopped_redis_makes_a_subscriber_ping_fail_within_socket_timeout(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    conn = open_dedicated(server.url(), api)
    conn.subscribe("news")
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        assert conn.get_message(SOCKET_TIMEOUT) is None  # a quiet stream looks healthy...
        started = time.monotonic()
        failure = outcome(conn.ping)  # ...until the heartbeat goes unanswered
        elapsed = time.monotonic() - started
        print(f"\n{api} heartbeat PING against a stopped Redis failed after {elapsed:.3f} s")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert isinstance(failure, RedisTimeoutError), repr(failure)
    assert GAP in str(failure)
    assert elapsed < SOCKET_TIMEOUT + SLACK
    assert conn.get_message(0.2) is None  # re-subscribed
    assert direct.publish("news", "back") == 1
    assert conn.get_message(1.0) == Message("message", b"news", b"back")


def run_cancelled(face: AsyncFace, make: Callable[[AsyncConnection], Any]) -> None:
    """Start ``make(conn)`` as a task on the face's loop and cancel it 0.2 s later."""

    async def scenario() -> None:
        task = asyncio.ensure_future(make(face.conn))
        await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    face.run(scenario())


def test_a_cancelled_get_message_leaves_the_subscription_usable(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face]
) -> None:
    face = open_dedicated(server.url(), "async")
    assert isinstance(face, AsyncFace)
    face.subscribe("news")
    first_id = face.client_id()
    for _ in range(20):
        run_cancelled(face, lambda conn: conn.get_message(None))
    direct.publish("news", "one")
    direct.publish("news", "two")
    assert face.get_message(1.0) == Message("message", b"news", b"one")
    assert face.get_message(1.0) == Message("message", b"news", b"two")
    assert face.client_id() == first_id  # the same socket, never out of step


def test_a_cancelled_blocking_pop_pops_nothing_and_later_calls_get_their_own_replies(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face]
) -> None:
    face = open_dedicated(server.url(), "async")
    assert isinstance(face, AsyncFace)
    face.ping()
    run_cancelled(face, lambda conn: conn.call("BLPOP", "jobs", 5, block=5))
    direct.rpush("jobs", "job")
    time.sleep(0.2)
    assert direct.llen("jobs") == 1  # the abandoned BLPOP did not take it
    assert face.call("ECHO", "mine") == b"mine"
    assert face.call("LPOP", "jobs") == b"job"


def test_a_subscriber_cancelled_mid_ping_hears_of_the_gap(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face]
) -> None:
    face = open_dedicated(server.url(), "async")
    assert isinstance(face, AsyncFace)
    face.subscribe("news")
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)  # so that the pong is still owed when cancelled
    try:
        run_cancelled(face, lambda conn: conn.ping())
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    gap = outcome(lambda: face.get_message(0.2))
    assert isinstance(gap, RedisConnectionError), repr(gap)
    assert GAP in str(gap)
    assert face.get_message(0.2) is None
    assert direct.publish("news", "back") == 1
    assert face.get_message(1.0) == Message("message", b"news", b"back")


@pytest.mark.parametrize("api", APIS)
def test_garbage_on_a_subscription_is_a_protocol_error_then_it_re_subscribes(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    proxy = FaultyProxy(("127.0.0.1", server.port))
    try:
        conn = open_dedicated(proxy.location(), api)
        conn.subscribe("news")
        proxy.fault = ("replace", b"?garbage\r\n")  # instead of the next message
        direct.publish("news", "lost")
        failure = outcome(lambda: conn.get_message(2.0))
        assert isinstance(failure, ProtocolError), repr(failure)
        assert GAP in str(failure)
        assert f"127.0.0.1:{proxy.port}" in str(failure)
        assert conn.get_message(0.2) is None
        assert direct.publish("news", "again") == 1
        assert conn.get_message(1.0) == Message("message", b"news", b"again")
    finally:
        proxy.close()


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("first", ["call", "subscribe"])
def test_a_server_that_is_not_redis_is_a_protocol_error(
    not_redis: int, open_dedicated: Callable[..., Face], api: str, first: str
) -> None:
    conn = open_dedicated(f"redis://127.0.0.1:{not_redis}/0", api)
    failure = outcome(lambda: conn.call("PING") if first == "call" else conn.subscribe("x"))
    assert isinstance(failure, ProtocolError), repr(failure)
    assert f"127.0.0.1:{not_redis}" in str(failure)


@pytest.mark.parametrize("api", APIS)
def test_a_big_reply_that_keeps_arriving_is_not_cut_at_its_deadline(
    server: RedisServer, direct: Any, open_dedicated: Callable[..., Face], api: str
) -> None:
    """3 MB at about 3 MB/s: past block + SOCKET_TIMEOUT, but never a silence (docs/cache.md)."""
    value = os.urandom(3 << 20)
    direct.rpush("queue", value)
    proxy = FaultyProxy(("127.0.0.1", server.port))
    try:
        proxy.throttle = (64 << 10, 0.02)
        conn = open_dedicated(proxy.location(), api)
        started = time.monotonic()
        reply = outcome(lambda: conn.call("BLPOP", "queue", 0.1, block=0.1))
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert not isinstance(reply, Exception), reply
    assert reply == [b"queue", value]
    assert elapsed > 0.1 + SOCKET_TIMEOUT  # it outlasted block + socket_timeout
