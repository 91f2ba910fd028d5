"""Which keys a command writes, so this process's own writes drop them from the local tier.

Every cache operation is a plan of command descriptions, driven by the runners with an
``Executor``'s ``execute``/``aexecute`` as the step. A cache with a near-cache runs its
operations through ``WatchedWrites``, an executor around its topology: once a write
command's reply (or its failure: it may have been applied all the same) is back, it drops
the keys the command names, before the driver hands the reply to the operation. A read that
began before the write loses its ticket, so read-your-writes holds in the process without
waiting for Redis's invalidation.
"""

from __future__ import annotations

from typing import Any

from djredis._core.commands import Batch, Call, Command, Eval
from djredis._routing.base import Executor
from djredis.cache.near.tier import NearCache

__all__ = ["WatchedWrites", "written_keys"]

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


class WatchedWrites:
    """An executor that runs each command on ``topology``, then drops from ``near`` the
    keys the command may have written (after its reply or its failure)."""

    __slots__ = ("near", "topology")

    def __init__(self, topology: Executor, near: NearCache) -> None:
        self.topology = topology
        self.near = near

    def execute(self, command: Command) -> Any:
        keys = written_keys(command)
        try:
            return self.topology.execute(command)
        finally:
            _forget(self.near, keys)

    async def aexecute(self, command: Command) -> Any:
        keys = written_keys(command)
        try:
            return await self.topology.aexecute(command)
        finally:
            _forget(self.near, keys)


def _forget(near: NearCache, keys: list[str] | str) -> None:
    if keys is ALL:
        near.forget_all()
    elif keys:
        near.forget(keys)
