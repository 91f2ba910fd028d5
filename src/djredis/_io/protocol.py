"""What djredis's connections say and how they read the answers, without any I/O.

Written once for every connection, blocking or asyncio, pooled, multiplexed or exclusive:
what a command description sends and what its replies make (``wire``, ``finish``), the
handshake (AUTH, SELECT, CLIENT SETNAME before anything else), the timeout rule, the words
of every failure, and ``Session``: one conversation's reader, replies owed, subscriptions,
confirmations and pushed messages. The shells only move bytes and watch the clock.

The timeout rule. ``SOCKET_TIMEOUT`` bounds every silence: once a request is written,
bytes must keep moving (the rest of the request out, or its replies in) with no pause
longer than the timeout, as with redis-py's per-read socket timeout, so a big value that
keeps flowing is never cut for being big and a stopped server times out within
``SOCKET_TIMEOUT``. Unlike a per-read timeout, a trickle cannot hold a request forever:
each write and its replies are given ``SOCKET_TIMEOUT`` plus one second for every
``MIN_RATE`` bytes moved, so a peer that sends one byte every few milliseconds times out
too, about ``SOCKET_TIMEOUT`` after the write (``late_at``). A blocking command's reply
(``BZPOPMIN key 5``) is owed ``block + SOCKET_TIMEOUT`` after the write.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core.commands import Batch, Call, Eval
from djredis._core.driver import Plan
from djredis._core.errors import (
    CommandNotSent,
    MaxClientsReachedError,
    ProtocolError,
    error_from_reply,
    is_max_clients_refusal,
    max_clients_reached,
)
from djredis._io.resp import ERROR_TYPES, SCALARS, new_reader, resp2_violation

_OUTQ: int | None
try:
    import termios
    from fcntl import ioctl

    _OUTQ = termios.TIOCOUTQ  # SIOCOUTQ on a socket: bytes not yet acknowledged
except (ImportError, AttributeError):  # pragma: no cover - the kernel's queue goes unwatched
    _OUTQ = None

__all__ = [
    "BIG_WRITE",
    "GAP",
    "MIN_RATE",
    "MORE",
    "SAMPLE",
    "Message",
    "Session",
    "Step",
    "check_call",
    "checked",
    "eval_fallback",
    "finish",
    "handshake_commands",
    "handshake_error",
    "handshake_failure",
    "late_at",
    "timeout_message",
    "tls_handshake_error",
    "transport_error",
    "unsent",
    "violation",
    "wire",
]

# -- the timeout rule --------------------------------------------------------------------------

# Bytes per second a transfer must average to outlast SOCKET_TIMEOUT. Low enough for any
# link a cache is used over (a loopback moves 1 GB/s, a slow WAN link 1 MB/s), and far
# above a trickle (a byte every few milliseconds is a few hundred bytes per second).
MIN_RATE = 100_000

# A write bigger than this may still be leaving the kernel's send queue (megabytes, on a
# slow link) while the replies are awaited: the queue is then looked at every ``SAMPLE`` of
# socket_timeout, and bytes leaving it count as progress, so a stall is seen within that
# much more than the timeout.
BIG_WRITE = 65536
SAMPLE = 0.25


def unsent(sock: socket.socket | Any) -> int:
    """Return how many bytes written to ``sock`` the peer has not acknowledged yet (the
    kernel's send queue; 0 where the platform does not say). It only asks the kernel."""
    if _OUTQ is None:
        return 0
    try:
        queued: int = struct.unpack("i", ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return 0
    return queued


def late_at(deadline: float, moved: int, progress_at: float, timeout: float) -> float:
    """Return when a transfer is late, given its first ``deadline`` (write + timeout).

    ``moved`` bytes went since the write, the last at ``progress_at``: it may run until
    ``timeout`` after that, but never past the first deadline plus ``moved / MIN_RATE``.
    """
    return min(deadline + moved / MIN_RATE, max(deadline, progress_at + timeout))


def timeout_message(where: str, timeout: float | None, block: float | None = None) -> str:
    """Return the message of a request that went silent or trickled (``block``: the
    seconds a blocking command was allowed to wait on top of the timeout)."""
    silence = "socket_timeout" if not block else f"block + socket_timeout ({block} s +"
    limit = f"{timeout} s" if not block else f"{timeout} s)"
    return (
        f"Timeout talking to {where}: nothing moved for {silence} {limit}, or "
        f"slower than {MIN_RATE // 1000} kB/s on average; connection discarded"
    )


# -- what a command description sends, and what its replies make -------------------------------


def wire(command: Call | Batch | Eval) -> tuple[tuple[Any, ...], ...]:
    """Return the commands to send for ``command``, in order, in one write."""
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
    """Return one command's reply; raise it if it is an error reply."""
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
        if isinstance(reply, ERROR_TYPES):  # ``checked``, inlined: this runs for every command
            raise error_from_reply(reply)
        return reply
    if command.transaction:
        for reply in replies:
            checked(reply)
        executed = replies[-1]
        replies = executed if executed is not None else []
    for reply in replies:
        checked(reply)
    return list(replies)


# Sent through their own methods, which keep count of the confirmations Redis sends back.
_SUBSCRIPTION_COMMANDS = frozenset(
    {"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE"}
)


def check_call(args: tuple[Any, ...]) -> None:
    """Refuse what an exclusive connection's ``call`` must not send (no command, or a
    (un)subscribe, which has methods of its own)."""
    if not args:
        raise TypeError("call() needs a command")
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    if name.upper() in _SUBSCRIPTION_COMMANDS:
        raise TypeError(f"send {name} with subscribe()/unsubscribe()/psubscribe()/punsubscribe()")


# -- the handshake -----------------------------------------------------------------------------


def handshake_commands(kwargs: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Return the AUTH / SELECT / CLIENT SETNAME commands a new connection must send."""
    commands: list[tuple[Any, ...]] = []
    username, password = kwargs.get("username"), kwargs.get("password")
    provider = kwargs.get("credential_provider")
    if provider is not None:
        credentials = provider.get_credentials()
        username, password = (None, credentials[0]) if len(credentials) == 1 else credentials
    if password is not None:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if kwargs.get("db"):
        commands.append(("SELECT", kwargs["db"]))
    if kwargs.get("client_name"):
        commands.append(("CLIENT", "SETNAME", kwargs["client_name"]))
    return commands


def handshake_failure(
    commands: Sequence[tuple[Any, ...]], replies: Sequence[Any], where: str
) -> Exception | None:
    """Return the error the first error reply to the handshake means, or None.

    A server at its ``maxclients`` limit gives ``MaxClientsReached`` naming it, a refused
    AUTH ``AuthenticationError``, anything else the redis-py error for the reply
    (``SELECT`` of a missing database...).
    """
    for command, reply in zip(commands, replies, strict=True):
        if not isinstance(reply, ERROR_TYPES):
            continue
        if is_max_clients_refusal(reply):  # the first replies on the socket: nothing ran
            return max_clients_reached(where)
        error: Exception = error_from_reply(reply)
        if command[0] == "AUTH" and not isinstance(error, AuthenticationError):
            return AuthenticationError(str(error))
        return error
    return None


def handshake_error(where: str, exc: BaseException) -> BaseException:
    """Return what to raise when the handshake (or re-subscribing) failed with ``exc``:
    nothing but the handshake was written, so the caller's command was not."""
    if isinstance(exc, MaxClientsReachedError):  # in reply to the first command: nothing ran
        return max_clients_reached(where)
    if isinstance(exc, (ProtocolError, AuthenticationError, CommandNotSent)):
        return exc
    if isinstance(exc, (RedisTimeoutError, TimeoutError, asyncio.TimeoutError)):
        return RedisTimeoutError(f"Timeout connecting to {where} (handshake)")
    if isinstance(exc, (RedisConnectionError, OSError)):
        return CommandNotSent(f"Error connecting to {where}: {exc}")
    return exc


def tls_handshake_error(
    where: str, exc: BaseException, timeout: float | None
) -> RedisConnectionError | RedisTimeoutError:
    """Return the error to raise when the TLS handshake with ``where`` failed with ``exc``.

    The usual cause is a ``rediss://`` LOCATION naming a plain-text port: the server waits
    for a command and never answers the ClientHello, or answers it with a RESP error, so
    the bare ``ssl`` error ("timed out", "wrong version number") says little by itself.
    """
    hint = "is it a TLS port? rediss:// needs a server listening with tls-port"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # distinct before Python 3.11
        limit = "" if timeout is None else f" after {timeout} s (connect_timeout)"
        return RedisTimeoutError(f"TLS handshake with {where} timed out{limit}: {hint}")
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return RedisConnectionError(f"TLS handshake with {where} failed ({reason}): {hint}")


# -- failures ----------------------------------------------------------------------------------


def violation(where: str, what: str) -> ProtocolError:
    """Return the error of a reply that breaks RESP2 (the connection is discarded)."""
    return ProtocolError(
        f"Protocol error from {where}: {what}; is LOCATION pointing at a Redis server?"
    )


def transport_error(
    where: str, exc: BaseException, timeout: float | None, block: float | None = None
) -> BaseException:
    """Return what the caller sees when ``exc`` broke a connection in use (discarded: its
    place in the reply stream is lost). Anything but a socket error or timeout (an
    interrupt, a cancellation, a djredis error) is itself."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return RedisTimeoutError(timeout_message(where, timeout, block))
    if isinstance(exc, OSError):
        return RedisConnectionError(f"Error talking to {where}: {exc}")
    return exc


# -- one conversation: replies owed, subscriptions, pushes -------------------------------------

# In the text of the ConnectionError that reports a gap in a subscription.
GAP = "messages published meanwhile are lost; the next call re-subscribes"

_CONFIRMATIONS = frozenset({b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe"})
MORE = object()  # the reader needs more bytes

# One write of a connection's opening: the commands, the replies and the subscription
# confirmations they owe (``Session.opening``).
Step = tuple[list[tuple[Any, ...]], int, int]


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


class Session:
    """One connection's conversation, without I/O: the reader, the replies owed, the
    pub/sub state (restored on every new socket). A shell holds one (or subclasses it),
    feeds the reader and places each reply with ``settle``, or runs the ``exchange`` /
    ``next_message`` generators (they yield when the reader needs bytes). When the socket
    must go, ``close_socket`` calls ``on_close`` (the shell's close), then ``forget``."""

    __slots__ = (
        "channels",
        "config",
        "confirming",
        "count",
        "fresh",
        "gap",
        "id",
        "kwargs",
        "messages",
        "on_close",
        "patterns",
        "reader",
        "received",
        "received_at",
        "where",
    )

    def __init__(self, config: ServerConfig, on_close: Callable[[], None] | None = None) -> None:
        self.config = config
        self.on_close = on_close
        self.kwargs = config.kwargs()
        self.where = config.describe()
        self.reader = new_reader(config.reader)
        # No reply read on this socket yet: a maxclients refusal can only be the first.
        self.fresh = False
        # Bytes received so far, and the clock time the last of them came (``feed``).
        self.received = 0
        self.received_at = 0.0
        # What the caller subscribed to (ordered sets), restored after every reconnect.
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.messages: deque[Message] = deque()
        # The server's count of this socket's subscriptions (0: not in pub/sub mode), and
        # how many confirmations the replies being read still owe.
        self.count = 0
        self.confirming = 0
        self.id: int | None = None
        # A gap the caller has not heard of yet (see ``broken``).
        self.gap: str | None = None

    @property
    def subscribed(self) -> bool:
        """Whether the caller wants any channel or pattern (restored on reconnect)."""
        return bool(self.channels or self.patterns)

    @property
    def pushing(self) -> bool:
        """Whether the socket may push messages or owes confirmations (pub/sub mode)."""
        return bool(self.count or self.confirming)

    @property
    def subscriptions(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """Return the channels and the patterns subscribed to (restored on reconnect)."""
        return frozenset(self.channels), frozenset(self.patterns)

    # -- reading --------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray, offset: int = 0, length: int = -1) -> None:
        """Give the reader bytes the socket received (progress: they moved now)."""
        self.received += len(data) if length < 0 else length
        self.received_at = time.monotonic()
        try:
            self.reader.feed(data, offset, length)
        except Exception as exc:
            raise self.violation(f"malformed reply ({exc})") from exc

    def next_reply(self) -> Any:
        """Return the next parsed reply, or ``MORE`` when the reader needs bytes."""
        try:
            reply = self.reader.gets()
        except Exception as exc:  # hiredis.ProtocolError, ValueError, RecursionError...
            raise self.violation(f"malformed reply ({type(exc).__name__}: {exc})") from exc
        return MORE if reply is False else reply

    def settle(self, reply: Any, got: list[Any], wanted: int) -> bool:
        """Place one parsed reply: a pub/sub message or confirmation, else the next of the
        ``wanted`` replies of the current write, appended to ``got``. Return True once
        every reply and confirmation owed is in (then nothing more may be waiting, unless
        the socket is subscribed)."""
        if type(reply) not in SCALARS:
            if problem := resp2_violation(reply):
                raise self.violation(problem)
            if self.fresh and not got and is_max_clients_refusal(reply):
                raise max_clients_reached(self.where)  # the first reply: nothing ran
        if not ((self.count or self.confirming) and self.push(reply)):
            got.append(reply)
        count = len(got)
        if count < wanted:
            return False
        if count > wanted:
            raise self.violation("a reply nobody was waiting for")
        if self.confirming:
            return False
        self.fresh = False
        if not self.count and self.next_reply() is not MORE:
            raise self.violation("more replies than commands sent")
        return True

    def push(self, reply: Any) -> bool:
        """Take ``reply`` if it is a message or an awaited subscription confirmation."""
        if not (self.count or self.confirming) or type(reply) is not list or len(reply) < 3:
            return False
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self.messages.append(Message("message", reply[1], reply[2]))
        elif kind == b"pmessage" and len(reply) == 4:
            self.messages.append(Message("pmessage", reply[2], reply[3], reply[1]))
        elif kind in _CONFIRMATIONS and self.confirming and type(reply[2]) is int:
            self.confirming -= 1
            self.count = reply[2]
        else:
            return False
        return True

    def exchange(self, replies: int, confirmations: int = 0) -> Generator[None, None, list[Any]]:
        """Read the answer to one write: ``replies`` replies, then ``confirmations``
        subscription confirmations; messages arriving meanwhile are queued. Yields when
        the reader needs more bytes."""
        self.confirming += confirmations
        got: list[Any] = []
        if not (replies or confirmations):
            return got
        while True:
            reply = self.next_reply()
            if reply is MORE:
                yield
            elif self.settle(reply, got, replies):
                return got

    def next_message(self) -> Generator[None, None, Message]:
        """Return the next message (queued or read). Yields when the reader needs bytes."""
        while not self.messages:
            reply = self.next_reply()
            if reply is MORE:
                yield
                continue
            if type(reply) not in SCALARS and (problem := resp2_violation(reply)):
                raise self.violation(problem)
            if not self.push(reply):
                raise self.violation("a reply nobody was waiting for")
        return self.messages.popleft()

    # -- what to send -------------------------------------------------------------------------

    def opening(self) -> Plan[Step, None]:
        """The plan of a new socket, before anything else is written on it: the handshake
        (AUTH, SELECT, CLIENT SETNAME), then the subscriptions restored. It yields what to
        send in one write as ``(commands, replies, confirmations)`` (``exchange``'s
        arguments) and is sent the replies; a refusal raises the error it means (the
        shell wraps any failure with ``handshake_error``)."""
        self.fresh = True
        commands = handshake_commands(self.kwargs)
        if commands:
            replies = yield commands, len(commands), 0
            failure = handshake_failure(commands, replies, self.where)
            if failure is not None:
                raise failure
        commands, confirmations = self.restore()
        if commands:
            replies = yield commands, 1, confirmations
            self.id = int(checked(replies[0]))

    def restore(self) -> tuple[list[tuple[Any, ...]], int]:
        """Return the commands that restore the subscriptions on a new socket (its CLIENT
        ID first: RESP2 refuses CLIENT ID once subscribed), and their confirmations."""
        commands: list[tuple[Any, ...]] = []
        if self.channels:
            commands.append(("SUBSCRIBE", *self.channels))
        if self.patterns:
            commands.append(("PSUBSCRIBE", *self.patterns))
        if commands:
            commands.insert(0, ("CLIENT", "ID"))
        return commands, len(self.channels) + len(self.patterns)

    def subscription(
        self, command: str, names: Sequence[str | bytes]
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Record a (p)(un)subscribe; return what to send (nothing if it changes nothing)
        and the confirmations owed. A CLIENT ID goes first when the socket's id is not
        known yet (its reply is then the one reply to read)."""
        wanted = self.patterns if command[0] == "P" else self.channels
        encoded = [name.encode() if isinstance(name, str) else bytes(name) for name in names]
        if command.endswith("UNSUBSCRIBE"):
            changed = [name for name in dict.fromkeys(encoded or wanted) if name in wanted]
            for name in changed:
                del wanted[name]
            if not self.count:  # not subscribed on this socket: nothing to tell Redis
                return [], 0
        else:
            changed = [name for name in dict.fromkeys(encoded) if name not in wanted]
            wanted.update(dict.fromkeys(changed))
        if not changed:
            return [], 0
        commands: list[tuple[Any, ...]] = [(command, *changed)]
        if self.id is None and not self.count:
            commands.insert(0, ("CLIENT", "ID"))
        return commands, len(changed)

    def deadline(self, now: float, block: float | None) -> float | None:
        """Return when the replies of a write made at ``now`` are late (``block``: what a
        blocking command may wait on top of socket_timeout; ``math.inf``: no bound)."""
        timeout = self.config.socket_timeout
        if timeout is None or (block is not None and math.isinf(block)):
            return None
        return now + (block or 0.0) + timeout

    def later(self, first: float | None, start: int, now: float) -> float | None:
        """Return the deadline a reply gets for the bytes of it received since ``start``
        (``_received`` when it was asked for; ``first``: its first deadline), or None
        when it is late."""
        timeout = self.config.socket_timeout
        moved = self.received - start
        if first is None or timeout is None or not moved:
            return None
        later = late_at(first, moved, self.received_at, timeout)
        return later if later > now else None

    # -- failures -------------------------------------------------------------------------------

    def violation(self, what: str) -> ProtocolError:
        """Return the error of a reply from this server that breaks RESP2."""
        return violation(self.where, what)

    def forget(self) -> None:
        """Reset what belonged to the closed socket (a new one starts a new stream)."""
        self.reader = new_reader(self.config.reader)
        self.count = self.confirming = 0
        self.id = None

    def broken(self, exc: BaseException, block: float | None = None) -> BaseException:
        """Close the socket ``exc`` broke and return what to raise for it. A subscriber
        hears of the gap (once: a cancelled or interrupted caller cannot, so the next
        call raises it instead)."""
        gap = self.count > 0
        self.close_socket()
        error = transport_error(self.where, exc, self.config.socket_timeout, block)
        if not isinstance(error, (RedisConnectionError, RedisTimeoutError)):
            if gap:
                self.gap = f"Connection to {self.where} closed by a cancelled call; {GAP}"
            return error
        if gap:
            error = type(error)(f"{error}; {GAP}")
        return error

    def take_gap(self) -> None:
        """Raise the gap a cancelled call left, once."""
        gap, self.gap = self.gap, None
        if gap is not None:
            raise RedisConnectionError(gap)

    def lost_while_idle(self) -> None:
        """The server closed the idle socket: tell a subscriber, replace it silently else."""
        gap = self.count > 0
        self.close_socket()
        if gap:
            raise RedisConnectionError(f"Connection to {self.where} lost; {GAP}")

    def forget_subscriptions(self) -> None:
        """Drop the subscriptions, the queued messages and a pending gap (on close)."""
        self.channels.clear()
        self.patterns.clear()
        self.messages.clear()
        self.gap = None

    def close_socket(self) -> None:
        """Close the shell's socket (``on_close``) and ``forget`` its stream."""
        if self.on_close is not None:
            self.on_close()
        self.forget()
