"""Dedicated connections on a real Redis: blocking reads that outlast SOCKET_TIMEOUT, pub/sub,
an invalidation stream, one connection per (process or loop, server, purpose), fork safety.

Faults (kills, restarts, a stopped server, cancellations) are in
tests/failover/test_dedicated_faults.py.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from djredis._core.commands import Call
from djredis._io.loops import adedicated, loop_state
from djredis._io.pool import dedicated, execute_on
from djredis._io.protocol import Message
from djredis._io.wire import execute_async
from tests._dedicated import APIS, AsyncFace, SyncFace, open_face, server_config
from tests._servers import RedisServer
from tests._topologies import PASSWORD, USERNAME, Node, Tls

SOCKET_TIMEOUT = 0.5
SLACK = 0.5  # scheduling slack on a busy 2-core machine

Face = SyncFace | AsyncFace


@pytest.fixture
def open_dedicated(redis_server: RedisServer, redis_client: Any) -> Iterator[Callable[..., Face]]:
    """``open_dedicated(api, purpose, **OPTIONS)``: a dedicated connection, closed after."""
    made: list[Face] = []

    def factory(api: str, purpose: str = "test", **options: Any) -> Face:
        options = {"SOCKET_TIMEOUT": SOCKET_TIMEOUT, "SOCKET_CONNECT_TIMEOUT": 1.0, **options}
        face = open_face(server_config(redis_server.url(), **options), api, purpose)
        made.append(face)
        return face

    yield factory
    for face in made:
        face.close()


def later(seconds: float, action: Callable[[], Any]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


@pytest.mark.parametrize("api", APIS)
def test_a_blocking_pop_outwaits_socket_timeout(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    conn = open_dedicated(api)
    conn.ping()  # connected: the wait below is the pop's alone
    timer = later(2.0, lambda: redis_client.zadd("queue", {"job": 1}))
    started = time.monotonic()
    try:
        popped = conn.call("BZPOPMIN", "queue", 3, block=3)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert popped == [b"queue", b"job", b"1"]
    assert 1.9 < elapsed < 3 + SLACK


@pytest.mark.parametrize("api", APIS)
def test_a_blocking_pop_that_times_out_on_the_server_returns_none(
    open_dedicated: Callable[..., Face], api: str
) -> None:
    conn = open_dedicated(api)
    started = time.monotonic()
    assert conn.call("BZPOPMIN", "empty", 1, block=1) is None
    assert time.monotonic() - started < 1 + SOCKET_TIMEOUT
    assert conn.call("PING") == b"PONG"  # the connection survived the long wait


@pytest.mark.parametrize("api", APIS)
def test_a_subscriber_idle_longer_than_socket_timeout_gets_the_next_message(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    conn = open_dedicated(api, client_name="idle-subscriber")
    conn.subscribe("news")
    started = time.monotonic()
    assert conn.get_message(3 * SOCKET_TIMEOUT) is None
    assert time.monotonic() - started >= 3 * SOCKET_TIMEOUT - 0.05
    time.sleep(2 * SOCKET_TIMEOUT)  # idle without even reading
    assert redis_client.publish("news", "hello") == 1
    assert conn.get_message(1.0) == Message("message", b"news", b"hello")
    names = [c["name"] for c in redis_client.client_list()]
    assert names.count("idle-subscriber") == 1  # the same socket all along


@pytest.mark.parametrize("api", APIS)
def test_patterns_and_unsubscribing(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    conn = open_dedicated(api)
    conn.subscribe("a", "b")
    conn.psubscribe("room.*")
    assert redis_client.publish("room.1", "x") == 1
    assert conn.get_message(1.0) == Message("pmessage", b"room.1", b"x", b"room.*")
    conn.unsubscribe("a")
    assert redis_client.publish("a", "gone") == 0
    assert redis_client.publish("b", "kept") == 1
    assert conn.get_message(1.0) == Message("message", b"b", b"kept")
    conn.ping()  # a pong message while subscribed
    assert conn.get_message(0.2) is None


@pytest.mark.parametrize("api", APIS)
def test_messages_that_arrive_during_a_ping_are_kept_in_order(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    conn = open_dedicated(api)
    conn.subscribe("c")
    for i in range(3):
        redis_client.publish("c", str(i))
    conn.ping()
    got = [conn.get_message(1.0) for _ in range(3)]
    assert [m.data for m in got if m is not None] == [b"0", b"1", b"2"]


@pytest.mark.parametrize("api", APIS)
def test_an_invalidation_stream_for_client_tracking(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    """The near-cache's recipe: one connection subscribes to ``__redis__:invalidate``,
    another turns tracking on with its CLIENT ID as the redirect target."""
    stream = open_dedicated(api, "invalidations")
    stream_id = stream.client_id()
    stream.subscribe("__redis__:invalidate")
    tracker = open_dedicated(api, "tracking")
    tracker.call("CLIENT", "TRACKING", "ON", "REDIRECT", stream_id, "BCAST", "PREFIX", "p:")
    redis_client.set("p:menu", "1")
    redis_client.set("other", "1")
    message = stream.get_message(1.0)
    assert message is not None
    assert (message.channel, message.data) == (b"__redis__:invalidate", [b"p:menu"])
    assert stream.get_message(0.2) is None  # "other" is outside the prefix


@pytest.mark.parametrize("api", APIS)
def test_subscribing_through_call_is_refused(open_dedicated: Callable[..., Face], api: str) -> None:
    conn = open_dedicated(api)
    with pytest.raises(TypeError, match="subscribe"):
        conn.call("SUBSCRIBE", "x")


def test_dedicated_connections_are_neither_the_pooled_nor_the_multiplexed_one(
    redis_server: RedisServer, redis_client: Any
) -> None:
    config = server_config(redis_server.url(), client_name="whose")
    pooled = execute_on(config, Call(("CLIENT", "ID")))
    blocking = dedicated(config, "reader")
    invalidations = dedicated(config, "invalidations")
    assert dedicated(config, "reader") is blocking
    ids = {"pooled": pooled, "reader": blocking.client_id()}
    ids["invalidations"] = invalidations.client_id()

    async def in_a_loop() -> None:
        ids["multiplexed"] = await execute_async(
            loop_state().connection(config), Call(("CLIENT", "ID"), write=False)
        )
        conn = adedicated(config, "reader")
        assert adedicated(config, "reader") is conn
        ids["async reader"] = await conn.client_id()
        listed = {c["id"] for c in redis_client.client_list() if c["name"] == "whose"}
        assert set(map(str, ids.values())) <= listed

    try:
        asyncio.run(in_a_loop())
    finally:
        blocking.close()
        invalidations.close()
    assert len(set(ids.values())) == len(ids), ids


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # multi-threaded test runner
def test_a_forked_child_never_uses_the_parent_socket(
    redis_server: RedisServer, redis_client: Any
) -> None:
    config = server_config(redis_server.url(), client_name="forked")
    conn = dedicated(config, "fork")
    parent_id = conn.client_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the ids its connections use, then leave at once
        try:
            ids = f"{dedicated(config, 'fork').client_id()} {conn.client_id()}"
            os.write(write, ids.encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            child_ids = [int(i) for i in pipe.read().split()]
        os.waitpid(pid, 0)
        assert len(child_ids) == 2
        assert parent_id not in child_ids
        assert conn.client_id() == parent_id
        assert conn.call("ECHO", "still mine") == b"still mine"
    finally:
        conn.close()


def test_connections_of_finished_loops_are_closed_and_the_loops_freed(
    redis_server: RedisServer, redis_client: Any
) -> None:
    config = server_config(redis_server.url(), client_name="per-loop")
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def use() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        conn = adedicated(config, "per-loop")
        await conn.subscribe("x")
        await conn.ping()

    def named() -> int:
        return sum(1 for c in redis_client.client_list() if c["name"] == "per-loop")

    for _ in range(5):
        asyncio.run(use())
    deadline = time.monotonic() + 3
    while named() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert named() == 0
    gc.collect()
    assert [ref for ref in loops if ref() is not None] == []


@pytest.mark.parametrize("api", APIS)
def test_get_message_with_no_wait_returns_a_message_already_received(
    open_dedicated: Callable[..., Face], redis_client: Any, api: str
) -> None:
    conn = open_dedicated(api)
    conn.subscribe("c")
    assert conn.get_message(0) is None
    redis_client.publish("c", "here")
    time.sleep(0.2)  # in the socket's buffer by now
    received = None
    for _ in range(3):  # the async face gives the loop one iteration per call
        received = received or conn.get_message(0)
    assert received == Message("message", b"c", b"here")


@pytest.fixture(scope="module")
def tls_node() -> Iterator[tuple[Node, Tls]]:
    """A TLS-only redis-server requiring the test ACL user."""
    with tempfile.TemporaryDirectory(prefix="djredis-tls-") as directory:
        tls = Tls.create(Path(directory))
        node = Node(tls=tls).start()
        yield node, tls
        node.stop()


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_tls_and_acl(tls_node: tuple[Node, Tls], api: str) -> None:
    node, tls = tls_node
    location = f"rediss://{USERNAME}:{PASSWORD}@127.0.0.1:{node.port}/0"
    config = server_config(location, ssl_ca_certs=str(tls.ca), SOCKET_TIMEOUT=SOCKET_TIMEOUT)
    conn = open_face(config, api, "tls")
    publisher = open_face(config, api, "tls-publisher")
    try:
        conn.subscribe("secure")
        assert publisher.call("PUBLISH", "secure", "hi") == 1
        assert conn.get_message(1.0) == Message("message", b"secure", b"hi")
        assert conn.get_message(2 * SOCKET_TIMEOUT) is None
        assert publisher.call("BLPOP", "nothing", 1, block=1) is None
    finally:
        conn.close()
        publisher.close()
