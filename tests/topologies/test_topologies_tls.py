"""TLS with ACL credentials, on one server, on Sentinel and on Redis Cluster.

Every server here listens on a TLS port only (``--port 0``), signed by a throw-away CA, and
requires the test ACL user; the Sentinels and the cluster bus speak TLS too. djredis is
configured the way the README shows: ``rediss://``, ``rediss+sentinel://`` and
``rediss+cluster://`` locations with the CA in ``OPTIONS['ssl_ca_certs']``.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._topologies import PASSWORD, USERNAME, Cluster, Node, Sentinels, Tls, started

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls() -> Iterator[Tls]:
    with tempfile.TemporaryDirectory(prefix="djredis-tls-") as directory:
        yield Tls.create(Path(directory))


@pytest.fixture(scope="module")
def tls_server(tls: Tls) -> Iterator[Node]:
    node = Node(tls=tls).start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def tls_sentinel(tls: Tls) -> Iterator[Sentinels]:
    yield from started(Sentinels(sentinels=1, tls=tls))


@pytest.fixture(scope="module")
def tls_cluster(tls: Tls) -> Iterator[Cluster]:
    yield from started(Cluster(primaries=3, replicas=0, tls=tls))


def round_trip(cache: RedisCache) -> dict[str, Any]:
    """Exercise the sync and the async API; return what came back."""
    data = {f"k{i}": i for i in range(30)}
    cache.set_many(data, 60)
    cache.incr("k1", 10)

    async def scenario() -> Any:
        await cache.aset("async", "over TLS")
        return await cache.aget_many(["async", "k1"])

    loop = asyncio.new_event_loop()
    try:
        got_async = loop.run_until_complete(scenario())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())  # djredis closes its connections
        # A TLS transport needs a few more loop iterations to finish closing (reported to
        # the maintainer of _loops.py: aclose() could wait for connection_lost).
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
    result = {"many": cache.get_many(list(data)), "async": got_async}
    cache.clear()
    result["after_clear"] = cache.get_many(list(data))
    return result


EXPECTED = {
    "many": {**{f"k{i}": i for i in range(30)}, "k1": 11},
    "async": {"async": "over TLS", "k1": 11},
    "after_clear": {},
}


def test_tls_and_acl_on_one_server(tls: Tls, tls_server: Node) -> None:
    location = f"rediss://{USERNAME}:{PASSWORD}@127.0.0.1:{tls_server.port}/0"
    options = {"ssl_ca_certs": str(tls.ca)}
    cache = RedisCache(location, {"KEY_PREFIX": "tls", "OPTIONS": options})
    assert round_trip(cache) == EXPECTED


def test_tls_and_acl_with_sentinel(tls_sentinel: Sentinels) -> None:
    options = tls_sentinel.options  # reads go to the replica, which is fed over TLS
    cache = RedisCache(tls_sentinel.location, {"KEY_PREFIX": "tls", "OPTIONS": options})
    assert round_trip(tls_sentinel.read_your_writes(cache)) == EXPECTED
    assert cache.client.get_client().ping()  # redis-py's Sentinel client, over TLS too


def test_tls_and_acl_with_cluster(tls_cluster: Cluster) -> None:
    options = tls_cluster.options
    cache = RedisCache(tls_cluster.location, {"KEY_PREFIX": "tls", "OPTIONS": options})
    assert round_trip(cache) == EXPECTED
    assert cache.client.get_client().ping()  # redis-py's RedisCluster, over TLS too


def test_a_wrong_ca_is_refused(tls_server: Node, tmp_path: Path) -> None:
    other = Tls.create(tmp_path)
    location = f"rediss://{USERNAME}:{PASSWORD}@127.0.0.1:{tls_server.port}/0"
    cache = RedisCache(location, {"OPTIONS": {"ssl_ca_certs": str(other.ca)}})
    with pytest.raises(Exception, match=r"(?i)certificate"):
        cache.get("k")
