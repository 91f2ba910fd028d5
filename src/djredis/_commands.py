"""Describe Redis I/O as data, so each operation is written once for sync and async.

An operation is a generator: it yields the command(s) it needs (``Call``, ``Batch`` or
``Eval``), receives each reply, and returns its result. A *runner* does the I/O: the sync
one over redis-py's pooled clients, the async one over the running loop's multiplexed
connection. Replies are what Redis sent (operations normalise them with ``bool``/``int``),
so both runners feed an operation the same values. Server errors
(``ResponseError``) are thrown back into the generator, which may handle them (e.g. turn
``RENAME``'s "no such key" into ``ValueError``) or let them surface; connection and timeout
errors go to the component's ``ErrorPolicy`` instead.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.client import Redis
from redis.exceptions import NoScriptError, ResponseError

from ._connections import ServerGroup
from ._errors import CONNECTION_ERRORS, ErrorPolicy
from ._loops import loop_state
from ._multiplex import MultiplexedConnection, error_from_reply
from ._resp import ERROR_TYPES
from ._scripts import LuaScript

__all__ = ["Batch", "Call", "Command", "Eval", "Operation", "run_async", "run_sync"]

T = TypeVar("T")


@dataclass(slots=True)
class Call:
    """One Redis command; ``write=False`` lets it go to a read replica."""

    args: tuple[Any, ...]
    write: bool = True


@dataclass(slots=True)
class Batch:
    """Several commands in one round trip, optionally as one MULTI/EXEC transaction."""

    calls: tuple[tuple[Any, ...], ...]
    write: bool = True
    transaction: bool = False


@dataclass(slots=True)
class Eval:
    """A Lua script from ``djredis/lua``, by SHA (EVAL once if the server lacks it)."""

    script: LuaScript
    keys: tuple[Any, ...]
    args: tuple[Any, ...] = ()
    write: bool = True


Command = Call | Batch | Eval
Operation = Generator[Command, Any, T]


def execute_sync(client: Redis, command: Command) -> Any:
    """Send one command description over a sync redis-py client and return the reply."""
    if type(command) is Call:
        return client.execute_command(*command.args)  # type: ignore[no-untyped-call]
    if type(command) is Eval:
        script = command.script
        try:
            return client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(command.keys), *command.keys, *command.args
            )
        except NoScriptError:
            return client.execute_command(  # type: ignore[no-untyped-call]
                "EVAL", script.source, len(command.keys), *command.keys, *command.args
            )
    if type(command) is not Batch:
        raise TypeError(f"not a djredis command: {command!r}")
    pipe = client.pipeline(transaction=command.transaction)
    for args in command.calls:
        pipe.execute_command(*args)  # type: ignore[no-untyped-call]
    return pipe.execute()


def run_sync(
    group: ServerGroup, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: Any
) -> T:
    """Drive ``operation`` to completion with blocking I/O; apply ``policy`` on errors."""
    try:
        command = next(operation)
        while True:
            try:
                reply = execute_sync(group.client(command.write), command)
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


async def execute_async(conn: MultiplexedConnection, command: Command) -> Any:
    """Send one command description over this loop's multiplexed connection."""
    if not conn.connected:
        await conn.ensure_connected()
    if type(command) is Call:
        return await conn.send(command.args)
    if type(command) is Eval:
        script, keys = command.script, command.keys
        try:
            return await conn.send(("EVALSHA", script.sha, len(keys), *keys, *command.args))
        except NoScriptError:
            return await conn.send(("EVAL", script.source, len(keys), *keys, *command.args))
    if type(command) is not Batch:
        raise TypeError(f"not a djredis command: {command!r}")
    calls = command.calls
    if command.transaction:
        calls = (("MULTI",), *calls, ("EXEC",))
    futures = [conn.send(args) for args in calls]
    replies: list[Any] = []
    error: BaseException | None = None
    for future in futures:  # every reply is collected, so no exception goes unretrieved
        try:
            replies.append(await future)
        except ResponseError as exc:
            error = error or exc
            replies.append(exc)
    if error is not None:
        raise error
    if command.transaction:
        executed: list[Any] = replies[-1]
        for reply in executed:
            if isinstance(reply, ERROR_TYPES):
                raise error_from_reply(reply)
        return executed
    return replies


async def run_async(
    group: ServerGroup, operation: Operation[T], policy: ErrorPolicy, name: str, fallback: Any
) -> T:
    """Drive ``operation`` to completion on the running loop's multiplexed connections."""
    state = loop_state()
    try:
        command = next(operation)
        while True:
            conn = state.connection(group.config(command.write))
            try:
                reply = await execute_async(conn, command)
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
