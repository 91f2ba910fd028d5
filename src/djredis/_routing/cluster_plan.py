"""Split a command by hash slot and put the replies back together, for the Cluster router.

Pure functions and the ``Part`` record: no I/O. ``cluster.py`` sends the parts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from redis.client import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ServerConfig
from djredis._core import observe
from djredis._core.commands import Batch, Call, Eval
from djredis._core.errors import CommandNotSent, error_from_reply
from djredis._io.bridge import get_client
from djredis._io.resp import ERROR_TYPES

__all__ = [
    "KEYLESS",
    "PENDING",
    "SPLIT",
    "Node",
    "Part",
    "accepted_kwargs",
    "all_replies",
    "command_name",
    "deliver",
    "error_code",
    "first_reply",
    "not_sent",
    "redirect_target",
    "seen_all_end",
    "seen_end",
    "slot_of",
    "split_eval",
    "split_keys",
    "watch_nodes",
    "watch_one",
]

# Multi-key commands split by slot: name -> (arguments per key, how replies combine).
SPLIT: dict[str, tuple[int, str]] = {
    "MGET": (1, "positions"),
    "MSET": (2, "ok"),
    "DEL": (1, "sum"),
    "UNLINK": (1, "sum"),
    "EXISTS": (1, "sum"),
    "TOUCH": (1, "sum"),
}
# Commands without a key, run on one primary when no node is given.
KEYLESS = frozenset(
    {"PING", "INFO", "TIME", "DBSIZE", "SCAN", "FLUSHDB", "FLUSHALL", "RANDOMKEY", "ECHO"}
)


class Node:
    """One cluster node: its configuration and (lazily) its sync client."""

    __slots__ = ("_client", "config")

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        client = self._client
        if client is None:
            client = self._client = get_client(self.config)
        return client

    def __repr__(self) -> str:
        return f"<cluster node {self.config.describe()}>"


PENDING = object()


def slot_of(key: Any) -> int:
    """Return the hash slot of ``key`` (str, bytes or number), honouring ``{hash tags}``."""
    if type(key) is str:
        return int(key_slot(key.encode()))
    if not isinstance(key, (bytes, bytearray, memoryview)):
        key = str(key).encode()
    return int(key_slot(bytes(key)))


def command_name(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).upper()


class Part:
    """One command of a (possibly split) cluster command, routed on its own."""

    __slots__ = (
        "args",
        "ask",
        "conn_failures",
        "node",
        "reply",
        "script",
        "sent_to",
        "slot",
        "transaction",
        "write",
    )

    def __init__(
        self,
        args: tuple[Any, ...],
        slot: int | None = None,
        node: Node | None = None,
        transaction: tuple[tuple[Any, ...], ...] = (),
        script: Any = None,
    ) -> None:
        self.args = args
        self.slot = slot
        self.node = node
        self.transaction = transaction
        self.script = script  # the LuaScript of an EVALSHA, for NOSCRIPT
        self.ask: Node | None = None
        self.sent_to: Node | None = None
        self.conn_failures = 0
        self.reply: Any = PENDING
        self.write = True  # False: it only reads, so it may be resent after any failure

    def wire(self) -> list[tuple[Any, ...]]:
        """Return the commands to send for this part, in order."""
        if self.transaction:
            return [("MULTI",), *self.transaction, ("EXEC",)]
        if self.ask is not None:
            return [("ASKING",), self.args]
        return [self.args]

    def take(self, replies: list[Any]) -> None:
        """Set ``reply`` from the replies to ``wire()``'s commands."""
        if not self.transaction:
            self.reply = replies[-1]
            return
        queued = [r for r in replies[1:-1] if isinstance(r, ResponseError)]
        executed = replies[-1]
        if queued:  # a MOVED/ASK on a queued command aborts the transaction
            self.reply = queued[0]
        elif executed is None or isinstance(executed, ResponseError):
            self.reply = executed
        else:
            errors = [_as_error(r) for r in executed if _as_error(r) is not None]
            self.reply = errors[0] if errors else executed


def _as_error(reply: Any) -> ResponseError | None:
    if isinstance(reply, ResponseError):
        return reply
    if isinstance(reply, ERROR_TYPES):
        return error_from_reply(reply)
    return None


def redirect_target(exc: ResponseError) -> tuple[str, int, str, int] | None:
    """Return (kind, slot, host, port) for a MOVED or ASK error, else None."""
    code = getattr(exc, "status_code", None)
    text = str(exc)
    if not code:
        code, _, text = text.partition(" ")
        if code not in ("MOVED", "ASK"):
            class_code = {"MovedError": "MOVED", "AskError": "ASK"}.get(type(exc).__name__)
            if class_code is None:
                return None
            code, text = class_code, str(exc)
    if code not in ("MOVED", "ASK"):
        return None
    slot, _, address = text.strip().partition(" ")
    host, _, port = address.rpartition(":")
    try:
        return code, int(slot), host, int(port)
    except ValueError:  # a malformed redirection: an error like any other, not a crash
        return None


def error_code(exc: ResponseError) -> str:
    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    by_class = {
        "TryAgainError": "TRYAGAIN",
        "ClusterDownError": "CLUSTERDOWN",
        "MasterDownError": "MASTERDOWN",
        "MovedError": "MOVED",
        "AskError": "ASK",
        "NoScriptError": "NOSCRIPT",
    }.get(type(exc).__name__)
    return by_class or str(exc).split(" ", 1)[0]


def accepted_kwargs(cls: type[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop the arguments ``cls`` does not take (the async RedisCluster has no **kwargs)."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params}
    return {k: v for k, v in kwargs.items() if k in names}


def not_sent(exc: Exception) -> Exception:
    """Mark a failure to connect as one that sent nothing (a timeout stays a timeout)."""
    if isinstance(exc, (CommandNotSent, RedisTimeoutError)):
        return exc
    error = CommandNotSent(str(exc))
    error.__cause__ = exc
    return error


def first_reply(replies: list[Any]) -> Any:
    return replies[0]


def all_replies(replies: list[Any]) -> list[Any]:
    return replies


def split_keys(
    args: tuple[Any, ...], split: tuple[int, str]
) -> tuple[list[Part], Callable[[list[Any]], Any]]:
    """Split a multi-key command into one command per slot."""
    step, combine = split
    name, items = args[0], args[1:]
    by_slot: dict[int, list[int]] = {}
    for index in range(0, len(items), step):
        by_slot.setdefault(slot_of(items[index]), []).append(index)
    if len(by_slot) == 1:
        return [Part(args, slot=next(iter(by_slot)))], first_reply
    parts = [
        Part((name, *(item for i in indexes for item in items[i : i + step])), slot=slot)
        for slot, indexes in by_slot.items()
    ]
    if combine == "positions":
        groups = list(by_slot.values())
        total = len(items)

        def positions(replies: list[Any]) -> list[Any]:
            merged: list[Any] = [None] * total
            for indexes, reply in zip(groups, replies, strict=True):
                for index, value in zip(indexes, reply, strict=True):
                    merged[index] = value
            return merged

        return parts, positions
    if combine == "sum":
        return parts, lambda replies: sum(int(r) for r in replies)
    return parts, first_reply


def split_eval(command: Eval) -> tuple[list[Part], Callable[[list[Any]], Any]]:
    """Route a script by the slot of its keys; split a per-key script by slot."""
    script, keys = command.script, command.keys
    if not command.per_key:
        tail = (*keys, *command.args)
        args = ("EVALSHA", script.sha, len(keys), *tail)
        return [Part(args, slot=slot_of(keys[0]) if keys else None, script=script)], first_reply
    by_slot: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_slot.setdefault(slot_of(key), []).append(index)
    parts = []
    for slot, indexes in by_slot.items():
        part_keys = tuple(keys[i] for i in indexes)
        values = tuple(command.per_key[i] for i in indexes)
        args = ("EVALSHA", script.sha, len(part_keys), *part_keys, *command.args, *values)
        parts.append(Part(args, slot=slot, script=script))
    return parts, lambda replies: sum(int(r) for r in replies)


def watch_nodes(groups: dict[Node, list[Part]]) -> dict[Node, observe.Sent]:
    """Observe what goes to each node as one command (djredis._core.observe), if watched."""
    found = observe.hooks
    if found is None or not found.commands:
        return {}
    return {node: observe.Sent(node.config, _as_command(parts)) for node, parts in groups.items()}


def watch_one(node: Node, command: Any) -> observe.Sent | None:
    """Observe a command sent straight to its node, if watched."""
    found = observe.hooks
    if found is None or not found.commands:
        return None
    return observe.Sent(node.config, command)


def seen_end(seen: observe.Sent | None, error: BaseException | None) -> None:
    if seen is not None:
        seen.end(error)


def seen_all_end(watched: dict[Node, observe.Sent], error: BaseException) -> None:
    for seen in watched.values():
        seen.end(error)


def _as_command(parts: list[Part]) -> Call | Batch | Eval:
    """Describe the parts sent to one node as the one command an observer sees."""
    calls = [call for part in parts for call in (part.transaction or (part.args,))]
    write = any(part.write for part in parts)
    if len(calls) > 1:
        return Batch(tuple(calls), write, any(part.transaction for part in parts))
    script = parts[0].script
    if script is not None and len(calls[0]) > 2:  # EVALSHA sha numkeys keys... args...
        count = int(calls[0][2])
        return Eval(script, calls[0][3 : 3 + count], calls[0][3 + count :], write)
    return Call(calls[0], write)


def deliver(parts: list[Part], replies: list[Any]) -> None:
    """Hand each part its replies, in the order the parts were written to one node."""
    replies = [_as_error(reply) or reply for reply in replies]
    for part in parts:
        count = len(part.wire())
        part.take(replies[:count])
        del replies[:count]
