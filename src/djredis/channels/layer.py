"""``RedisChannelLayer``: the Channels layer spec on djredis's connection layer.

Round trips (commands clients send):

- ``send``: one ``EVALSHA`` (capacity check + enqueue + expiry, server clock);
- ``receive`` (see ``djredis.channels.reader``): on a plain channel, one ``LPOP`` on the
  loop's multiplexed connection when the list holds a message, else that ``LPOP`` (empty)
  and a ``BLMPOP`` the loop's reader sends on its dedicated connection; one message per
  receive, so the backlog stays in Redis for every worker. For the process-local channels
  of a process (one list), at most one ``BLMPOP`` popping up to ``BATCH`` at once for all
  of them, so a receive often finds its message already fetched;
- ``group_add``, ``group_discard``: one ``EVALSHA`` each;
- ``group_send``: one ``EVALSHA`` when the layer has one non-Cluster shard and no
  ``channel_capacity`` patterns (the script reads the members and delivers to each);
  otherwise one ``EVALSHA`` that reads the members, then one per shard and Cluster slot
  among the members' lists, sent concurrently. All process-local channels of one process
  share one list, hence one slot, so a group of 1,000 consumers spread over 4 processes
  costs 1 + 4 scripts whatever its size.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers import BaseChannelLayer

import djredis.channels.operations as ops
from djredis._core import observe
from djredis._core.commands import Operation
from djredis._core.errors import ErrorPolicy
from djredis._routing.base import Topology, run_async
from djredis._routing.cluster import slot_of
from djredis.channels.config import ChannelLayerSettings, read_layer_config
from djredis.channels.reader import Inbox, Reader

__all__ = ["RedisChannelLayer"]

logger = logging.getLogger("djredis.channels")

# send()'s and receive()'s name shortcuts are emptied past this many names.
_ROUTES_KEPT = 10_000


class RedisChannelLayer(BaseChannelLayer):  # type: ignore[misc]
    """A Channels layer on Redis (standalone, Sentinel, Cluster, or several shards).

    Takes channels_redis's CONFIG keys (``hosts``, ``prefix``, ``expiry``,
    ``group_expiry``, ``capacity``, ``channel_capacity``, ``symmetric_encryption_keys``,
    ``serializer_format``...); see ``djredis.channels.config`` and docs/channels.md.
    """

    extensions: ClassVar[list[str]] = ["groups", "flush"]

    def __init__(self, hosts: Any = None, **config: Any) -> None:
        settings = read_layer_config({"hosts": hosts, **config})
        super().__init__(expiry=settings.expiry, capacity=settings.capacity)
        self.settings: ChannelLayerSettings = settings
        self.channel_capacity = list(settings.channel_capacity)
        self.group_expiry = settings.group_expiry
        self.prefix = settings.prefix
        self.client_prefix = uuid.uuid4().hex
        self._ring = ops.HashRing(len(settings.shards))
        self._expiry_ms = max(1, round(settings.expiry * 1000))
        self._group_expiry_ms = max(1, round(settings.group_expiry * 1000))
        self._policy = ErrorPolicy(ignore=False, logger=logger, where="the channel layer")
        # One script does the whole group_send when everything lives on one server.
        self._one_server = (
            len(settings.shards) == 1 and not settings.cluster[0] and not settings.channel_capacity
        )
        # The mailboxes of this process's local lists, shared by every event loop (a
        # message fetched on one loop is delivered to whichever loop asks next).
        self._inboxes: dict[str, Inbox] = {}
        self._inboxes_lock = threading.Lock()
        # Per event loop: the readers of the lists this process receives from.
        self._readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Reader]] = (
            weakref.WeakKeyDictionary()
        )
        # receive()'s shortcut: channel name -> its reader, per loop (the last loop cached).
        self._routes_of: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Reader]] = (
            weakref.WeakKeyDictionary()
        )
        # One tuple, read and replaced whole: loops of other threads may call receive too.
        self._last: tuple[asyncio.AbstractEventLoop | None, dict[str, Reader]] = (None, {})
        # send()'s shortcut: channel name -> (shard, list key, local part).
        self._targets: dict[str, tuple[Topology, str, str]] = {}

    def __str__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, shards={len(self.settings.shards)})"

    # -- names and messages ------------------------------------------------------------------

    def _topology(self, name: str) -> Topology:
        return self.settings.shards[self._ring.shard(name)]

    def _payload(self, message: Any) -> bytes:
        if not isinstance(message, dict):
            raise TypeError(f"A message must be a dict, got {type(message).__name__}.")
        payload = self.settings.serializer.serialize(message)
        if len(payload) > self.settings.max_message_size:
            raise MessageTooLarge(
                f"The message is {len(payload)} bytes serialized; the layer's "
                f"max_message_size is {self.settings.max_message_size}."
            )
        return payload

    async def _run(self, topology: Topology, operation: Operation[Any], name: str) -> Any:
        return await run_async(topology, operation, self._policy, name, None)

    # -- the spec ----------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``channel``; raise ``ChannelFull`` when it holds ``capacity``
        messages already."""
        target = self._targets.get(channel)  # validated names only
        if target is None:
            target = self._target(channel)
        topology, key, local_part = target
        sent = await self._run(
            topology,
            ops.send(
                key, local_part, self._payload(message), self.get_capacity(channel), self._expiry_ms
            ),
            "send",
        )
        if observe.hooks is not None:  # djredis.metrics: sends and full channels
            observe.channel_messages("sent" if sent else "full")
        if not sent:
            raise ChannelFull(channel)

    def _target(self, channel: str) -> tuple[Topology, str, str]:
        """Validate ``channel`` and return where its messages go: the shard, the list key
        and the part after ``!``; remembered for the next ``send``."""
        self.require_valid_channel_name(channel)
        non_local = self.non_local_name(channel)
        target = (
            self._topology(non_local),
            ops.channel_key(self.prefix, non_local),
            channel[len(non_local) :],
        )
        if len(self._targets) > _ROUTES_KEPT:
            self._targets.clear()
        self._targets[channel] = target
        return target

    async def receive(self, channel: str) -> dict[str, Any]:
        """Return the next message on ``channel``, waiting for one. Cancelling it loses
        nothing."""
        loop = asyncio.get_running_loop()
        last_loop, routes = self._last
        if loop is not last_loop:
            routes = self._routes_of.setdefault(loop, {})
            self._last = (loop, routes)
        reader = routes.get(channel)  # validated names only
        if reader is None:
            self.require_valid_channel_name(channel)
            non_local = self.non_local_name(channel)
            if "!" in channel and not non_local.endswith(f".{self.client_prefix}!"):
                # Another process's local channel: nothing here would ever receive it.
                # channels_redis raises AssertionError("Wrong client prefix") too.
                raise AssertionError(
                    f"Wrong client prefix: {channel!r} is a process-local channel of another "
                    "layer instance; receive only names this layer's new_channel() returned."
                )
            reader = self._reader(non_local)
            if len(routes) > _ROUTES_KEPT:
                routes.clear()
            routes[channel] = reader
        message: dict[str, Any] = await reader.receive(channel)
        if observe.hooks is not None:
            observe.channel_messages("received")
        return message

    async def new_channel(self, prefix: str = "specific") -> str:
        """Return a new process-local channel name (``specific.<process>!<random>``)."""
        return f"{prefix}.{self.client_prefix}!{secrets.token_hex(12)}"

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, for ``group_expiry`` seconds from now."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._run(
            self._topology(group),
            ops.group_add(ops.group_key(self.prefix, group), channel, self._group_expiry_ms),
            "group_add",
        )

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group`` (nothing happens when it is not a member)."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._run(
            self._topology(group),
            ops.group_discard(ops.group_key(self.prefix, group), channel),
            "group_discard",
        )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every member of ``group``; full channels are skipped
        silently (never ``ChannelFull``)."""
        self.require_valid_group_name(group)
        payload = self._payload(message)
        key = ops.group_key(self.prefix, group)
        topology = self._topology(group)
        if self._one_server:
            delivered = await self._run(
                topology,
                ops.group_send_here(
                    key,
                    f"{self.prefix}:c:",
                    payload,
                    self._expiry_ms,
                    self._group_expiry_ms,
                    self.capacity,
                ),
                "group_send",
            )
            if observe.hooks is not None:
                observe.channel_messages("group_sent", delivered)
            return
        members = await self._run(
            topology, ops.group_members(key, self._group_expiry_ms), "group_send"
        )
        if not members:
            return
        buckets: dict[tuple[int, int], list[tuple[str, str, int]]] = {}
        for channel in members:
            non_local = self.non_local_name(channel)
            shard = self._ring.shard(non_local)
            list_key = ops.channel_key(self.prefix, non_local)
            slot = slot_of(list_key) if self.settings.cluster[shard] else 0
            buckets.setdefault((shard, slot), []).append(
                (list_key, channel[len(non_local) :], self.get_capacity(channel))
            )
        deliveries = await asyncio.gather(
            *(
                self._run(
                    self.settings.shards[shard],
                    ops.fanout(targets, payload, self._expiry_ms),
                    "group_send",
                )
                for (shard, _), targets in buckets.items()
            )
        )
        if observe.hooks is not None:
            observe.channel_messages("group_sent", sum(deliveries))

    async def flush(self) -> None:
        """Delete every channel and group of this layer's prefix, and stop this loop's
        readers (the local messages this process fetched and did not deliver go too)."""
        await self.close_pools()
        with self._inboxes_lock:
            inboxes = list(self._inboxes.values())
        for inbox in inboxes:
            inbox.clear()
        for topology in self.settings.shards:
            await self._run(topology, ops.flush(self.prefix), "flush")

    async def close_pools(self) -> None:
        """Stop this loop's readers and close their connections (channels_redis's name).
        Local messages already fetched stay for the next receive, on any loop."""
        loop = asyncio.get_running_loop()
        self._routes_of.pop(loop, None)
        if self._last[0] is loop:
            self._last = (None, {})
        readers = self._readers.pop(loop, {})
        for reader in readers.values():
            await reader.stop()

    # -- receiving ---------------------------------------------------------------------------

    def _reader(self, non_local: str) -> Reader:
        loop = asyncio.get_running_loop()
        readers = self._readers.get(loop)
        if readers is None:
            readers = self._readers[loop] = {}
        reader = readers.get(non_local)
        if reader is None:
            key = ops.channel_key(self.prefix, non_local)
            topology = self._topology(non_local)
            if non_local.endswith("!"):  # this process's local channels: fetched in bulk
                inbox, give_back = self._inbox(non_local), None
            else:  # a plain channel: unclaimed messages go back to Redis
                inbox, give_back = Inbox(), self._giver(topology, key)
            reader = readers[non_local] = Reader(
                topology,
                key,
                non_local,
                inbox,
                f"djredis.channels:{id(self)}:{key}",
                self.settings.serializer.deserialize,
                self.expiry,
                (self.settings.on_disconnect, self.settings.on_reconnect),
                give_back,
            )
        return reader

    def _inbox(self, non_local: str) -> Inbox:
        with self._inboxes_lock:
            inbox = self._inboxes.get(non_local)
            if inbox is None:
                inbox = self._inboxes[non_local] = Inbox()
            return inbox

    def _giver(self, topology: Topology, key: str) -> Callable[[Sequence[bytes]], Awaitable[int]]:
        async def give_back(elements: Sequence[bytes]) -> int:
            result: int = await self._run(
                topology, ops.give_back(key, elements, self._expiry_ms), "receive"
            )
            return result

        return give_back
