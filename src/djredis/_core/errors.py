"""Apply one error policy at the component boundary, and log bursts of errors once.

Connection and timeout errors may become a miss or a no-op when the user asked for it
(``IGNORE_EXCEPTIONS``); server errors such as WRONGTYPE or a failing script always
surface, because they mean the code or the data is wrong, not that Redis is away.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TypeVar

from redis._parsers import BaseParser
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "CONNECTION_ERRORS",
    "BurstLogger",
    "CommandNotSent",
    "ErrorPolicy",
    "ProtocolError",
    "error_from_reply",
    "may_resend",
]

T = TypeVar("T")

CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


def error_from_reply(reply: Exception) -> ResponseError:
    """Turn an error reply into the redis-py exception its sync client would raise."""
    error: ResponseError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


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

    def __init__(self, *, ignore: bool, logger: logging.Logger, where: str) -> None:
        self.ignore = ignore
        self.where = where  # "CACHES['default']": log lines, and djredis._core.observe
        self._where = where
        self._burst = BurstLogger(logger)

    def handle(self, exc: Exception, operation: str, fallback: T) -> T:
        """Return ``fallback`` when errors are ignored (and log the burst); else re-raise."""
        if not self.ignore:
            raise exc
        self._burst.log(
            logging.WARNING,
            "djredis: %s on %s failed (%s: %s); IGNORE_EXCEPTIONS is on, so it counts as a "
            "miss/no-op",
            operation,
            self._where,
            type(exc).__name__,
            exc,
        )
        return fallback
