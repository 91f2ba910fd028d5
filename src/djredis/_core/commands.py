"""Describe Redis I/O as data, so each operation is written once for sync and async.

An operation is a generator: it yields the command(s) it needs (``Call``, ``Batch``,
``Eval`` or ``Primaries``), receives each reply, and returns its result. A *runner* does
the I/O through a ``Topology`` (one server, a primary with replicas, Sentinel, Cluster;
see ``djredis._routing``), which decides where each command goes: the sync runner over
djredis's blocking pool, the async one over the running loop's multiplexed connections. Replies are
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

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar, final

from djredis._core.scripts import LuaScript

__all__ = ["Batch", "Call", "Command", "Eval", "Operation", "Primaries"]

T = TypeVar("T")


@final
@dataclass(slots=True)
class Call:
    """One Redis command; ``write=False`` lets it go to a read replica.

    ``node`` (a server from ``Primaries``) runs a keyless command on that server.
    """

    args: tuple[Any, ...]
    write: bool = True
    node: Any = None


@final
@dataclass(slots=True)
class Batch:
    """Several commands in one round trip, optionally as one MULTI/EXEC transaction.

    A transaction's commands must share one hash slot (Redis Cluster runs it on one node).
    """

    calls: tuple[tuple[Any, ...], ...]
    write: bool = True
    transaction: bool = False


@final
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


@final
@dataclass(slots=True)
class Primaries:
    """Ask for the primary servers, for commands that run on each (``SCAN``, ``FLUSHDB``).

    The reply is a tuple of opaque server handles to pass as ``Call(..., node=server)``.
    """


# The commands are final: runners test ``type(command) is Call`` (cheaper than isinstance),
# and mypy narrows a Command by such a test only for final classes.
Command = Call | Batch | Eval | Primaries
Operation = Generator[Command, Any, T]
