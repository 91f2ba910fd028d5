"""Fixtures of the near-cache contract tests: a cache with the near-cache and a plain one
on the same keys; every near-cache's listeners are stopped after each test, so that no
tracking connection outlives it (other tests count the server's connections)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from djredis.cache import RedisCache
from djredis.cache.near.tier import close_all
from tests._near import NEAR


@pytest.fixture(autouse=True)
def _stop_listeners() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def near(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A cache with the near-cache on (MAX_STALENESS 2 s: see ``tests._near.NEAR``)."""
    return make_cache(KEY_PREFIX="near", OPTIONS=NEAR)


@pytest.fixture
def plain(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """Another client of the same keys, without a near-cache (another process, in effect)."""
    return make_cache(KEY_PREFIX="near")
