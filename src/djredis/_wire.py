"""Turn a command description into the Redis commands to send, and its replies into a result.

Written once for djredis's two connection kinds: the blocking pool (``_sync_pool``) and the
multiplexed asyncio connection (``_multiplex``). Both send ``wire(command)`` in one write
and hand the raw replies to ``finish(command, replies)``, so an operation receives exactly
the same values whichever API runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis._parsers import BaseParser
from redis.exceptions import ResponseError

from ._resp import ERROR_TYPES

if TYPE_CHECKING:
    from ._commands import Batch, Call, Eval

__all__ = ["error_from_reply", "eval_fallback", "finish", "wire"]


def error_from_reply(reply: Exception) -> ResponseError:
    """Turn an error reply into the redis-py exception its sync client would raise."""
    error: ResponseError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


def wire(command: Call | Batch | Eval) -> tuple[tuple[Any, ...], ...]:
    """Return the commands to send for ``command``, in order."""
    kind = type(command).__name__
    if kind == "Call":
        return (command.args,)  # type: ignore[union-attr]
    if kind == "Eval":
        script, keys = command.script, command.keys  # type: ignore[union-attr]
        tail = (*keys, *command.args, *getattr(command, "per_key", ()))  # type: ignore[union-attr]
        return (("EVALSHA", script.sha, len(keys), *tail),)
    if kind == "Batch":
        calls = command.calls  # type: ignore[union-attr]
        if command.transaction:  # type: ignore[union-attr]
            return (("MULTI",), *calls, ("EXEC",))
        return tuple(calls)
    raise TypeError(f"not a djredis command: {command!r}")


def eval_fallback(command: Eval) -> tuple[tuple[Any, ...], ...]:
    """Return the EVAL that replaces an EVALSHA the server did not know (NOSCRIPT)."""
    script, keys = command.script, command.keys
    tail = (*keys, *command.args, *getattr(command, "per_key", ()))
    return (("EVAL", script.source, len(keys), *tail),)


def finish(command: Call | Batch | Eval, replies: Sequence[Any]) -> Any:
    """Return the result of ``command`` from its raw replies; raise its first error.

    A Batch raises its first error only after every reply was read, so one bad command
    never leaves the others' replies on the connection.
    """
    kind = type(command).__name__
    if kind != "Batch":
        reply = replies[0]
        if isinstance(reply, ERROR_TYPES):
            raise error_from_reply(reply)
        return reply
    if command.transaction:  # type: ignore[union-attr]
        for reply in replies:
            if isinstance(reply, ERROR_TYPES):
                raise error_from_reply(reply)
        executed = replies[-1]
        replies = executed if executed is not None else []
    for reply in replies:
        if isinstance(reply, ERROR_TYPES):
            raise error_from_reply(reply)
    return list(replies)
