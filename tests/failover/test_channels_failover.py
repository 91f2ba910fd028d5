"""The channel layer through a Sentinel failover: the reader finds the promoted replica and
consumers keep receiving, without the layer being rebuilt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from djredis.channels import RedisChannelLayer
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


async def _send_until_accepted(layer: RedisChannelLayer, channel: str, message: Any) -> None:
    for _ in range(1200):
        try:
            await layer.send(channel, message)
            return
        except (RedisConnectionError, OSError):
            await asyncio.sleep(0.05)
    raise AssertionError("sends never resumed")


async def test_consumers_keep_receiving_through_a_sentinel_failover(
    sentinels: Sentinels,
) -> None:
    layer = RedisChannelLayer(
        hosts=[{"address": sentinels.location, **sentinels.options}],
        options={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    )
    channel = await layer.new_channel()
    received: list[int] = []

    async def consume() -> None:
        while True:
            received.append((await layer.receive(channel))["n"])

    consumer = asyncio.ensure_future(consume())
    for number in range(20):
        await layer.send(channel, {"type": "n", "n": number})
    while len(received) < 20:
        await asyncio.sleep(0.01)
    victim = sentinels.current_primary()
    await asyncio.to_thread(victim.kill)
    for number in range(20, 40):
        await _send_until_accepted(layer, channel, {"type": "n", "n": number})
    for _ in range(2000):
        if len(received) >= 40:
            break
        await asyncio.sleep(0.01)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert sentinels.current_primary() is not victim
    assert received == list(range(40))
    await layer.close_pools()


async def test_consumers_keep_receiving_through_a_cluster_failover(cluster: Cluster) -> None:
    layer = RedisChannelLayer(
        hosts=[cluster.location],
        options={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    )
    channel = await layer.new_channel()
    received: list[int] = []

    async def consume() -> None:
        while True:
            received.append((await layer.receive(channel))["n"])

    consumer = asyncio.ensure_future(consume())
    for number in range(20):
        await layer.send(channel, {"type": "n", "n": number})
    while len(received) < 20:
        await asyncio.sleep(0.01)
    key = "asgi:c:{" + channel.split("!")[0] + "!}"
    victim = await asyncio.to_thread(cluster.node_for, key)
    await asyncio.to_thread(victim.kill)
    for number in range(20, 40):
        await _send_until_accepted(layer, channel, {"type": "n", "n": number})
    for _ in range(2000):
        if len(received) >= 40:
            break
        await asyncio.sleep(0.01)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert await asyncio.to_thread(cluster.node_for, key) is not victim
    assert received == list(range(40))
    await layer.close_pools()
