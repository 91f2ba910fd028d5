"""Log the Redis commands that take longer than a threshold: ``DJREDIS_SLOW_COMMAND_MS``.

    DJREDIS_SLOW_COMMAND_MS = 50      # settings.py ("djredis" in INSTALLED_APPS)
    djredis.slowlog.install(threshold_ms=50)   # or by hand

Each slow command is one WARNING on the ``djredis.slow`` logger naming the alias whose
operation sent it, the operation, the command's name (``GET``, ``BATCH SET``,
``EVALSHA incr``), how many keys it named, the server and the duration, never a key or a
value. Bursts are rate-limited: the first slow command of a burst is logged, the next ones
within ``window`` seconds (10) are counted and reported with the next line logged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from djredis._core import observe
from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import BurstLogger
from djredis._core.observe import Observer

__all__ = ["SlowCommandLog", "configure", "install", "uninstall"]

logger = logging.getLogger("djredis.slow")


class SlowCommandLog(Observer):
    """Log commands slower than ``threshold_ms``, at most one line per burst."""

    needs_operation = True  # to name the alias and operation

    def __init__(
        self, threshold_ms: float, *, log: logging.Logger = logger, window: float = 10.0
    ) -> None:
        self.threshold = threshold_ms / 1000
        self._burst = BurstLogger(log, window)

    def command_finished(
        self,
        token: Any,
        server: Any,
        command: Call | Batch | Eval,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        if seconds < self.threshold:
            return
        op = observe.current()
        where = f"{op.component} {op.alias!r} {op.name}" if op is not None else "djredis"
        outcome = f" ({type(error).__name__})" if error is not None else ""
        self._burst.log(
            logging.WARNING,
            "djredis: slow command %s (%d keys) on %s for %s: %.1f ms%s",
            observe.command_name(command),
            observe.key_count(command),
            server.describe() if hasattr(server, "describe") else server,
            where,
            seconds * 1000,
            outcome,
        )


_installed: SlowCommandLog | None = None


def install(threshold_ms: float, **options: Any) -> SlowCommandLog:
    """Start logging commands slower than ``threshold_ms`` (replacing any earlier log)."""
    global _installed
    uninstall()
    _installed = SlowCommandLog(threshold_ms, **options)
    observe.install(_installed)
    return _installed


def uninstall() -> None:
    """Stop logging slow commands."""
    global _installed
    if _installed is not None:
        observe.uninstall(_installed)
        _installed = None


def configure(value: Any) -> None:
    """Apply ``settings.DJREDIS_SLOW_COMMAND_MS`` (milliseconds, or None for off)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ImproperlyConfigured(
            "DJREDIS_SLOW_COMMAND_MS must be a number of milliseconds >= 0 (or None: off)."
        )
    install(value)
