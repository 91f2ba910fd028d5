"""Apply one error policy at the component boundary, and log bursts of errors once.

Connection and timeout errors may become a miss or a no-op when the user asked for it
(``IGNORE_EXCEPTIONS``); server errors such as WRONGTYPE or a failing script always
surface, because they mean the code or the data is wrong, not that Redis is away.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    from redis.exceptions import MaxClientsReachedError
except ImportError:  # redis-py < 6 raises a plain ConnectionError for it

    class MaxClientsReachedError(RedisConnectionError):  # type: ignore[no-redef]
        """redis-py 6's name for the refusal, for code written against it."""


__all__ = [
    "CONNECTION_ERRORS",
    "BurstLogger",
    "CommandNotSent",
    "ErrorPolicy",
    "MaxClientsReached",
    "MaxClientsReachedError",
    "ProtocolError",
    "error_from_reply",
    "is_max_clients_refusal",
    "max_clients_reached",
    "may_resend",
]

T = TypeVar("T")

CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


def error_from_reply(reply: Exception) -> ResponseError:
    """Turn an error reply into the redis-py exception its sync client would raise.

    The text of a ``maxclients`` refusal gives redis-py's ``MaxClientsReachedError`` (on
    every redis-py version), not ``MaxClientsReached``: only the connection, which knows it
    was the first reply on a new socket, may say that nothing ran. A script can return that
    text after writing, and such a write must not be sent again.
    """
    if is_max_clients_refusal(reply):
        return MaxClientsReachedError("max number of clients reached")  # type: ignore[return-value]
    text = str(reply)
    code = text.split(" ", 1)[0]
    found = _ERROR_CODES.get(code)
    if found is None:
        error = ResponseError(text)
    else:
        message = text[len(code) + 1 :]
        if isinstance(found, dict):
            found = found.get(message, ResponseError)
        try:
            error = found(message)
        except (ValueError, IndexError):  # "MOVED" without its slot and address: garbage
            error = ResponseError(text)
    # The code the reply starts with (ERR, MOVED...), as redis-py >= 8 sets it; on every
    # redis-py version, so that routing reads one attribute.
    error.status_code = code if _STATUS_CODE.fullmatch(code) else None
    return error


def _redis_error(name: str, fallback: type[Exception]) -> type[Exception]:
    """redis-py's exception class ``name``, or ``fallback`` on versions without it."""
    found: type[Exception] = getattr(redis_errors, name, fallback)
    return found


# The exception redis-py's clients raise for an error reply, by the code it starts with
# (and, for ERR, by its exact message): the same classes on redis-py 5 to 8, so code that
# catches NoScriptError or ReadOnlyError works the same with djredis's connections.
_ERROR_CODES: dict[str, Any] = {
    "ERR": {
        "invalid password": AuthenticationError,
        "wrong number of arguments for 'auth' command": (
            redis_errors.AuthenticationWrongNumberOfArgsError
        ),
        "wrong number of arguments for 'AUTH' command": (
            redis_errors.AuthenticationWrongNumberOfArgsError
        ),
        "Error loading the extension. Please check the server logs.": redis_errors.ModuleError,
        "Error unloading module: no such module with that name": redis_errors.ModuleError,
        "Error unloading module: operation not possible.": redis_errors.ModuleError,
        "Error unloading module: the module exports one or more module-side data types, "
        "can't unload": redis_errors.ModuleError,
        "AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?": AuthenticationError,
        "Client sent AUTH, but no password is set": AuthenticationError,
        "problem with LDAP service": _redis_error(
            "ExternalAuthProviderError", RedisConnectionError
        ),
    },
    "OOM": redis_errors.OutOfMemoryError,
    "WRONGPASS": AuthenticationError,
    "EXECABORT": redis_errors.ExecAbortError,
    "LOADING": redis_errors.BusyLoadingError,
    "NOSCRIPT": redis_errors.NoScriptError,
    "READONLY": redis_errors.ReadOnlyError,
    "NOAUTH": AuthenticationError,
    "NOPERM": redis_errors.NoPermissionError,
    "ASK": redis_errors.AskError,
    "TRYAGAIN": redis_errors.TryAgainError,
    "MOVED": redis_errors.MovedError,
    "CLUSTERDOWN": redis_errors.ClusterDownError,
    "CROSSSLOT": redis_errors.ClusterCrossSlotError,
    "MASTERDOWN": redis_errors.MasterDownError,
}

# What redis-py 8 takes for an error code (ERR, WRONGTYPE, module codes like SEARCH_SYNTAX),
# so that a free-form message ("Syntax error at offset 3") is not given one.
_STATUS_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def is_max_clients_refusal(reply: object) -> bool:
    """Whether ``reply`` (an error reply object) is a server's ``maxclients`` refusal."""
    return isinstance(reply, Exception) and str(reply).startswith(_MAX_CLIENTS)


class ProtocolError(RedisConnectionError):
    """The server broke the RESP protocol (a malformed, unsolicited or RESP3 reply).

    The connection it happened on is discarded: its place in the reply stream is unknown.
    It is a connection error, so ``IGNORE_EXCEPTIONS`` turns it into a miss; the message
    names the server.
    """


class CommandNotSent(RedisConnectionError):
    """The connection failed before the command was written, so Redis never saw it.

    Such a command may be sent again on another connection, whatever it does.
    """


# What Redis writes to a connection it accepts beyond ``maxclients``, before closing it.
_MAX_CLIENTS = "ERR max number of clients reached"


class MaxClientsReached(CommandNotSent, MaxClientsReachedError):
    """The server refused the connection: its ``maxclients`` limit is reached.

    Redis writes the refusal on a new connection and closes it without reading anything,
    so no command sent on it ran: like ``CommandNotSent``, it may be sent again (on a new
    connection, which may find a free slot). It is also redis-py's ``MaxClientsReachedError``
    (redis-py >= 6) and a ``ConnectionError``, so ``IGNORE_EXCEPTIONS`` covers it. The sync
    and async APIs raise it with the same message, however the refusal and the command
    crossed on the wire.
    """


def max_clients_reached(where: str | None) -> MaxClientsReached:
    """Return the error for a connection ``where`` refused at its ``maxclients`` limit."""
    server = f"{where} refused the connection" if where else "the server refused the connection"
    return MaxClientsReached(
        f"max number of clients reached: {server} (its maxclients limit); nothing was run"
    )


def may_resend(exc: BaseException, *, write: bool, retry_on_timeout: bool = False) -> bool:
    """Whether a command that failed with ``exc`` may be sent again.

    Only when it surely did not reach Redis (``CommandNotSent``), or when it only reads:
    a write whose reply was lost may have been applied, and applying it twice (``INCR``,
    a ``RENAME``, a session save) is worse than reporting the failure.
    """
    if isinstance(exc, AuthenticationError):
        return False  # the same credentials fail the same way on a new connection
    if isinstance(exc, CommandNotSent):
        return True
    if write:
        return False
    if isinstance(exc, RedisTimeoutError):
        return retry_on_timeout
    return isinstance(exc, RedisConnectionError) and not isinstance(exc, ProtocolError)


# How long one logged error speaks for the ones that follow it.
BURST_SECONDS = 10.0


class BurstLogger:
    """Log the first event of a burst and count the rest until the burst is over."""

    def __init__(self, logger: logging.Logger, window: float = BURST_SECONDS) -> None:
        self._logger = logger
        self._window = window
        self._lock = threading.Lock()
        self._last = -window
        self._suppressed = 0

    def log(
        self, level: int, message: str, *args: object, exc_info: BaseException | None = None
    ) -> bool:
        """Log unless another event was logged less than ``window`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._window:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += " (%d similar events in the previous burst were not logged)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True


class ErrorPolicy:
    """Decide what a connection or timeout error becomes: an exception, or a fallback."""

    def __init__(
        self, *, ignore: bool, logger: logging.Logger, where: str, log_ignored: bool = True
    ) -> None:
        self.ignore = ignore
        self.where = where  # "CACHES['default']": log lines, and djredis._core.observe
        self._where = where
        self._burst = BurstLogger(logger)
        self._log_ignored = log_ignored

    def handle(self, exc: Exception, operation: str, fallback: T) -> T:
        """Return ``fallback`` when errors are ignored (and log the burst); else re-raise."""
        if not self.ignore:
            raise exc
        if self._log_ignored:
            self._log(exc, operation)
        return fallback

    def _log(self, exc: Exception, operation: str) -> None:
        self._burst.log(
            logging.WARNING,
            "djredis: %s on %s failed (%s: %s); IGNORE_EXCEPTIONS is on, so it counts as a "
            "miss/no-op",
            operation,
            self._where,
            type(exc).__name__,
            exc,
        )
