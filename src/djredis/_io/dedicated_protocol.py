"""The replies, messages and subscriptions of a dedicated connection, without any I/O.

``DedicatedConnection`` (blocking) and ``AsyncDedicatedConnection`` (asyncio) differ only in
how they wait for bytes: both run the generators here, which read replies from the RESP
reader and yield when it needs more bytes (see ``djredis._io.dedicated``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.errors import (
    CommandNotSent,
    MaxClientsReachedError,
    ProtocolError,
    error_from_reply,
    max_clients_reached,
)
from djredis._io.handshake import handshake_failure
from djredis._io.progress import late_at
from djredis._io.resp import ERROR_TYPES, SCALARS, new_reader, resp2_violation

__all__ = ["GAP", "DedicatedBase", "Message"]

# In the text of the ConnectionError that reports a gap in a subscription.
GAP = "messages published meanwhile are lost; the next call re-subscribes"

_CONFIRMATIONS = frozenset({b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe"})
# Sent through their own methods, which keep count of the confirmations Redis sends back.
_SUBSCRIPTION_COMMANDS = frozenset(
    {"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE"}
)
MORE = object()  # the reader needs more bytes


@dataclass(frozen=True, slots=True)
class Message:
    """One pub/sub message.

    ``kind`` is "message" (``channel`` matched by name) or "pmessage" (matched by
    ``pattern``). ``data`` is bytes, except on ``__redis__:invalidate`` (CLIENT TRACKING
    on RESP2), where it is the list of invalidated keys, or None when the whole database
    was flushed.
    """

    kind: str
    channel: bytes
    data: Any
    pattern: bytes | None = None


class DedicatedBase:
    """The protocol state both kinds share: replies, pushes, subscriptions; no I/O."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._kwargs = config.kwargs()
        self._reader = new_reader(config.reader)
        # What the caller subscribed to (ordered sets), restored after every reconnect.
        self._channels: dict[bytes, None] = {}
        self._patterns: dict[bytes, None] = {}
        self._messages: deque[Message] = deque()
        # The server's count of this socket's subscriptions (0: not in pub/sub mode), and
        # how many confirmations the replies being read still owe.
        self._count = 0
        self._confirming = 0
        self._id: int | None = None
        # A gap the caller has not heard of yet (see the module docstring).
        self._gap: str | None = None
        # time.monotonic() when the server last said something: a reply, a message, a pong.
        self.heard_at = 0.0
        # Bytes received so far, and the clock time the last of them came: a reply that keeps
        # arriving is not cut at its deadline (``progress.late_at``).
        self._received = 0
        self._received_at = 0.0

    @property
    def subscriptions(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """Return the channels and the patterns subscribed to (restored on reconnect)."""
        return frozenset(self._channels), frozenset(self._patterns)

    # -- reading replies (generators: they yield when the reader needs more bytes) ----------

    def _next(self) -> Any:
        try:
            reply = self._reader.gets()
        except Exception as exc:  # hiredis.ProtocolError, ValueError...
            raise self._violation(f"malformed reply ({type(exc).__name__}: {exc})") from exc
        if reply is False:
            return MORE
        if type(reply) not in SCALARS:
            problem = resp2_violation(reply)
            if problem is not None:
                raise self._violation(problem)
        self.heard_at = time.monotonic()
        return reply

    def _push(self, reply: Any) -> bool:
        """Take ``reply`` if it is a message or an awaited subscription confirmation."""
        if not (self._count or self._confirming) or type(reply) is not list or len(reply) < 3:
            return False
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self._messages.append(Message("message", reply[1], reply[2]))
        elif kind == b"pmessage" and len(reply) == 4:
            self._messages.append(Message("pmessage", reply[2], reply[3], reply[1]))
        elif kind in _CONFIRMATIONS and self._confirming and type(reply[2]) is int:
            self._confirming -= 1
            self._count = reply[2]
        else:
            return False
        return True

    def _exchange(self, replies: int, confirmations: int = 0) -> Generator[None, None, list[Any]]:
        """Read the answer to one write: ``replies`` replies, then ``confirmations``
        subscription confirmations; messages arriving meanwhile are queued."""
        self._confirming += confirmations
        got: list[Any] = []
        while len(got) < replies or self._confirming:
            reply = self._next()
            if reply is MORE:
                yield
            elif not self._push(reply):
                if len(got) == replies:
                    raise self._violation("a reply nobody was waiting for")
                got.append(reply)
        if not self._count and self._next() is not MORE:
            raise self._violation("more replies than commands sent")
        return got

    def _next_message(self) -> Generator[None, None, Message]:
        while not self._messages:
            reply = self._next()
            if reply is MORE:
                yield
            elif not self._push(reply):
                raise self._violation("a reply nobody was waiting for")
        return self._messages.popleft()

    # -- what to send -------------------------------------------------------------------------

    def _restore(self) -> tuple[list[tuple[Any, ...]], int]:
        """Return the commands that restore the subscriptions on a new socket (its CLIENT
        ID first: RESP2 refuses CLIENT ID once subscribed), and their confirmations."""
        commands: list[tuple[Any, ...]] = []
        if self._channels:
            commands.append(("SUBSCRIBE", *self._channels))
        if self._patterns:
            commands.append(("PSUBSCRIBE", *self._patterns))
        if commands:
            commands.insert(0, ("CLIENT", "ID"))
        return commands, len(self._channels) + len(self._patterns)

    def _subscription(
        self, command: str, names: Sequence[str | bytes]
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Record a (p)(un)subscribe; return what to send (nothing if it changes nothing)."""
        wanted = self._patterns if command[0] == "P" else self._channels
        encoded = [name.encode() if isinstance(name, str) else bytes(name) for name in names]
        if command.endswith("UNSUBSCRIBE"):
            changed = [name for name in dict.fromkeys(encoded or wanted) if name in wanted]
            for name in changed:
                del wanted[name]
            if not self._count:  # not subscribed on this socket: nothing to tell Redis
                return [], 0
        else:
            changed = [name for name in dict.fromkeys(encoded) if name not in wanted]
            wanted.update(dict.fromkeys(changed))
        if not changed:
            return [], 0
        commands: list[tuple[Any, ...]] = [(command, *changed)]
        if self._id is None and not self._count:
            commands.insert(0, ("CLIENT", "ID"))
        return commands, len(changed)

    def _deadline(self, now: float, block: float | None) -> float | None:
        timeout = self._config.socket_timeout
        if timeout is None or (block is not None and math.isinf(block)):
            return None
        return now + (block or 0.0) + timeout

    # -- failures -------------------------------------------------------------------------------

    def _violation(self, what: str) -> ProtocolError:
        return ProtocolError(
            f"Protocol error from {self._config.describe()}: {what}; "
            "is LOCATION pointing at a Redis server?"
        )

    def _later(self, first: float | None, start: int, now: float) -> float | None:
        """Return the deadline a reply gets for the bytes of it received since ``start``
        (the count when it was asked for), or None when it is late."""
        timeout = self._config.socket_timeout
        moved = self._received - start
        if first is None or timeout is None or not moved:
            return None
        later = late_at(first, moved, self._received_at, timeout)
        return later if later > now else None

    def _forget(self) -> None:
        """Reset what belonged to the closed socket."""
        self._reader = new_reader(self._config.reader)
        self._count = self._confirming = 0
        self._id = None

    def _broken(self, exc: BaseException, waited: float | None) -> BaseException:
        """Return what to raise for ``exc``, which broke the socket (now closed)."""
        where = self._config.describe()
        gap = self._count > 0
        self._close_socket()
        error: BaseException
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
            error = exc
        elif isinstance(exc, TimeoutError):
            error = RedisTimeoutError(
                f"Timeout reading from {where}: no reply within {waited} s "
                "(block + socket_timeout); connection discarded"
            )
        elif isinstance(exc, OSError):
            error = RedisConnectionError(f"Error talking to {where}: {exc}")
        else:  # cancelled or interrupted: that caller cannot be told of the gap
            if gap:
                self._gap = f"Connection to {where} closed by a cancelled call; {GAP}"
            return exc
        if gap:
            error = type(error)(f"{error}; {GAP}")
        return error

    def _take_gap(self) -> None:
        gap, self._gap = self._gap, None
        if gap is not None:
            raise RedisConnectionError(gap)

    def _lost_while_idle(self) -> None:
        """The server closed the idle socket: tell a subscriber, replace it silently else."""
        gap = self._count > 0
        self._close_socket()
        if gap:
            raise RedisConnectionError(f"Connection to {self._config.describe()} lost; {GAP}")

    def _close_socket(self) -> None:
        raise NotImplementedError


def check_handshake(
    commands: Sequence[tuple[Any, ...]], replies: Sequence[Any], where: str
) -> None:
    failure = handshake_failure(commands, replies, where)
    if failure is not None:
        raise failure


def handshake_error(where: str, exc: BaseException) -> BaseException:
    """Return what to raise when the handshake or re-subscribing failed with ``exc``."""
    if isinstance(exc, MaxClientsReachedError):  # in reply to the first command: nothing ran
        return max_clients_reached(where)
    if isinstance(exc, (ProtocolError, AuthenticationError, CommandNotSent)):
        return exc
    if isinstance(exc, RedisTimeoutError):
        return RedisTimeoutError(f"Timeout connecting to {where} (handshake): {exc}")
    if isinstance(exc, RedisConnectionError):
        # Nothing but the handshake was written: the caller's command was not.
        return CommandNotSent(f"Error connecting to {where}: {exc}")
    return exc


def result(reply: Any) -> Any:
    if isinstance(reply, ERROR_TYPES):
        raise error_from_reply(reply)
    return reply


def check_call(args: tuple[Any, ...]) -> None:
    if not args:
        raise TypeError("call() needs a command")
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    if name.upper() in _SUBSCRIPTION_COMMANDS:
        raise TypeError(f"send {name} with subscribe()/unsubscribe()/psubscribe()/punsubscribe()")
