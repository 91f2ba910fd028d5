"""Send a command description over this loop's shared connection.

Its replies become its result exactly as on the blocking pool: both use
``protocol.wire`` and ``protocol.finish``.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError

from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import CONNECTION_ERRORS, CommandNotSent
from djredis._io.aio import AsyncConnection
from djredis._io.protocol import checked, eval_fallback, finish, wire

__all__ = ["execute_async"]


async def execute_async(conn: AsyncConnection, command: Call | Batch | Eval) -> Any:
    """Send one command description over this loop's shared connection; its replies
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


async def _replies(conn: AsyncConnection, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
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
