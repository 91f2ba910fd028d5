"""One topology per server set per process: every cache alias and component with the same
connection settings routes through the same object (so they all follow one primary after
a failover), and any setting that changes how a connection is made gives another one.

Nothing here connects: building a cache or a topology never talks to Redis.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from djredis._config.server import SentinelSettings
from djredis.cache import RedisCache
from djredis.channels.config import read_layer_config
from tests.failover.test_topologies_failover import wait_until

SENTINEL = "redis+sentinel://u:p@127.0.0.1:26391,127.0.0.1:26392/svc/0"
PLAIN = "redis://u:p@127.0.0.1:6391/0"


def cache(location: str, options: dict[str, Any] | None = None, **params: Any) -> RedisCache:
    return RedisCache(location, {"OPTIONS": options or {}, **params})


@pytest.mark.parametrize("location", [PLAIN, SENTINEL, "redis+cluster://127.0.0.1:7391"])
def test_aliases_that_differ_only_in_key_prefix_share_one_topology(location: str) -> None:
    first = cache(location, {"SERIALIZER": "json"}, KEY_PREFIX="a")
    second = cache(location, {"SERIALIZER": "pickle"}, KEY_PREFIX="b", TIMEOUT=5)
    near = cache(location, {"NEAR_CACHE": {"MAX_STALENESS": 1.0}}, KEY_PREFIX="c")
    assert first.topology is second.topology is near.topology


@pytest.mark.parametrize(
    ("location", "options"),
    [
        (PLAIN.replace("/0", "/1"), {}),  # another db
        (PLAIN.replace("u:p", "u:q"), {}),  # another password
        (PLAIN.replace("u:p", "v:p"), {}),  # another user
        (PLAIN.replace("redis://", "rediss://"), {}),  # TLS
        (PLAIN.replace("redis://", "rediss://"), {"ssl_cert_reqs": "none"}),
        (PLAIN, {"SOCKET_TIMEOUT": 0.25}),
        (PLAIN, {"SOCKET_CONNECT_TIMEOUT": 0.25}),
        (PLAIN, {"CONNECTION_POOL_KWARGS": {"max_connections": 7}}),
        (PLAIN, {"CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool"}),
        (PLAIN, {"RETRY_ON_TIMEOUT": True}),
        (PLAIN.replace("6391", "6392"), {}),
    ],
)
def test_any_connection_setting_gives_a_topology_of_its_own(
    location: str, options: dict[str, Any]
) -> None:
    assert cache(PLAIN).topology is not cache(location, options).topology


@pytest.mark.parametrize(
    ("location", "options"),
    [
        (SENTINEL.replace("/svc/", "/other/"), {}),  # another service
        (SENTINEL.replace("/0", "/2"), {}),
        (SENTINEL.replace("u:p", "u:q"), {}),
        (SENTINEL.replace(",127.0.0.1:26392", ""), {}),  # other Sentinels
        (SENTINEL, {"READ_FROM_REPLICAS": True}),
        (SENTINEL, {"SENTINEL_KWARGS": {"password": "sentinel-secret"}}),
    ],
)
def test_any_sentinel_setting_gives_a_topology_of_its_own(
    location: str, options: dict[str, Any]
) -> None:
    assert cache(SENTINEL).topology is not cache(location, options).topology


def test_the_channel_layer_routes_through_the_caches_topology() -> None:
    layer = read_layer_config({"hosts": [PLAIN]})
    (shard,) = layer.shards
    assert shard is cache(PLAIN).topology


def test_closing_one_alias_leaves_the_shared_topology_to_the_others() -> None:
    first, second = cache(SENTINEL, KEY_PREFIX="a"), cache(SENTINEL, KEY_PREFIX="b")
    topology = first.topology
    first.close()
    assert second.topology is topology
    assert cache(SENTINEL).topology is topology  # still the process's one


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_keeps_the_topology_with_fresh_locks() -> None:
    topology = cache(SENTINEL).topology
    assert isinstance(topology.__dict__["_settings"], SentinelSettings)
    lock = topology.__dict__["_lock"]
    lock.acquire()  # as if a parent thread held it at fork time
    try:
        pid = os.fork()
        if pid == 0:  # the child: must not deadlock on the parent's lock
            code = 0 if cache(SENTINEL).topology is topology else 1
            code |= 0 if topology.__dict__["_lock"].acquire(timeout=2) else 2
            os._exit(code)
    finally:
        lock.release()
    status: list[int] = []

    def ended() -> bool:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(code)
        return bool(done)

    wait_until(ended, 10, "the child to exit")
    assert os.waitstatus_to_exitcode(status[0]) == 0
