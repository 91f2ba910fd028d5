"""Build the ``Topology`` that routes a component's commands, from its parsed settings."""

from __future__ import annotations

from djredis._config.server import ClusterSettings, SentinelSettings, Settings
from djredis._routing.base import Topology
from djredis._routing.cluster import ClusterGroup
from djredis._routing.servers import SentinelGroup, ServerGroup

__all__ = ["connect"]


def connect(settings: Settings) -> Topology:
    """Return the topology that routes commands for ``settings``."""
    if isinstance(settings, SentinelSettings):
        return SentinelGroup(settings)
    if isinstance(settings, ClusterSettings):
        return ClusterGroup(settings)
    return ServerGroup(settings)
