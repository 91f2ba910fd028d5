"""Failure tests: Redis killed, paused (SIGSTOP), restarted or misbehaving mid-traffic, and what
callers see: the resend rule, timeouts, protocol violations, cancellation.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests._servers import RedisServer


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A server that is not Redis: an HTTP server answering everything with a 400."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in conns:
        conn.close()
    listener.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A redis-server of the test module's own: its tests may stop and restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def direct(server: RedisServer) -> Iterator[Any]:
    """A plain redis-py client on the (emptied) server, to see what really happened."""
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def default_cache_server(settings: Any, server: RedisServer, direct: Any) -> RedisServer:
    """The module's server as CACHES['default'] (a djredis cache with 0.5 s timeouts)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(0),
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    return server
