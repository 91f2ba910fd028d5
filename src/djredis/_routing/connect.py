"""Return the ``Topology`` that routes a component's commands, one per server set per process.

Every component (each cache alias, the near-cache, sessions, the Channels layer) asks here
with its parsed settings and gets the same object for the same servers: one view of a
Sentinel group or a Cluster per process, so that after a failover they all follow the
same primary, and the near-cache's invalidation listeners follow the servers reads are
filled from. The key is the whole frozen settings object (``_config.server``): every
field that changes how a connection is made (addresses, db, credentials, TLS, timeouts,
pool class and options, client class, replica reads, the Sentinel service and the
Sentinels' own options) takes part, and nothing else does (two aliases that differ only in
KEY_PREFIX or serializer share one).

Topologies live as long as the process, like the connection pools they use: closing a
cache (``close()``, ``CLOSE_CONNECTION``) closes idle connections, never the topology that
other aliases and components still route through. After ``fork()`` the child keeps the
objects (components hold references to them) with fresh locks and no watcher threads;
its connections are its own (the pools notice the new pid).
"""

from __future__ import annotations

import os
import threading

from djredis._config.server import ClusterSettings, SentinelSettings, Settings
from djredis._core.once import built_once
from djredis._routing.base import Topology
from djredis._routing.cluster import ClusterGroup
from djredis._routing.servers import SentinelGroup, ServerGroup

__all__ = ["connect"]

_topologies: dict[Settings, Topology] = {}
_lock = threading.Lock()


def connect(settings: Settings) -> Topology:
    """Return this process's topology for ``settings`` (built on first use, then shared)."""
    topology = _topologies.get(settings)
    if topology is None:
        topology = built_once(_topologies, _lock, settings, lambda: _build(settings))
    return topology


def _build(settings: Settings) -> Topology:
    if isinstance(settings, SentinelSettings):
        return SentinelGroup(settings)
    if isinstance(settings, ClusterSettings):
        return ClusterGroup(settings)
    return ServerGroup(settings)


def _after_fork_in_child() -> None:
    global _lock
    # The parent's lock may have been held by a thread that does not exist here.
    _lock = threading.Lock()
    for topology in list(_topologies.values()):
        topology.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
