"""Fixtures of the channel layer's tests: layers on the test topology, and a counting
proxy in front of the standalone server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from djredis.channels import RedisChannelLayer
from tests._channels import layer_hosts
from tests._proxy import FaultyProxy
from tests._servers import RedisServer
from tests._topologies import Topology

Factory = Callable[..., RedisChannelLayer]


@pytest.fixture
def hosts(topology: Topology, redis_client: Any) -> list[Any]:
    """The ``hosts`` CONFIG naming the (emptied) test topology."""
    return layer_hosts(topology)


@pytest_asyncio.fixture
async def make_layer(hosts: list[Any]) -> AsyncIterator[Factory]:
    """Build layers on the test topology; their readers are stopped afterwards."""
    made: list[RedisChannelLayer] = []

    def factory(**config: Any) -> RedisChannelLayer:
        layer = RedisChannelLayer(**{"hosts": hosts, **config})
        made.append(layer)
        return layer

    yield factory
    for layer in made:
        await layer.close_pools()


@pytest.fixture
def layer(make_layer: Factory) -> RedisChannelLayer:
    """A layer with channels_redis's defaults, except capacity 10 and expiry 5 s."""
    return make_layer(capacity=10, expiry=5)


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultyProxy]:
    """A proxy in front of the standalone server that records the commands clients send."""
    proxy = FaultyProxy(("127.0.0.1", redis_server.port))
    yield proxy
    proxy.close()
