"""Route command descriptions to servers: the ``Topology`` interface, routes, and the drivers.

Everything here is written once and driven twice. An *operation* (``djredis._core.commands``)
yields commands; the runners ``run_sync``/``run_async`` drive it, asking a ``Topology``
where each command goes, throwing server errors back into the operation and handing
connection and timeout errors to the component's ``ErrorPolicy``. A topology's *route* is a
generator too: it yields ``(server, command)`` attempts (a replica, then the primary; a
Sentinel, then the primary it names) and receives each reply or exception; ``drive_sync``
and ``drive_async`` run it. Each attempt goes through ``send_sync``/``send_async``, the one
place where the resend rule (``may_resend``, at most ``retries`` times, with the configured
backoff) is applied; the connections below them make one attempt each, within the timeout
rule (connect within ``connect_timeout``, every reply of a write within ``socket_timeout``).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Generator, Iterable
from typing import Any, Protocol, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from djredis._config.server import ServerConfig
from djredis._core import observe
from djredis._core.commands import Batch, Call, Command, Eval, Operation
from djredis._core.errors import CONNECTION_ERRORS, ErrorPolicy, may_resend
from djredis._io.loops import LoopState, loop_state
from djredis._io.pool import execute_on
from djredis._io.protocol import checked
from djredis._io.resp import ERROR_TYPES
from djredis._io.wire import execute_async

__all__ = [
    "ATTEMPT_ERRORS",
    "Route",
    "ServersObserver",
    "Topology",
    "TopologyError",
    "close_multiplexed",
    "drive_async",
    "drive_sync",
    "run_async",
    "run_sync",
    "send_async",
    "send_sync",
]

T = TypeVar("T")
F = TypeVar("F")

# Everything a topology inspects after an attempt, to retry elsewhere or give up.
ATTEMPT_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, ResponseError)

# A route yields attempts (run this command on this server) and receives each reply, or has
# the attempt's exception thrown in; it returns the command's result.
Attempt = tuple[ServerConfig, Call | Batch | Eval]
Route = Generator[Attempt, Any, T]


class TopologyError(RedisConnectionError):
    """A server no longer plays the role djredis addressed it in (a demoted primary's
    ``READONLY``, ``CLUSTERDOWN``, a slot still migrating after retries).

    It is a connection error, not a server error: the deployment is in transition, so
    ``IGNORE_EXCEPTIONS`` turns it into a miss like any other unavailability.
    """


class ServersObserver(Protocol):
    """Who wants to know at once when a topology's read servers change (the near-cache,
    whose invalidation listeners must follow the servers reads are filled from)."""

    def servers_changed(self, servers: tuple[ServerConfig, ...]) -> None: ...


logger = logging.getLogger("djredis.topology")


class Topology(abc.ABC):
    """Where commands go: one server, a primary with replicas, Sentinel, or Cluster.

    One object per server set per process (``connect``): every component and every cache
    alias with the same connection settings routes through it, so they all follow the
    same primary. Connection and timeout errors leave ``execute``/``aexecute`` as
    redis-py's ``ConnectionError``/``TimeoutError`` (a topology in transition, e.g.
    ``CLUSTERDOWN`` or a demoted primary's ``READONLY``, counts as a connection error once
    the topology's own retries are spent); server errors as ``ResponseError``.
    """

    def __init__(self) -> None:
        # Held weakly: a near-cache that is gone is not kept alive by its topology.
        self._observers: weakref.WeakSet[ServersObserver] = weakref.WeakSet()
        self._observers_lock = threading.Lock()

    def watch(self, observer: ServersObserver) -> None:
        """Call ``observer.servers_changed(servers)`` whenever the read servers change
        (after the new ones are in use: a read routed there from now on finds the
        observer told)."""
        with self._observers_lock:
            self._observers.add(observer)

    def _servers_changed(self, servers: tuple[ServerConfig, ...]) -> None:
        if observe.hooks is not None:
            observe.topology_changed(type(self).__name__)
        with self._observers_lock:
            observers = list(self._observers)
        for observer in observers:
            try:
                observer.servers_changed(servers)
            except Exception:  # one observer's bug must not fail the command that noticed
                logger.exception("djredis: a topology observer failed")

    def after_fork(self) -> None:
        """Reset what the parent's threads may have held (locks) and what they did for it
        (watchers); called in a forked child. Connections are per process already."""
        self._observers_lock = threading.Lock()

    @abc.abstractmethod
    def execute(self, command: Command) -> Any:
        """Run one command with blocking I/O and return the reply."""

    @abc.abstractmethod
    def aexecute(self, command: Command, state: LoopState) -> Awaitable[Any]:
        """Run one command on the running loop's multiplexed connections (an ``async def``,
        or a function returning the coroutine that does it)."""

    @abc.abstractmethod
    async def aprimary_for(
        self, key: str, state: LoopState, *, fresh: bool = False
    ) -> ServerConfig:
        """Return the primary that holds ``key`` now, for a dedicated connection (a blocking
        pop on that key); ``fresh=True`` asks the deployment again after a failure."""

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

    def read_servers(self, refresh: bool = False) -> tuple[ServerConfig, ...]:
        """Return every server that may answer this topology's reads now (the near-cache
        tracks each); ``refresh`` asks the Sentinels or reloads the slot map first.

        A topology that cannot say raises NotImplementedError: its near-cache then never
        serves locally (every read goes to Redis)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its read servers")

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the idle pooled connections (they reconnect on next use)."""

    @abc.abstractmethod
    def close_loop(self, state: LoopState) -> None:
        """Close this loop's multiplexed connections to this topology's servers."""


def run_sync(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: F
) -> T | F:
    """Drive ``operation`` to completion with blocking I/O; apply ``policy`` on errors."""
    found = observe.hooks
    if found is not None and found.operations:  # tracing or metrics on (djredis._core.observe)
        with observe.operation(policy.where, name):
            return _run_sync(topology, operation, policy, name, fallback)
    return _run_sync(topology, operation, policy, name, fallback)


def _run_sync(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: F
) -> T | F:
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
        if observe.hooks is not None:
            observe.failed(exc)
        handled: F = policy.handle(exc, name, fallback)
        return handled


def run_async(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: F
) -> Awaitable[T | F]:
    """Drive ``operation`` to completion on the running loop's multiplexed connections.

    Returns the runner's coroutine itself rather than awaiting it in one more: every
    coroutine frame between a caller and its reply costs on each of the many requests a
    loop multiplexes."""
    found = observe.hooks
    if found is not None and found.operations:
        return _observed_run_async(topology, operation, policy, name, fallback)
    return _run_async(topology, operation, policy, name, fallback)


async def _observed_run_async(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: F
) -> T | F:
    with observe.operation(policy.where, name):
        return await _run_async(topology, operation, policy, name, fallback)


async def _run_async(
    topology: Topology, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: F
) -> T | F:
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
        if observe.hooks is not None:
            observe.failed(exc)
        handled: F = policy.handle(exc, name, fallback)
        return handled


def close_multiplexed(state: LoopState, configs: Iterable[ServerConfig]) -> None:
    """Close this loop's multiplexed connections to ``configs``."""
    for config in configs:
        conn = state.multiplexed.pop(config, None)
        if conn is not None:
            conn.close()


def _resend_pause(
    server: ServerConfig, command: Call | Batch | Eval, exc: Exception, failures: int
) -> float | None:
    """Return how long to wait before sending ``command`` again after its ``failures``-th
    failure, or None when it must not be sent again (the one resend rule: ``may_resend``)."""
    if failures > server.retries or not may_resend(
        exc, write=command.write, retry_on_timeout=server.retry_on_timeout
    ):
        return None
    return float(server.backoff.compute(failures)) if server.backoff is not None else 0.0


def send_sync(server: ServerConfig, command: Call | Batch | Eval) -> Any:
    """Run ``command`` on ``server`` with blocking I/O, sending it again only when safe."""
    found = observe.hooks
    if found is None:  # tracing and metrics off: this test is all they cost
        return _send_sync(server, command)
    return observe.watch_sync(found, _send_sync, server, command)


def _send_sync(server: ServerConfig, command: Call | Batch | Eval) -> Any:
    failures = 0
    while True:
        try:
            return execute_on(server, command)
        except CONNECTION_ERRORS as exc:
            failures += 1
            pause = _resend_pause(server, command, exc, failures)
            if pause is None:
                raise
            if pause:
                time.sleep(pause)


def send_async(
    state: LoopState, server: ServerConfig, command: Call | Batch | Eval
) -> Awaitable[Any]:
    """Run ``command`` on this loop's connection to ``server``, sending it again only when
    safe (a coroutine, returned without another frame around it, as ``run_async``)."""
    found = observe.hooks
    if found is None:
        return _send_async(state, server, command)
    return observe.watch_async(found, _send_async, state, server, command)


async def _send_async(state: LoopState, server: ServerConfig, command: Call | Batch | Eval) -> Any:
    failures = 0
    while True:
        try:
            conn = state.connection(server)
            if type(command) is Call and conn.connected:
                # The common case awaits the connection's future here: a frame less.
                reply = await conn.send(command.args)
                return checked(reply) if isinstance(reply, ERROR_TYPES) else reply
            return await execute_async(conn, command)
        except CONNECTION_ERRORS as exc:
            failures += 1
            pause = _resend_pause(server, command, exc, failures)
            if pause is None:
                raise
            if pause:
                await asyncio.sleep(pause)


def drive_sync(route: Route[T]) -> T:
    """Run a route's attempts with blocking I/O; return what the route returns."""
    try:
        server, command = next(route)
        while True:
            try:
                reply = send_sync(server, command)
            except ATTEMPT_ERRORS as exc:
                server, command = route.throw(exc)
            else:
                server, command = route.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def drive_async(route: Route[T], state: LoopState) -> T:
    """Run a route's attempts on the running loop's multiplexed connections."""
    try:
        server, command = next(route)
        while True:
            try:
                reply = await send_async(state, server, command)
            except ATTEMPT_ERRORS as exc:
                server, command = route.throw(exc)
            else:
                server, command = route.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
