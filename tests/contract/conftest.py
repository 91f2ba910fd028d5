"""Contract tests: Django's cache and session contracts, and django-redis's, on real Redis
(standalone; with ``pytestmark = pytest.mark.topologies`` on every topology).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import djredis.metrics
import djredis.otel
from djredis._core import observe
from tests._observed import Traced
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


@pytest.fixture
def traced() -> Iterator[Traced]:
    """djredis instrumented with an SDK provider whose finished spans the test reads."""
    found = Traced()
    djredis.otel.instrument(found.provider)
    yield found
    djredis.otel.uninstrument()
    assert observe.hooks is None or not observe.hooks.commands


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """djredis's metrics installed in a prometheus_client registry of the test's own."""
    found = CollectorRegistry()
    djredis.metrics.install(found)
    yield found
    djredis.metrics.uninstall()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop, kill or freeze (SIGSTOP)."""
    server = RedisServer().start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)  # a frozen one could not stop
    server.stop()
