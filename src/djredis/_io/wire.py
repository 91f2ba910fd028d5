"""Turn a command description into the Redis commands to send, and its replies into a result.

Written once for djredis's two connection kinds: the blocking pool (``sync_pool``) and the
multiplexed asyncio connection (``multiplex``). Both send ``wire(command)`` in one write
and turn the raw replies into the operation's value the same way, so an operation receives
exactly the same values whichever API runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import CONNECTION_ERRORS, CommandNotSent, error_from_reply
from djredis._io.multiplex import MultiplexedConnection
from djredis._io.resp import ERROR_TYPES

__all__ = ["checked", "eval_fallback", "execute_async", "finish", "wire"]


def wire(command: Call | Batch | Eval) -> tuple[tuple[Any, ...], ...]:
    """Return the commands to send for ``command``, in order."""
    if type(command) is Call:
        return (command.args,)
    if type(command) is Eval:
        return (("EVALSHA", command.script.sha, len(command.keys), *_eval_tail(command)),)
    if type(command) is Batch:
        if command.transaction:
            return (("MULTI",), *command.calls, ("EXEC",))
        return tuple(command.calls)
    raise TypeError(f"not a djredis command: {command!r}")


def _eval_tail(command: Eval) -> tuple[Any, ...]:
    return (*command.keys, *command.args, *command.per_key)


def eval_fallback(command: Eval) -> tuple[tuple[Any, ...], ...]:
    """Return the EVAL that replaces an EVALSHA the server did not know (NOSCRIPT)."""
    return (("EVAL", command.script.source, len(command.keys), *_eval_tail(command)),)


def checked(reply: Any) -> Any:
    """Return the reply of one ``Call``; raise it if it is an error reply (``finish`` for
    the one command, for callers that await the connection's future themselves)."""
    if isinstance(reply, ERROR_TYPES):
        raise error_from_reply(reply)
    return reply


def finish(command: Call | Batch | Eval, replies: Sequence[Any]) -> Any:
    """Return the result of ``command`` from its raw replies; raise its first error.

    A Batch raises its first error only after every reply was read, so one bad command
    never leaves the others' replies on the connection.
    """
    if type(command) is not Batch:
        reply = replies[0]
        if isinstance(reply, ERROR_TYPES):
            raise error_from_reply(reply)
        return reply
    if command.transaction:
        for reply in replies:
            if isinstance(reply, ERROR_TYPES):
                raise error_from_reply(reply)
        executed = replies[-1]
        replies = executed if executed is not None else []
    for reply in replies:
        if isinstance(reply, ERROR_TYPES):
            raise error_from_reply(reply)
    return list(replies)


async def execute_async(conn: MultiplexedConnection, command: Call | Batch | Eval) -> Any:
    """Send one command description over this loop's multiplexed connection; its replies
    become its result exactly as on the blocking pool (``finish``).

    Raises ``CommandNotSent`` when Redis surely did not get the command (the connection
    failed first), so that the caller may apply ``may_resend``.
    """
    if not conn.connected:
        await conn.ensure_connected()
    if type(command) is Call:  # the common case, without the coroutine _replies costs
        return checked(await conn.send(command.args))
    replies = await _replies(conn, wire(command))
    try:
        return finish(command, replies)
    except NoScriptError:
        if type(command) is not Eval:
            raise
        # NOSCRIPT: Redis refused the EVALSHA without running anything, so EVAL is safe.
        return finish(command, await _replies(conn, eval_fallback(command)))


async def _replies(conn: MultiplexedConnection, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    if len(commands) == 1:
        return [await conn.send(commands[0])]
    futures = conn.send_all(commands)
    replies: list[Any] = []
    failure: BaseException | None = None
    for future in futures:  # every future is awaited, so no exception goes unretrieved
        try:
            replies.append(await future)
        except CONNECTION_ERRORS as exc:
            # One write carries them all: if any of it was sent, none is resendable.
            if failure is None or isinstance(failure, CommandNotSent):
                failure = exc
    if failure is not None:
        raise failure
    return replies
