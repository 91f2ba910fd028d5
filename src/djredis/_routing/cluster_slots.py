"""The slot map of a Redis Cluster: which primary serves each hash slot.

Loaded with ``CLUSTER SLOTS`` from the first node that answers (a route of attempts, so both
runners drive it), shared by the sync and async paths of the process, and reloaded when a
node fails or a ``MOVED`` names a primary it does not know.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from djredis._config.server import ServerConfig
from djredis._core.commands import Call
from djredis._routing.base import ATTEMPT_ERRORS, Route, TopologyError
from djredis._routing.cluster_plan import Node

__all__ = ["FAILED_NODE_PAUSE", "MIN_REFRESH_INTERVAL", "SlotMap"]

# Reloading the slot map at most this often (many commands fail at once in a failover).
MIN_REFRESH_INTERVAL = 0.05
# A node that failed is not asked for the slot map again for this long.
FAILED_NODE_PAUSE = 1.0
# The slot map is asked of one node after another, as a read (safe to send again).
_CLUSTER_SLOTS = Call(("CLUSTER", "SLOTS"), write=False)


class SlotMap:
    """Who serves which slot, and which nodes failed lately."""

    def __init__(
        self,
        seeds: tuple[ServerConfig, ...],
        changed: Callable[[tuple[ServerConfig, ...]], None] = lambda primaries: None,
    ) -> None:
        # Called with the new primaries (the read servers) whenever they change.
        self._changed = changed
        self.template = seeds[0]
        self.nodes: dict[tuple[str, int], Node] = {}
        self.seeds = [self.node(*seed.address) for seed in seeds]
        self.slots: list[Node | None] | None = None
        self.primaries: tuple[Node, ...] = ()
        self.replicas: tuple[Node, ...] = ()
        self._refreshed_at = -MIN_REFRESH_INTERVAL
        self._failed_at: dict[Node, float] = {}
        # A node failed since the map was last loaded: reload it before the next command
        # (at most every MIN_REFRESH_INTERVAL), so a promoted replica is found even when
        # the failed node only ever times out.
        self.suspect = False
        self._lock = threading.Lock()

    def node(self, host: str, port: int) -> Node:
        node = self.nodes.get((host, port))
        if node is None:
            node = self.nodes.setdefault((host, port), Node(self.template.at(host, port)))
        return node

    def _candidates(self) -> list[Node]:
        now = time.monotonic()
        ordered = dict.fromkeys([*self.primaries, *self.replicas, *self.seeds])
        fresh = [
            n for n in ordered if now - self._failed_at.get(n, float("-inf")) >= FAILED_NODE_PAUSE
        ]
        return fresh or list(ordered)

    def refresh(self) -> Route[None]:
        """Load the slot map from the first node that answers ``CLUSTER SLOTS``."""
        problems = []
        for node in self._candidates():
            try:
                reply = yield node.config, _CLUSTER_SLOTS
            except ATTEMPT_ERRORS as exc:
                self._failed_at[node] = time.monotonic()
                problems.append(f"{node.config.describe()}: {type(exc).__name__}: {exc}")
                continue
            self._install(reply, node)
            self.suspect = False
            return
        raise TopologyError(f"no Redis Cluster node answered CLUSTER SLOTS ({'; '.join(problems)})")

    def _install(self, reply: Any, via: Node) -> None:
        slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        primaries: dict[Node, None] = {}
        replicas: dict[Node, None] = {}
        for start, end, primary, *others in reply:
            owner = self._entry_node(primary, via)
            primaries[owner] = None
            slots[int(start) : int(end) + 1] = [owner] * (int(end) - int(start) + 1)
            for other in others:
                replicas[self._entry_node(other, via)] = None
        self.slots = slots
        self.replicas = tuple(replicas)
        self._set_primaries(tuple(primaries))

    def _set_primaries(self, primaries: tuple[Node, ...]) -> None:
        before, self.primaries = self.primaries, primaries
        if before and set(before) != set(primaries):
            self._changed(tuple(node.config for node in primaries))

    def _entry_node(self, entry: Any, via: Node) -> Node:
        host = entry[0].decode() if isinstance(entry[0], bytes) else str(entry[0])
        if not host or host == "?":  # the node does not know its own address: use ours
            host = via.config.address[0]
        return self.node(host, int(entry[1]))

    def want_refresh(self) -> bool:
        """Claim the next reload of the slot map, unless one just happened."""
        with self._lock:
            now = time.monotonic()
            if self.slots is not None and now - self._refreshed_at < MIN_REFRESH_INTERVAL:
                return False
            self._refreshed_at = now
            return True

    def moved(self, slot: int, target: Node) -> bool:
        """Route ``slot`` to ``target`` (a ``MOVED``); return whether it is a new primary.

        A new primary (a promoted replica) serves reads of that slot from now on, so it
        joins ``primaries`` (the read servers) at once, whether or not the reload of the
        map that follows happens now (reloads are rate-limited)."""
        if self.slots is not None:
            self.slots[slot] = target
        if target in self.primaries:
            return False
        self._set_primaries((*self.primaries, target))
        return True

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held by another thread

    def failed(self, node: Node) -> None:
        self._failed_at[node] = time.monotonic()
        self.suspect = True

    def owner(self, slot: int) -> Node | None:
        slots = self.slots
        return None if slots is None else slots[slot]
