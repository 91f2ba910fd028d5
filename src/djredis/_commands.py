"""Describe Redis I/O as data, so each operation is written once for sync and async.

An operation is a generator: it yields the command(s) it needs (``Call``, ``Batch``,
``Eval`` or ``Primaries``), receives each reply, and returns its result. A *runner* does
the I/O through a ``Topology`` (one server, a primary with replicas, Sentinel, Cluster),
which decides where each command goes: the sync runner over redis-py's pooled
connections, the async one over the running loop's multiplexed connections. Replies are
what Redis sent (operations normalise them with ``bool``/``int``), so both runners feed an
operation the same values. Server errors (``ResponseError``) are thrown back into the
generator, which may handle them (e.g. turn ``RENAME``'s "no such key" into ``ValueError``)
or let them surface; connection and timeout errors go to the component's ``ErrorPolicy``
instead.

What an operation must do so that it works on every topology:

- name the key of every command as its first argument (``GET key``), or list the keys of a
  script in ``Eval.keys``; in Redis Cluster the key's hash slot picks the node;
- multi-key commands (``MGET``, ``MSET``, ``DEL``, ``UNLINK``, ``EXISTS``, ``TOUCH``, named
  in upper case) may name keys of any slot: Cluster splits them by slot and merges the
  replies, in order;
- a script over independent keys passes one value per key in ``Eval.per_key`` and returns a
  count (Cluster splits it by slot and adds the counts); any other script keeps its keys in
  one slot;
- per-server commands without a key (``SCAN``, ``FLUSHDB``) run once per server returned by
  ``yield Primaries()``, each as ``Call(args, node=server)``.
"""

from __future__ import annotations

import abc
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from ._errors import CONNECTION_ERRORS, CommandNotSent, ErrorPolicy
from ._loops import LoopState, loop_state
from ._multiplex import MultiplexedConnection, error_from_reply
from ._resp import ERROR_TYPES
from ._scripts import LuaScript
from ._wire import eval_fallback, wire

if TYPE_CHECKING:
    pass

__all__ = [
    "ATTEMPT_ERRORS",
    "Batch",
    "Call",
    "Command",
    "Eval",
    "Operation",
    "Primaries",
    "Topology",
    "TopologyError",
    "execute_async",
    "run_async",
    "run_sync",
]

T = TypeVar("T")

# Everything a topology inspects after an attempt, to retry elsewhere or give up.
ATTEMPT_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, ResponseError)


@dataclass(slots=True)
class Call:
    """One Redis command; ``write=False`` lets it go to a read replica.

    ``node`` (a server from ``Primaries``) runs a keyless command on that server.
    """

    args: tuple[Any, ...]
    write: bool = True
    node: Any = None


@dataclass(slots=True)
class Batch:
    """Several commands in one round trip, optionally as one MULTI/EXEC transaction.

    A transaction's commands must share one hash slot (Redis Cluster runs it on one node).
    """

    calls: tuple[tuple[Any, ...], ...]
    write: bool = True
    transaction: bool = False


@dataclass(slots=True)
class Eval:
    """A Lua script from ``djredis/lua``, by SHA (EVAL once if the server lacks it).

    The script receives ``KEYS = keys`` and ``ARGV = (*args, *per_key)``. ``per_key`` (one
    value per key) declares the keys independent: Redis Cluster then runs the script once
    per hash slot, with that slot's keys and values, and adds up the integer replies.
    """

    script: LuaScript
    keys: tuple[Any, ...]
    args: tuple[Any, ...] = ()
    write: bool = True
    per_key: tuple[Any, ...] = ()


@dataclass(slots=True)
class Primaries:
    """Ask for the primary servers, for commands that run on each (``SCAN``, ``FLUSHDB``).

    The reply is a tuple of opaque server handles to pass as ``Call(..., node=server)``.
    """


Command = Call | Batch | Eval | Primaries
Operation = Generator[Command, Any, T]


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


async def execute_async(conn: MultiplexedConnection, command: Call | Batch | Eval) -> Any:
    """Send one command description over this loop's multiplexed connection.

    Raises ``CommandNotSent`` when Redis surely did not get the command (the connection
    failed first), so that the caller may apply ``may_resend``.
    """
    if not conn.connected:
        await conn.ensure_connected()
    if type(command) is Call:
        return await conn.send(command.args)
    if type(command) is Eval:
        try:
            return await conn.send(wire(command)[0])
        except NoScriptError:
            return await conn.send(eval_fallback(command)[0])
    if type(command) is not Batch:
        raise TypeError(f"not a djredis command: {command!r}")
    futures = [conn.send(args) for args in wire(command)]  # MULTI/EXEC added for transactions
    replies: list[Any] = []
    failure: BaseException | None = None
    for future in futures:  # every reply is collected, so no exception goes unretrieved
        try:
            replies.append(await future)
        except CONNECTION_ERRORS as exc:
            # One write carries the whole batch: if any of it was sent, it is not resendable.
            if failure is None or isinstance(failure, CommandNotSent):
                failure = exc
            replies.append(exc)
        except ResponseError as exc:
            replies.append(exc)
    if failure is not None:
        raise failure
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    if command.transaction:
        executed: list[Any] = replies[-1]
        for reply in executed:
            if isinstance(reply, ERROR_TYPES):
                raise error_from_reply(reply)
        return executed
    return replies


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
