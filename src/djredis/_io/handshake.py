"""Say what a new connection sends before its first command, and how TLS is set up.

Shared by djredis's own connections (the sync pool and the async multiplexed connection),
so both authenticate, select the database and name themselves the same way, from the same
redis-py keyword arguments a ``ServerConfig`` holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._core.errors import error_from_reply, is_max_clients_refusal, max_clients_reached
from djredis._io.resp import ERROR_TYPES

__all__ = ["handshake_commands", "handshake_failure", "tls_handshake_error"]


def handshake_commands(kwargs: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Return the AUTH / SELECT / CLIENT SETNAME commands a new connection must send."""
    commands: list[tuple[Any, ...]] = []
    username, password = kwargs.get("username"), kwargs.get("password")
    provider = kwargs.get("credential_provider")
    if provider is not None:
        credentials = provider.get_credentials()
        username, password = (None, credentials[0]) if len(credentials) == 1 else credentials
    if password is not None:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if kwargs.get("db"):
        commands.append(("SELECT", kwargs["db"]))
    if kwargs.get("client_name"):
        commands.append(("CLIENT", "SETNAME", kwargs["client_name"]))
    return commands


def handshake_failure(
    commands: Sequence[tuple[Any, ...]], replies: Sequence[Any], where: str
) -> Exception | None:
    """Return the error the first error reply to the handshake means, or None.

    Every connection kind words it the same: a server at its ``maxclients`` limit gives
    ``MaxClientsReached`` naming it, a refused AUTH ``AuthenticationError``, anything
    else the redis-py error for the reply (``SELECT`` of a missing database...).
    """
    for command, reply in zip(commands, replies, strict=True):
        if not isinstance(reply, ERROR_TYPES):
            continue
        if is_max_clients_refusal(reply):  # the first replies on the socket: nothing ran
            return max_clients_reached(where)
        error: Exception = error_from_reply(reply)
        if command[0] == "AUTH" and not isinstance(error, AuthenticationError):
            return AuthenticationError(str(error))
        return error
    return None


def tls_handshake_error(
    where: str, exc: BaseException, timeout: float | None
) -> RedisConnectionError | RedisTimeoutError:
    """Return the error to raise when the TLS handshake with ``where`` failed with ``exc``.

    The usual cause is a ``rediss://`` LOCATION naming a plain-text port: the server waits
    for a command and never answers the ClientHello, or answers it with a RESP error, so
    the bare ``ssl`` error ("timed out", "wrong version number") says little by itself.
    """
    hint = "is it a TLS port? rediss:// needs a server listening with tls-port"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # distinct before Python 3.11
        limit = "" if timeout is None else f" after {timeout} s (connect_timeout)"
        return RedisTimeoutError(f"TLS handshake with {where} timed out{limit}: {hint}")
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return RedisConnectionError(f"TLS handshake with {where} failed ({reason}): {hint}")
