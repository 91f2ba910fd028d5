"""Fixtures for the cache helpers' tests: counters, signed caches, a Redis that is gone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from djredis.cache import RedisCache
from tests._servers import RedisServer

from . import _forged


@pytest.fixture
def calls() -> Counter[str]:
    """How many times each memoized function ran in this test."""
    return Counter()


@pytest.fixture
def unpickled() -> Iterator[list[str]]:
    """What forged pickles ran in this test (empty unless one was unpickled)."""
    _forged.UNPICKLED.clear()
    yield _forged.UNPICKLED
    _forged.UNPICKLED.clear()


@pytest.fixture
def signed(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A cache with OPTIONS['SIGN_VALUES'] on."""
    return make_cache(OPTIONS={"SIGN_VALUES": True})


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    """Which API a test reads through: "sync" or "async"."""
    return str(request.param)


@pytest.fixture
def big_pool_cache(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A cache whose pool lets 100 threads hold a connection at once."""
    return make_cache(OPTIONS={"CONNECTION_POOL_KWARGS": {"max_connections": 200}})


@pytest.fixture
def dead_location() -> str:
    """The URL of a Redis that was started and stopped: nothing listens there."""
    server = RedisServer().start()
    url = server.url(0)
    server.stop()
    return url
