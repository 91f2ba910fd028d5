"""The channel layer through a Sentinel failover: the reader finds the promoted replica and
consumers keep receiving, without the layer being rebuilt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from djredis.channels import RedisChannelLayer
from tests._channels import received_across
from tests._topologies import Cluster, Sentinels, started

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def sentinels() -> Iterator[Sentinels]:
    """Sentinels of this test's own: it kills their primary."""
    yield from started(Sentinels())


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Cluster of this test's own: it kills a primary."""
    yield from started(Cluster())


async def test_consumers_keep_receiving_through_a_sentinel_failover(
    sentinels: Sentinels,
) -> None:
    layer = RedisChannelLayer(
        hosts=[{"address": sentinels.location, **sentinels.options}],
        options={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    )
    victim = sentinels.current_primary()

    async def kill_the_primary(channel: str) -> None:
        await asyncio.to_thread(victim.kill)

    received = await received_across(layer, 20, 40, kill_the_primary, within=60, pause=0.05)
    assert sentinels.current_primary() is not victim
    assert received == list(range(40))
    await layer.close_pools()


async def test_consumers_keep_receiving_through_a_cluster_failover(cluster: Cluster) -> None:
    layer = RedisChannelLayer(
        hosts=[cluster.location],
        options={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    )
    killed: dict[str, Any] = {}

    async def kill_the_channels_primary(channel: str) -> None:
        key = killed["key"] = "asgi:c:{" + channel.split("!")[0] + "!}"
        killed["victim"] = await asyncio.to_thread(cluster.node_for, key)
        await asyncio.to_thread(killed["victim"].kill)

    received = await received_across(
        layer, 20, 40, kill_the_channels_primary, within=60, pause=0.05
    )
    assert await asyncio.to_thread(cluster.node_for, killed["key"]) is not killed["victim"]
    assert received == list(range(40))
    await layer.close_pools()
