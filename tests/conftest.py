"""Fixtures: real redis-server processes, and caches pointed at them.

Behaviour tests run on every topology when their module opts in with
``pytestmark = pytest.mark.topologies``: the ``topology`` fixture (and with it
``redis_client``, ``make_cache``, ``cache`` and ``stats``) is then parametrized over the
standalone server, a primary with a replica, Sentinel and Cluster; the last three are
marked ``slow``, so ``-m "not slow"`` runs the standalone case only. Every other test gets
the standalone server, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from djredis.cache import RedisCache
from djredis.cache.near.tier import close_all

from ._servers import RedisServer
from ._topologies import Cluster, Replicated, Sentinels, Standalone, Topology, started

TOPOLOGIES = ("standalone", "replicas", "sentinel", "cluster")
_TOPOLOGY_FIXTURES = {
    "replicas": "replicated_topology",
    "sentinel": "sentinel_topology",
    "cluster": "cluster_topology",
}


# Each folder of tests/ is one kind of test, selectable as a marker (``-m failover``).
KIND_MARKERS = {
    "unit": "unit",
    "contract": "contract",
    "topologies": "topology_suite",
    "failover": "failover",
    "site": "site",
}
HERE = Path(__file__).parent


# Tests that drive a real headless Chromium carry ``pytest.mark.browser``; with
# DJREDIS_NO_BROWSER=1 in the environment (``scripts/test.py --no-browser`` sets it) they
# are skipped, wherever they live. ``-m "not browser"`` deselects them as well.
NO_BROWSER = os.environ.get("DJREDIS_NO_BROWSER", "") not in ("", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip_browser = pytest.mark.skip(reason="browser tests are off (DJREDIS_NO_BROWSER=1)")
    for item in items:
        folder = item.path.relative_to(HERE).parts[0]
        if folder in KIND_MARKERS:
            item.add_marker(KIND_MARKERS[folder])
        if NO_BROWSER and item.get_closest_marker("browser") is not None:
            item.add_marker(skip_browser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "topologies: run the module's behaviour tests on every topology (see tests/conftest.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "topology" in metafunc.fixturenames and metafunc.definition.get_closest_marker("topologies"):
        metafunc.parametrize(
            "topology",
            [
                pytest.param(name, id=name, marks=() if name == "standalone" else pytest.mark.slow)
                for name in TOPOLOGIES
            ],
            indirect=True,
        )


@pytest.fixture(scope="module", autouse=True)
def _near_cache_listeners_end_with_their_module() -> Iterator[None]:
    """Stop the near-caches' invalidation listeners after each module (the next read starts
    them again): their heartbeat PINGs would otherwise land in a later module's count of the
    commands sent to the shared server."""
    yield
    close_all()


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


@pytest.fixture(scope="session")
def replicated_topology() -> Iterator[Replicated]:
    """A primary with one replica, for the whole session."""
    yield from started(Replicated())


@pytest.fixture(scope="session")
def sentinel_topology() -> Iterator[Sentinels]:
    """A primary, a replica and three Sentinels, for the whole session."""
    yield from started(Sentinels())


@pytest.fixture(scope="session")
def cluster_topology() -> Iterator[Cluster]:
    """A Redis Cluster of three primaries with a replica each, for the whole session."""
    yield from started(Cluster())


@pytest.fixture(scope="session")
def standalone_topology(redis_server: RedisServer) -> Iterator[Standalone]:
    topology = Standalone(redis_server)
    yield topology
    topology.stop()


@pytest.fixture
def topology(request: pytest.FixtureRequest, standalone_topology: Standalone) -> Topology:
    """The deployment the test's caches use: standalone unless the module opts in."""
    name = getattr(request, "param", "standalone")
    if name == "standalone":
        return standalone_topology
    found: Topology = request.getfixturevalue(_TOPOLOGY_FIXTURES[name])
    return found


@pytest.fixture
def redis_client(topology: Topology) -> Iterator[Any]:
    """A plain redis-py client on db 0 of freshly emptied servers; stats reset.

    A ``redis.cluster.RedisCluster`` on the Cluster; the primary's client elsewhere.
    """
    topology.flush()
    client = topology.client()
    yield client
    client.close()


@pytest.fixture
def make_sync_cache(topology: Topology, redis_client: Any) -> Iterator[Callable[..., RedisCache]]:
    """Build djredis caches on the test topology: ``make_sync_cache(OPTIONS={...}, ...)``.

    Caches on a topology that reads from replicas wait for replication after every call
    (``ReadYourWrites``), so that tests may read what they just wrote.
    """
    made: list[RedisCache] = []

    def factory(location: Any = None, **params: Any) -> RedisCache:
        if location is None:
            location = topology.location
            params["OPTIONS"] = {**topology.options, **(params.get("OPTIONS") or {})}
        cache = RedisCache(location, params)
        made.append(cache)
        return topology.read_your_writes(cache)  # type: ignore[no-any-return]

    yield factory
    for cache in made:
        cache.close()


@pytest.fixture
def make_cache(make_sync_cache: Callable[..., RedisCache]) -> Callable[..., RedisCache]:
    """Build djredis caches: ``make_cache(OPTIONS={...}, KEY_PREFIX=...)``."""
    return make_sync_cache


@pytest.fixture
def cache(make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A djredis cache with default options."""
    return make_cache()


@pytest.fixture
def stats(topology: Topology, redis_client: Any) -> Callable[[], dict[str, int]]:
    """Return a function giving the servers' command counts since the test started."""
    return topology.commandstats


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
