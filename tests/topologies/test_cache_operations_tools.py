"""djredis.cache.stats and djredis.cache.keyspace on every topology: the dashboard's and
``manage.py djredis_cache``'s figures and deletions go through the cache's own routing, so
they must hold on replicas, Sentinel and Cluster too (SCAN on every primary, never a
replica; UNLINK of one page's keys wherever their slots are).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import caches

from djredis.cache.keyspace import cache_pattern, scan_pages, unlink
from djredis.cache.stats import server_stats
from tests._topologies import Topology

pytestmark = pytest.mark.topologies


@pytest.fixture
def alias(settings: Any, topology: Topology, redis_client: Any) -> str:
    """CACHES['default'] on the test topology, with a fresh KEY_PREFIX."""
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": topology.location,
            "OPTIONS": topology.options,
            "KEY_PREFIX": f"ops{uuid.uuid4().hex[:6]}",
        }
    }
    return "default"


def test_scan_finds_every_matching_key_and_unlink_deletes_them(alias: str) -> None:
    cache = caches[alias]
    cache.set_many({f"user:{n}": n for n in range(300)})
    cache.set_many({f"page:{n}": n for n in range(50)})

    pages = list(scan_pages(alias, cache_pattern(alias, "user:*"), count=50))
    keys = [key for page in pages for key in page.keys]
    deleted = sum(unlink(alias, page.keys) for page in pages)

    assert len(keys) == len(set(keys)) == 300
    assert deleted == 300
    assert pages[-1].fraction == 1.0
    assert cache.get_many([f"user:{n}" for n in range(300)]) == {}
    assert len(cache.get_many([f"page:{n}" for n in range(50)])) == 50


def test_server_stats_reach_the_primary(alias: str) -> None:
    caches[alias].set("a", 1)
    stats = server_stats(alias)
    assert stats.reachable, stats.error
    assert stats.latency_ms is not None
    assert stats.version is not None
    assert stats.version[0].isdigit()
    assert stats.connected_clients is not None
    assert stats.connected_clients >= 1
