"""A server at its ``maxclients`` limit: one clear error, the same on both APIs.

Redis writes "-ERR max number of clients reached" on a connection it accepts beyond the
limit and closes it without reading anything. Whether that refusal reaches the client
before its handshake, before its first command or as the reply to it is a race; whichever
way it goes, the caller sees ``MaxClientsReached`` (redis-py's ``MaxClientsReachedError``
and ``ConnectionError``, and ``CommandNotSent``: nothing ran) with the same message.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.exceptions
from redis.exceptions import ConnectionError as RedisConnectionError

from djredis._config.options import parse_connection_settings
from djredis._core.commands import Call
from djredis._core.errors import CommandNotSent, MaxClientsReached
from djredis._io.loops import loop_state
from djredis._routing.base import send_async, send_sync
from djredis.cache import RedisCache
from tests._servers import RedisServer

LIMIT = 2
ATTEMPTS = 5  # the race between refusal and first command differs from run to run


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--maxclients", str(LIMIT))).start()
    yield server
    server.stop()


@pytest.fixture
def full(server: RedisServer) -> Iterator[list[socket.socket]]:
    """Hold every client slot of ``server`` (each answered a PING, so it counts)."""
    held: list[socket.socket] = []
    deadline = time.monotonic() + 5
    try:
        while len(held) < LIMIT:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"PING\r\n")
            if sock.recv(64) == b"+PONG\r\n":
                held.append(sock)
                continue
            # Refused: a slot the previous test closed is not freed yet; poll for it.
            sock.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server never freed its {LIMIT} slots")
            time.sleep(0.01)
        yield held
    finally:
        for sock in held:
            sock.close()


def _attempt(api: str, location: str, options: dict[str, Any]) -> BaseException | None:
    """Run one get on a fresh cache (and, async, a fresh loop: a fresh connection)."""
    cache = RedisCache(
        location, {"OPTIONS": {"SOCKET_TIMEOUT": 2, "CLOSE_CONNECTION": True, **options}}
    )

    async def aget() -> None:
        try:
            await cache.aget("k")
        finally:
            await cache.aclose()

    try:
        if api == "sync":
            cache.get("k")
        else:
            asyncio.run(aget())
    except Exception as exc:
        return exc
    finally:
        cache.close()
    return None


# db 0 without a client name sends no handshake: the refusal meets the first command.
HANDSHAKES = [
    pytest.param(0, {}, id="no-handshake"),
    pytest.param(3, {}, id="select"),
    pytest.param(0, {"client_name": "web"}, id="setname"),
]


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize(("db", "options"), HANDSHAKES)
def test_full_server_raises_max_clients_reached_naming_it(
    server: RedisServer, full: list[socket.socket], api: str, db: int, options: dict[str, Any]
) -> None:
    expected = (
        f"max number of clients reached: 127.0.0.1:{server.port}/{db} refused the "
        "connection (its maxclients limit); nothing was run"
    )
    for _ in range(ATTEMPTS):
        error = _attempt(api, server.url(db), options)
        assert type(error) is MaxClientsReached, repr(error)
        assert str(error) == expected
        assert isinstance(error, (RedisConnectionError, CommandNotSent))
        redis_py_class = getattr(redis.exceptions, "MaxClientsReachedError", None)
        if redis_py_class is not None:  # redis-py >= 6
            assert isinstance(error, redis_py_class)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_full_server_is_a_miss_with_ignore_exceptions(
    server: RedisServer, full: list[socket.socket], api: str
) -> None:
    assert _attempt(api, server.url(), {"IGNORE_EXCEPTIONS": True}) is None


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_freed_slot_is_used_once_the_server_frees_it(
    server: RedisServer, full: list[socket.socket], api: str
) -> None:
    """The refused connection leaves nothing stale behind: once a slot is free, the same
    cache gets it (polled: the server frees a slot when it reads the close)."""
    cache = RedisCache(server.url(), {"OPTIONS": {"SOCKET_TIMEOUT": 2, "CLOSE_CONNECTION": True}})

    async def outcomes() -> list[Any]:
        seen: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while loop.time() < deadline:
            try:
                seen.append(await cache.aget("k", "default"))
            except MaxClientsReached as exc:
                seen.append(type(exc))
            if seen[-1] == "default":
                break
            if len(seen) == 1:
                full.pop().close()
            await asyncio.sleep(0.01)
        await cache.aclose()
        return seen

    def sync_outcomes() -> list[Any]:
        seen: list[Any] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                seen.append(cache.get("k", "default"))
            except MaxClientsReached as exc:
                seen.append(type(exc))
            if seen[-1] == "default":
                break
            if len(seen) == 1:
                full.pop().close()
            time.sleep(0.01)
        return seen

    try:
        seen = asyncio.run(outcomes()) if api == "async" else sync_outcomes()
    finally:
        cache.close()
    assert seen[0] is MaxClientsReached
    assert seen[-1] == "default"
    assert set(seen[:-1]) == {MaxClientsReached}


@pytest.fixture(scope="module")
def roomy_server() -> Iterator[RedisServer]:
    """A server without a low maxclients."""
    server = RedisServer().start()
    yield server
    server.stop()


SPOOF = "redis.call('INCR', KEYS[1]) return redis.error_reply('ERR max number of clients reached')"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_the_refusal_text_from_a_script_that_wrote_is_not_resent(
    roomy_server: RedisServer, api: str
) -> None:
    """Only the first reply on a new socket is a refusal; the same words later (a script
    returning them after a write) must not make the write look unsent and go out twice."""
    server = roomy_server
    config = parse_connection_settings(server.url(5), {}, setting="TEST").primary
    command = Call(("EVAL", SPOOF, 1, "spoof"))
    direct = server.client(db=5)
    direct.delete("spoof")

    async def run_async() -> Any:
        state = loop_state()
        try:
            await send_async(state, config, Call(("PING",)))  # the socket has answered
            return await send_async(state, config, command)
        finally:
            await state.aclose()

    def run_sync() -> Any:
        send_sync(config, Call(("PING",)))  # the pooled socket has answered
        return send_sync(config, command)

    with pytest.raises(RedisConnectionError) as info:
        run_sync() if api == "sync" else asyncio.run(run_async())
    assert not isinstance(info.value, CommandNotSent), repr(info.value)
    assert direct.get("spoof") == b"1"  # sent once
    direct.close()
