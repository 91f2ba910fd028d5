"""The channel layer's Redis operations, written once as command descriptions.

Keys (``prefix`` defaults to ``asgi``):

- ``<prefix>:c:{<non-local name>}``: a list of messages, oldest first, for a channel
  (``chat``) or for all the process-local channels of one process (``specific.<id>!``);
  capacity is counted on it, as the spec asks;
- ``<prefix>:g:{<group>}``: a sorted set, member = channel name, score = last
  ``group_add`` in ms on the server's clock;
- ``<prefix>:g:{<group>}:lists``: the group's list cache, a hash of the members' lists
  (non-local name -> count and local parts), built by ``group_send`` and voided by every
  change of membership (see ``channels_group_send.lua``).

The hash tag makes each key its own slot on Redis Cluster, so every script touches one slot.
A list element is ``<deadline ms>|<local part>|<message>``: the message's expiry on the
server's clock and the part of the channel name after ``!``, so one list carries the
messages of every local channel of a process (see ``channels_deliver.lua``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from typing import Any

from djredis._core.commands import Call, Eval, Operation, Primaries
from djredis._core.scripts import lua

__all__ = [
    "HashRing",
    "channel_key",
    "fanout",
    "flush",
    "give_back",
    "group_add",
    "group_discard",
    "group_key",
    "group_members",
    "group_send_here",
    "lists_key",
    "send",
]

_SCAN_COUNT = 1000


def channel_key(prefix: str, non_local: str) -> str:
    """Return the list that holds the messages of channels whose non-local part is
    ``non_local``."""
    return f"{prefix}:c:{{{non_local}}}"


def group_key(prefix: str, group: str) -> str:
    """Return the sorted set of ``group``'s members."""
    return f"{prefix}:g:{{{group}}}"


def lists_key(group_key: str) -> str:
    """Return the list cache of the group whose sorted set is ``group_key`` (same slot)."""
    return f"{group_key}:lists"


def send(
    key: str, local_part: str, payload: bytes, capacity: int, expiry_ms: int
) -> Operation[bool]:
    """Enqueue one message unless the channel is full; return whether it was enqueued.

    One EVALSHA: the capacity check, the enqueue and the expiry happen together on the
    server's clock.
    """
    reply = yield Eval(lua("channels_send"), (key,), (payload, expiry_ms, local_part, capacity))
    return int(reply) == 1


def fanout(
    targets: Sequence[tuple[str, str, int]], payload: bytes, expiry_ms: int
) -> Operation[int]:
    """Deliver one message to each ``(key, local part, capacity)`` (all in one slot); full
    channels are skipped. Return the number of deliveries."""
    args: list[Any] = [payload, expiry_ms]
    for _, local_part, capacity in targets:
        args += (local_part, capacity)
    reply = yield Eval(lua("channels_deliver"), tuple(t[0] for t in targets), tuple(args))
    return int(reply)


def give_back(key: str, elements: Sequence[bytes], expiry_ms: int) -> Operation[int]:
    """Put popped ``elements`` (oldest first) back at the head of the list ``key``."""
    reply = yield Eval(lua("channels_return"), (key,), (2 * expiry_ms, *elements))
    return int(reply)


def group_add(key: str, channel: str, group_expiry_ms: int) -> Operation[None]:
    """Add ``channel`` to the group, refreshing the group's and the membership's expiry."""
    yield Eval(lua("channels_group_add"), (key, lists_key(key)), (channel, group_expiry_ms))


def group_discard(key: str, channel: str) -> Operation[None]:
    """Remove ``channel`` from the group."""
    yield Eval(lua("channels_group_remove"), (key, lists_key(key)), (channel,))


def group_members(key: str, group_expiry_ms: int) -> Operation[list[str]]:
    """Drop expired memberships and return the group's members."""
    reply = yield Eval(lua("channels_group_members"), (key, lists_key(key)), (group_expiry_ms,))
    return [_text(name) for name in reply]


def group_send_here(
    key: str,
    channel_prefix: str,
    payload: bytes,
    expiry_ms: int,
    group_expiry_ms: int,
    capacity: int,
) -> Operation[int]:
    """group_send in one script, when the group and every channel share one server."""
    reply = yield Eval(
        lua("channels_group_send"),
        (key, lists_key(key)),
        (channel_prefix, payload, expiry_ms, group_expiry_ms, capacity),
    )
    return int(reply)


def flush(prefix: str) -> Operation[int]:
    """Delete every channel and group key of the layer on every primary; return how many."""
    servers = yield Primaries()
    deleted = 0
    for server in servers:
        cursor: Any = 0
        while True:
            cursor, keys = yield Call(
                ("SCAN", cursor, "MATCH", f"{prefix}:[cg]:{{*", "COUNT", _SCAN_COUNT),
                node=server,
            )
            if keys:
                deleted += int((yield Call(("UNLINK", *keys))))
            if int(cursor) == 0:
                break
    return deleted


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HashRing:
    """Consistent hashing of names onto shards: adding a shard moves about 1/n of them."""

    POINTS = 64  # per shard

    def __init__(self, shards: int) -> None:
        points = sorted(
            (_hash(f"shard-{index}-{point}"), index)
            for index in range(shards)
            for point in range(self.POINTS)
        )
        self._hashes = [h for h, _ in points]
        self._shards = [index for _, index in points]
        self._single = shards == 1

    def shard(self, name: str) -> int:
        """Return the index of the shard that holds ``name``."""
        if self._single:
            return 0
        at = bisect.bisect(self._hashes, _hash(name)) % len(self._hashes)
        return self._shards[at]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
