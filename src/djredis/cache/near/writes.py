"""Which keys a command writes, so this process's own writes drop them from the local tier.

Every cache operation runs through the backend's runner as a generator of command
descriptions; ``watch`` wraps it and, once a write command's reply (or its failure: it may
have been applied all the same) is back, drops the keys it names before the operation sees
the reply. A read that began before the write loses its ticket, so read-your-writes holds
in the process without waiting for Redis's invalidation.
"""

from __future__ import annotations

from typing import Any, TypeVar

from djredis._core.commands import Batch, Call, Command, Eval, Operation
from djredis.cache.near.tier import NearCache

__all__ = ["watch"]

T = TypeVar("T")

ALL = "*all*"
# Commands the cache sends that change nothing (Call.write defaults to True).
_READS = frozenset(
    {"GET", "MGET", "EXISTS", "PTTL", "TTL", "SCAN", "TYPE", "STRLEN", "KEYS", "DBSIZE", "PING"}
)
_FLUSHES = frozenset({"FLUSHDB", "FLUSHALL"})
_ALL_KEYS = frozenset({"DEL", "UNLINK", "RENAME", "RENAMENX", "TOUCH", "COPY"})


def _name(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).upper()


def _text(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def _call_keys(args: tuple[Any, ...]) -> list[str] | str:
    name = _name(args[0])
    if name in _READS:
        return []
    if name in _FLUSHES:
        return ALL
    if name in {"MSET", "MSETNX"}:
        return [_text(key) for key in args[1::2]]
    if name in _ALL_KEYS:
        return [_text(key) for key in args[1:]]
    return [_text(args[1])] if len(args) > 1 else []


def written_keys(command: Command) -> list[str] | str:
    """Return the keys ``command`` may change, or ``ALL``."""
    if isinstance(command, Call):
        return _call_keys(command.args) if command.write else []
    if isinstance(command, Eval):
        return [_text(key) for key in command.keys] if command.write else []
    if isinstance(command, Batch) and command.write:
        keys: list[str] = []
        for args in command.calls:
            found = _call_keys(args)
            if found is ALL:
                return ALL
            keys.extend(found)
        return keys
    return []


def watch(near: NearCache, operation: Operation[T]) -> Operation[T]:
    """Run ``operation``, dropping what each of its writes names once it is answered."""
    try:
        command = next(operation)
        while True:
            keys = written_keys(command)
            try:
                reply = yield command
            except BaseException as exc:
                _forget(near, keys)
                if isinstance(exc, GeneratorExit):
                    operation.close()
                    raise
                command = operation.throw(exc)
                continue
            _forget(near, keys)
            command = operation.send(reply)
    except StopIteration as stop:
        result: T = stop.value  # what ``operation`` returns: a T
        return result


def _forget(near: NearCache, keys: list[str] | str) -> None:
    if keys is ALL:
        near.forget_all()
    elif keys:
        near.forget(keys)
