"""Fixtures: real redis-server processes, and caches pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches

from djredis.cache import RedisCache

from ._servers import RedisServer, commandstats


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone redis-server on a free TCP port, for the whole session."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_unix_server() -> Iterator[RedisServer]:
    """A redis-server listening only on a Unix socket in a temp dir."""
    server = RedisServer(tcp=False, unix=True).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """A plain redis-py client on db 0 of a freshly emptied server; stats reset."""
    client = redis_server.client()
    client.flushall()
    client.config_resetstat()
    yield client
    client.close()


@pytest.fixture
def make_cache(redis_server: RedisServer, redis_client: Any) -> Iterator[Callable[..., RedisCache]]:
    """Build djredis caches on the test server: ``make_cache(OPTIONS={...}, KEY_PREFIX=...)``."""
    made: list[RedisCache] = []

    def factory(location: Any = None, **params: Any) -> RedisCache:
        cache = RedisCache(location or redis_server.url(), params)
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


@pytest.fixture
def cache(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A djredis cache with default options."""
    return make_cache()


@pytest.fixture
def stats(redis_client: Any) -> Callable[[], dict[str, int]]:
    """Return a function giving the server's command counts since the test started."""
    return lambda: commandstats(redis_client)


@pytest.fixture
def django_caches(settings: Any, redis_server: RedisServer, redis_client: Any) -> Any:
    """Point Django's CACHES ('default' + 'other') at the test server, as a user would."""
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": redis_server.url(0)},
        "other": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(1),
            "KEY_PREFIX": "other",
        },
    }
    yield caches
    for alias in ("default", "other"):
        caches[alias].close()
