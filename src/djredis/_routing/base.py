"""Route command descriptions to servers: the ``Topology`` interface and the two runners.

A runner drives an operation (see ``djredis._core.commands``) to completion: the sync one
with blocking I/O, the async one on the running loop's multiplexed connections. Both ask a
``Topology`` where each command goes, throw server errors back into the operation, and hand
connection and timeout errors to the component's ``ErrorPolicy``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from djredis._config.server import ServerConfig
from djredis._core.commands import Command, Operation
from djredis._core.errors import CONNECTION_ERRORS, ErrorPolicy
from djredis._io.loops import LoopState, loop_state

__all__ = [
    "ATTEMPT_ERRORS",
    "Topology",
    "TopologyError",
    "close_multiplexed",
    "run_async",
    "run_sync",
]

T = TypeVar("T")

# Everything a topology inspects after an attempt, to retry elsewhere or give up.
ATTEMPT_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, ResponseError)


class TopologyError(RedisConnectionError):
    """A server no longer plays the role djredis addressed it in (a demoted primary's
    ``READONLY``, ``CLUSTERDOWN``, a slot still migrating after retries).

    It is a connection error, not a server error: the deployment is in transition, so
    ``IGNORE_EXCEPTIONS`` turns it into a miss like any other unavailability.
    """


class Topology(abc.ABC):
    """Where commands go: one server, a primary with replicas, Sentinel, or Cluster.

    Connection and timeout errors leave ``execute``/``aexecute`` as redis-py's
    ``ConnectionError``/``TimeoutError`` (a topology in transition, e.g. ``CLUSTERDOWN``
    or a demoted primary's ``READONLY``, counts as a connection error once the
    topology's own retries are spent); server errors as ``ResponseError``.
    """

    @abc.abstractmethod
    def execute(self, command: Command) -> Any:
        """Run one command with blocking I/O and return the reply."""

    @abc.abstractmethod
    async def aexecute(self, command: Command, state: LoopState) -> Any:
        """Run one command on the running loop's multiplexed connections."""

    @abc.abstractmethod
    def client(self, write: bool = True) -> Any:
        """Return the redis-py client user code gets (``get_redis_connection``, locks).

        It follows the topology itself (redis-py's Sentinel-managed client, RedisCluster).
        """

    def lock_client(self, key: str) -> Any:
        """Return the sync client a lock on ``key`` uses: ``client(True)``, unless building
        it already needs the servers (then one whose errors come when the lock is used, so
        that the lock's error policy applies)."""
        return self.client(True)

    @abc.abstractmethod
    def async_client(self, write: bool, state: LoopState) -> Any:
        """Return this loop's ``redis.asyncio`` client of the same kind (async locks)."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the idle pooled connections (they reconnect on next use)."""

    @abc.abstractmethod
    def close_loop(self, state: LoopState) -> None:
        """Close this loop's multiplexed connections to this topology's servers."""


def run_sync(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: Any
) -> T:
    """Drive ``operation`` to completion with blocking I/O; apply ``policy`` on errors."""
    execute = topology.execute
    try:
        command = next(operation)
        while True:
            try:
                reply = execute(command)
            except ResponseError as exc:
                command = operation.throw(exc)
            else:
                command = operation.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except CONNECTION_ERRORS as exc:
        operation.close()
        handled: T = policy.handle(exc, name, fallback)
        return handled


async def run_async(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: Any
) -> T:
    """Drive ``operation`` to completion on the running loop's multiplexed connections."""
    state = loop_state()
    execute = topology.aexecute
    try:
        command = next(operation)
        while True:
            try:
                reply = await execute(command, state)
            except ResponseError as exc:
                command = operation.throw(exc)
            else:
                command = operation.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except CONNECTION_ERRORS as exc:
        operation.close()
        handled: T = policy.handle(exc, name, fallback)
        return handled


def close_multiplexed(state: LoopState, configs: Iterable[ServerConfig]) -> None:
    """Close this loop's multiplexed connections to ``configs``."""
    for config in configs:
        conn = state.multiplexed.pop(config, None)
        if conn is not None:
            conn.close()
