"""Reads on replicas: which ones failed lately, and which errors mean "ask another server".

A replica that fails (connection error, timeout, ``LOADING``, ``MASTERDOWN``) sits out
``REPLICA_RETRY_AFTER`` seconds and the read is answered by the primary instead, so a
replica going away costs one failed attempt, not an error.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from redis.exceptions import ResponseError

from djredis._config.server import ServerConfig
from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import CONNECTION_ERRORS, BurstLogger
from djredis._routing.base import ATTEMPT_ERRORS, Route

__all__ = ["REPLICA_RETRY_AFTER", "ReplicaHealth", "primary_demoted", "replica_unavailable"]

logger = logging.getLogger("djredis.topology")

# How long a replica that failed is left out of the read rotation.
REPLICA_RETRY_AFTER = 5.0


def replica_unavailable(exc: BaseException) -> bool:
    """Whether a replica's error means "ask someone else" rather than a bad command."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True  # includes LOADING (BusyLoadingError)
    return isinstance(exc, ResponseError) and _error_code(exc) == "MASTERDOWN"


def primary_demoted(exc: ResponseError) -> bool:
    """Whether a write failed because the server is no longer a primary."""
    return _error_code(exc) == "READONLY"


def _error_code(exc: ResponseError) -> str:
    # redis-py strips the code from the message of the errors it knows (ReadOnlyError...)
    # and keeps it in ``status_code`` (redis-py >= 8) or only in the class name.
    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    name = type(exc).__name__
    for known, cls_name in (("READONLY", "ReadOnlyError"), ("MASTERDOWN", "MasterDownError")):
        if name == cls_name:
            return known
    return str(exc).split(" ", 1)[0]


class ReplicaHealth:
    """Remember which replicas failed recently, and pick a healthy one."""

    def __init__(self) -> None:
        self._down: dict[ServerConfig, float] = {}
        self._burst = BurstLogger(logger)

    def pick(self, replicas: tuple[ServerConfig, ...]) -> ServerConfig | None:
        if not replicas:
            return None
        if self._down:
            now = time.monotonic()
            replicas = tuple(r for r in replicas if self._down.get(r, 0.0) <= now)
            if not replicas:
                return None
        return random.choice(replicas)

    def read(
        self, replicas: tuple[ServerConfig, ...], command: Call | Batch | Eval
    ) -> Route[tuple[bool, Any]]:
        """Try ``command`` on a healthy replica: ``(True, reply)``, or ``(False, None)`` when
        there is none or it is unavailable (then it sits out ``REPLICA_RETRY_AFTER``)."""
        replica = self.pick(replicas)
        if replica is None:
            return False, None
        try:
            return True, (yield replica, command)
        except ATTEMPT_ERRORS as exc:
            if not replica_unavailable(exc):
                raise
            self.failed(replica, exc)
            return False, None

    def failed(self, replica: ServerConfig, exc: BaseException) -> None:
        self._down[replica] = time.monotonic() + REPLICA_RETRY_AFTER
        self._burst.log(
            logging.WARNING,
            "djredis: replica %s failed (%s: %s); reads go to the primary for %.0f s",
            replica.describe(),
            type(exc).__name__,
            exc,
            REPLICA_RETRY_AFTER,
        )
