"""Open the socket of one of djredis's blocking connections (the pool's and the dedicated
ones): TCP or a Unix socket, keepalive, TLS, all within ``connect_timeout``."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.errors import CommandNotSent
from djredis._io.protocol import tls_handshake_error

__all__ = ["WOULD_BLOCK", "open_socket"]

# What a non-blocking socket raises when it has nothing to give or cannot take more yet.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


def open_socket(
    config: ServerConfig, kwargs: Mapping[str, Any], deadline: float | None
) -> tuple[socket.socket, bool]:
    """Open a non-blocking socket to ``config``'s server (TLS wrapped when it asks for it),
    by ``deadline``; return it and whether it is TLS. Nothing is written on it yet.

    A refused or broken connection raises ``CommandNotSent``, a timeout ``TimeoutError``,
    a failed TLS handshake the error ``tls_handshake_error`` words.
    """
    timeout = config.connect_timeout
    where = config.describe()
    try:
        if config.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                sock.connect(kwargs["path"])
            except OSError:
                sock.close()
                raise
        else:
            host = kwargs.get("host", "localhost")
            sock = socket.create_connection((host, kwargs.get("port", 6379)), _remaining(deadline))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kwargs.get("socket_keepalive", True):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                options = kwargs.get("socket_keepalive_options")
                for option, value in dict(options or {}).items():
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except TimeoutError as exc:
        raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
    except OSError as exc:
        raise CommandNotSent(f"Error connecting to {where}: {exc}") from exc
    tls = config.transport == "tls"
    if tls:
        try:
            sock.settimeout(_remaining(deadline))
            context = config.ssl_context
            assert context is not None  # a tls transport has one
            sock = context.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
            with contextlib.suppress(OSError):
                sock.close()
            raise tls_handshake_error(where, exc, timeout) from exc
    sock.settimeout(0.0)
    return sock, tls
