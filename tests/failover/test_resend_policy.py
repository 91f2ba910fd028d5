"""The one resend rule, applied by the router for every topology and both APIs: how many
times a command is sent, and how long the configured backoff waits between the sends.

The "server" here accepts connections and closes each one as soon as a command arrives:
Redis may or may not have run that command, so a read is sent again (up to ``retries``
times, after the backoff) and a write never is. Counting the accepted connections counts
the sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from redis.backoff import ConstantBackoff
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from djredis.cache import RedisCache
from tests._servers import RedisServer


class ClosingServer:
    """Accept connections; answer a client's handshake (redis-py's ``CLIENT SETINFO``), and
    close the connection as soon as any other command arrives."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn, contextlib.suppress(OSError):
                conn.settimeout(2)
                while data := conn.recv(65536):
                    commands = data.count(b"*")
                    handshake = data.count(b"SETINFO")
                    if commands > handshake:
                        break  # a command Redis may have run: the reply is lost
                    conn.sendall(b"+OK\r\n" * handshake)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the serving thread's accept()
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(2)


@pytest.fixture
def closing_server() -> Iterator[ClosingServer]:
    server = ClosingServer()
    yield server
    server.close()


def make_cache(server: ClosingServer, retries: int, pause: float) -> RedisCache:
    return RedisCache(
        f"redis://127.0.0.1:{server.port}/0",
        {"OPTIONS": {"retry": Retry(ConstantBackoff(pause), retries), "SOCKET_TIMEOUT": 2}},
    )


def _run(api: str, cache: RedisCache, method: str, *args: object) -> None:
    if api == "sync":
        getattr(cache, method)(*args)
    else:
        asyncio.run(getattr(cache, f"a{method}")(*args))


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_read_whose_reply_is_lost_is_sent_retries_more_times_after_the_backoff(
    closing_server: ClosingServer, api: str
) -> None:
    cache = make_cache(closing_server, retries=3, pause=0.15)
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        _run(api, cache, "get", "k")
    elapsed = time.monotonic() - started
    assert closing_server.accepted == 4
    assert 0.45 <= elapsed < 2.0


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_write_whose_reply_is_lost_is_sent_once_whatever_the_retries(
    closing_server: ClosingServer, api: str
) -> None:
    cache = make_cache(closing_server, retries=3, pause=0.15)
    with pytest.raises(RedisConnectionError):
        _run(api, cache, "incr", "k")
    assert closing_server.accepted == 1


@pytest.mark.parametrize("api", ["sync", "async"])
def test_retries_zero_sends_a_read_once(closing_server: ClosingServer, api: str) -> None:
    cache = make_cache(closing_server, retries=0, pause=0.0)
    with pytest.raises(RedisConnectionError):
        _run(api, cache, "get", "k")
    assert closing_server.accepted == 1


def test_the_async_client_for_user_code_follows_the_configured_retries(
    closing_server: ClosingServer,
) -> None:
    from django.test import override_settings

    from djredis import get_async_redis_connection

    caches = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closing_server.port}/0",
            "OPTIONS": {"retry": Retry(ConstantBackoff(0.05), 2), "SOCKET_TIMEOUT": 2},
        }
    }

    async def get() -> None:
        await get_async_redis_connection().get("k")

    with override_settings(CACHES=caches), pytest.raises(RedisConnectionError):
        asyncio.run(get())
    # A sync Retry object handed to redis.asyncio runs but never retries: 1 connection.
    assert closing_server.accepted == 3


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    server = RedisServer(password="right").start()
    yield server
    server.stop()


def _connections_received(server: RedisServer) -> int:
    client = server.client()
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_wrong_password_is_tried_on_one_connection_only(
    password_server: RedisServer, api: str
) -> None:
    cache = RedisCache(f"redis://:wrong@127.0.0.1:{password_server.port}/0", {})
    before = _connections_received(password_server)
    with pytest.raises(AuthenticationError):
        _run(api, cache, "get", "k")
    # The second connection is the one that counted them.
    assert _connections_received(password_server) - before == 2
