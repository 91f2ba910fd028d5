"""Fixtures of the near-cache fault tests: a near-cache and a plain cache on the failover
folder's own server, a Sentinel deployment of the test's own; listeners stopped after each
test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from djredis.cache import RedisCache
from djredis.cache.near.tier import close_all
from tests._near import caches
from tests._servers import RedisServer
from tests._topologies import Sentinels, started


@pytest.fixture(autouse=True)
def _stop_listeners() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def pair(server: RedisServer, direct: Any) -> Iterator[tuple[RedisCache, RedisCache]]:
    """(a cache with the near-cache, a plain cache) on the same keys of ``server``."""
    near, plain = caches(server.url())
    yield near, plain
    near.close()
    plain.close()


@pytest.fixture
def fresh_sentinels() -> Iterator[Sentinels]:
    """A Sentinel deployment of the test's own (it is broken by the test)."""
    yield from started(Sentinels())
