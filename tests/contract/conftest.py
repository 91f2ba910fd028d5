"""Contract tests: Django's cache and session contracts, and django-redis's, on real Redis
(standalone; with ``pytestmark = pytest.mark.topologies`` on every topology).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._servers import RedisServer


@pytest.fixture(scope="session")
def django_redis_server() -> Iterator[RedisServer]:
    """A redis-server of its own for django-redis 7.0, the peer in differential tests."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def django_redis_cache(django_redis_server: RedisServer) -> Iterator[Any]:
    """django-redis 7.0's cache (KEY_PREFIX "p") on an emptied server of its own.

    Skipped where django-redis 7 is not installed (it needs Django >= 5.2; it comes with
    the ``bench`` extra).
    """
    pytest.importorskip("django_redis", minversion="7.0")
    from django_redis.cache import RedisCache as DjangoRedisCache

    client = django_redis_server.client()
    client.flushdb()
    client.close()
    cache = DjangoRedisCache(django_redis_server.url(0), {"KEY_PREFIX": "p"})
    yield cache
    cache.client.do_close_clients()
