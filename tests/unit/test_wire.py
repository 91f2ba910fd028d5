"""djredis's own connections: RESP parsing without hiredis, the sync pool, the handshake."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis.connection import BlockingConnectionPool, PythonRespSerializer
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from djredis._config.options import parse_connection_settings
from djredis._io.pool import BlockingPool
from djredis._io.resp import PythonReader, ReplyError, pack, python_pack
from tests._servers import RedisServer

REPLIES = (
    b"+OK\r\n"
    b"-WRONGTYPE Operation against a key\r\n"
    b":-42\r\n"
    b"$5\r\nhello\r\n"
    b"$-1\r\n"
    b"$0\r\n\r\n"
    b"*3\r\n:1\r\n$3\r\nabc\r\n*1\r\n-ERR nested\r\n"
    b"*-1\r\n"
    b"*0\r\n"
)


def parse_all(reader: Any, chunks: list[bytes]) -> list[Any]:
    replies = []
    for chunk in chunks:
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            replies.append(reply)
    return replies


def normalise(reply: Any) -> Any:
    if isinstance(reply, list):
        return [normalise(r) for r in reply]
    if isinstance(reply, Exception):
        return ("error", str(reply))
    return reply


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 1000])
def test_python_reader_parses_every_reply_type_however_the_bytes_arrive(chunk_size: int) -> None:
    chunks = [REPLIES[i : i + chunk_size] for i in range(0, len(REPLIES), chunk_size)]
    replies = parse_all(PythonReader(), chunks)
    assert isinstance(replies[1], ReplyError)
    assert normalise(replies) == [
        b"OK",
        ("error", "WRONGTYPE Operation against a key"),
        -42,
        b"hello",
        None,
        b"",
        [1, b"abc", [("error", "ERR nested")]],
        None,
        [],
    ]


# What a command's arguments can be: what djredis's operations send.
ARGUMENT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=50),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)


def redis_py_pack(args: tuple[Any, ...]) -> bytes:
    """What redis-py's own pure-Python serializer writes for ``args``."""
    encoder = Encoder("utf-8", "strict", False)
    return b"".join(PythonRespSerializer(6000, encoder.encode).pack(*args))


# redis-py splits a command name with spaces ("CLIENT SETNAME") into words; djredis's
# operations name each word as its own argument, so names here have none.
COMMAND = st.sampled_from(["GET", "SET", "MGET", "EVALSHA", "CLIENT"])


@given(COMMAND, st.lists(ARGUMENT, max_size=8))
def test_both_packers_write_what_redis_py_writes(name: str, arguments: list[Any]) -> None:
    args = (name, *arguments)
    expected = redis_py_pack(args)
    assert python_pack(args) == expected
    assert pack(args) == expected


def test_packers_refuse_a_bool_rather_than_guess() -> None:
    with pytest.raises(TypeError, match="bool"):
        python_pack(("SET", "k", True))


def pool_for(server: RedisServer, **options: Any) -> BlockingPool:
    settings = parse_connection_settings(server.url(2), options, setting="test")
    return BlockingPool(settings.primary)


def test_pool_reuses_one_connection_for_sequential_commands(
    redis_server: RedisServer, redis_client: Any
) -> None:
    pool = pool_for(redis_server, client_name="djredis-test")
    for i in range(20):
        conn = pool.acquire()
        assert conn.request([("SET", "k", i), ("GET", "k")]) == [b"OK", str(i).encode()]
        pool.release(conn)
    named = [c for c in redis_client.client_list() if c["name"] == "djredis-test"]
    assert len(named) == 1
    assert named[0]["db"] == "2"
    pool.disconnect()


def test_pool_connections_are_per_thread_and_counted(redis_server: RedisServer) -> None:
    pool = pool_for(redis_server, MAX_CONNECTIONS=2)
    first, second = pool.acquire(), pool.acquire()
    with pytest.raises(RedisConnectionError, match="Too many connections"):
        pool.acquire()
    pool.release(first)
    assert pool.acquire() is first
    pool.release(first)
    pool.release(second)
    pool.disconnect()


def test_blocking_pool_waits_for_a_free_connection(redis_server: RedisServer) -> None:
    pool = pool_for(
        redis_server,
        MAX_CONNECTIONS=1,
        CONNECTION_POOL_CLASS=BlockingConnectionPool,
        CONNECTION_POOL_KWARGS={"timeout": 5},
    )
    held = pool.acquire()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    waiter.join(0.2)
    assert got == []  # still waiting
    pool.release(held)
    waiter.join(5)
    assert got == [held]
    pool.release(held)
    pool.disconnect()


def test_wrong_password_is_an_authentication_error(redis_server: RedisServer) -> None:
    with pytest.raises(AuthenticationError):
        pool_for(redis_server, PASSWORD="not-the-password").acquire()


def test_a_forked_child_opens_its_own_connection(
    redis_server: RedisServer, redis_client: Any
) -> None:
    pool = pool_for(redis_server)
    conn = pool.acquire()
    conn.request([("SET", "parent", 1)])
    pool.release(conn)
    pid = os.fork()
    if pid == 0:
        child = pool.acquire()
        ok = child is not conn and child.request([("GET", "parent")]) == [b"1"]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    again = pool.acquire()
    assert again is conn
    assert again.request([("GET", "parent")]) == [b"1"]
    pool.release(again)
    pool.disconnect()
