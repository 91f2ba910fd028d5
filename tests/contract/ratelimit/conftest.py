"""Rate limit fixtures: Django's ``default`` cache on the test topology, and requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.http import HttpRequest
from django.test import RequestFactory

from tests._topologies import Topology


@pytest.fixture(
    params=[
        pytest.param("standalone", id="standalone"),
        pytest.param("cluster", id="cluster", marks=pytest.mark.slow),
    ]
)
def rl_topology(request: pytest.FixtureRequest, standalone_topology: Topology) -> Topology:
    """Standalone, then a Redis Cluster (marked slow, like every non-standalone topology)."""
    if request.param == "standalone":
        return standalone_topology
    found: Topology = request.getfixturevalue("cluster_topology")
    return found


def _point_default_cache(settings: Any, topology: Topology) -> Any:
    topology.flush()
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": topology.location,
            "OPTIONS": dict(topology.options),
        },
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.RATELIMIT_USE_CACHE = "default"
    return topology


@pytest.fixture
def on_topology(settings: Any, rl_topology: Topology) -> Iterator[Topology]:
    """``CACHES['default']`` is a djredis cache on the parametrized topology (emptied)."""
    yield _point_default_cache(settings, rl_topology)
    caches["default"].close()


@pytest.fixture
def on_redis(settings: Any, standalone_topology: Topology) -> Iterator[Topology]:
    """``CACHES['default']`` is a djredis cache on the standalone test server (emptied)."""
    yield _point_default_cache(settings, standalone_topology)
    caches["default"].close()


@pytest.fixture
def make_request() -> Callable[..., HttpRequest]:
    """Build a request: ``make_request(path="/", method="GET", ip="203.0.113.9", **meta)``."""
    factory = RequestFactory()

    def make(
        path: str = "/", method: str = "GET", ip: str = "203.0.113.9", **meta: Any
    ) -> HttpRequest:
        request = factory.generic(method, path, REMOTE_ADDR=ip, **meta)
        return request

    return make
