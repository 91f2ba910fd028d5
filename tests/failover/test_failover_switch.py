"""After a failover every component follows the new primary, and no later than redis-py.

A manual failover (``SENTINEL FAILOVER``: the old primary stays up, a primary still, until
the Sentinels demote it seconds later), a killed primary, and a Cluster primary failover.
Side by side in one process: redis-py's ``Sentinel.master_for`` client and djredis's
caches (sync and async, one with the near-cache), each reading ``flag`` and writing keys
of its own in a loop. A writer outside them writes ``flag = 2`` on the new primary as soon
as a Sentinel names it (``accepted``: when that write's reply came).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._near import STALENESS, caches, warm
from tests._switch import (
    AsyncClient,
    Client,
    fail_over,
    landed_writes,
    redis_py_primary,
    run_clients,
    stop_clients,
    switch_options,
    write_when_named,
)
from tests._topologies import Cluster, Sentinels, started
from tests.failover.test_topologies_failover import wait_until

pytestmark = pytest.mark.slow

# Scheduling slack on a loaded 2-core machine when comparing two clients' switch times.
SLACK = 0.5
# djredis follows the Sentinels' announcements: it switches within this long of the first
# Sentinel naming the new primary (a round trip, plus that slack), whatever redis-py does.
SWITCH_BOUND = 1.0
DEADLINE = 30.0


@pytest.fixture
def fresh_sentinels() -> Iterator[Sentinels]:
    yield from started(Sentinels())


@pytest.mark.parametrize("kind", ["manual", "killed"])
def test_sentinel_writes_and_primary_reads_switch_when_a_sentinel_names_the_new_primary(
    fresh_sentinels: Sentinels, kind: str
) -> None:
    sentinels = fresh_sentinels
    with sentinels.current_primary().client() as primary:
        primary.set("s:1:flag", 1)
    sentinels.wait_replicated()
    options = switch_options(sentinels)  # primary reads
    cache = RedisCache(sentinels.location, {"KEY_PREFIX": "s", "OPTIONS": options})
    rp = redis_py_primary(sentinels)
    clients = [
        Client(
            "rp",
            lambda: int(rp.get("s:1:flag") or 0),
            lambda i: rp.set(f"s:1:w:rp:{i}", 1),
            "s:1:w:rp:{seq}",
        ),
        Client(
            "sync",
            lambda: cache.get("flag"),
            lambda i: cache.set(f"w:sync:{i}", 1),
            "s:1:w:sync:{seq}",
        ),
        AsyncClient(
            "async",
            lambda: cache.aget("flag"),
            lambda i: cache.aset(f"w:async:{i}", 1),
            "s:1:w:async:{seq}",
        ),
    ]
    stop, threads = run_clients(clients)
    try:
        wait_until(lambda: all(c.reads and c.reads[-1][1] == 1 for c in clients), 5, "load")
        began = time.monotonic()
        _, new = fail_over(sentinels, kind)
        _, accepted = write_when_named(sentinels, new, "s:1:flag", DEADLINE)
        # Until redis-py has switched too (the old primary demoted, for a manual failover).
        wait_until(lambda: clients[0].reads[-1][1] == 2, DEADLINE, "redis-py to switch")
        time.sleep(0.5)
    finally:
        stop_clients(stop, threads)
    rp.close()
    landed = landed_writes(new, "s")
    switched = {c.name: (c.reads_switched(), c.writes_switched(landed)) for c in clients}
    print(f"\n{kind} failover: new primary named, flag=2 accepted at {accepted - began:.2f} s")
    print("seconds after the failover began when (reads, writes) switched:")
    for name, (reads, writes) in switched.items():
        print(f"  {name:<6} {reads and reads - began:.2f} {writes and writes - began:.2f}")
    rp_reads, rp_writes = switched["rp"]
    assert rp_reads is not None
    assert rp_writes is not None
    for name in ("sync", "async"):
        reads, writes = switched[name]
        assert reads is not None, name
        assert reads <= rp_reads + SLACK, name
        assert reads <= accepted + SWITCH_BOUND, name
        assert writes is not None, name
        assert writes <= rp_writes + SLACK, name
        assert writes <= accepted + SWITCH_BOUND, name


def stale_reads(near: RedisCache, key: str, write: Callable[[], float]) -> tuple[int, int]:
    """Read ``key`` through ``near`` in a loop while ``write`` runs, then 2 s more; return
    (reads started past accepted + MAX_STALENESS that returned the old value, reads)."""
    reads: list[tuple[float, Any]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            started_at = time.monotonic()
            reads.append((started_at, near.get(key)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        accepted = write()
        time.sleep(2.0)
    finally:
        stop.set()
        reader.join(10)
    late = [value for started_at, value in reads if started_at > accepted + STALENESS]
    return sum(1 for value in late if value == 1), len(late)


@pytest.mark.parametrize("kind", ["manual", "killed"])
def test_the_near_cache_never_serves_past_max_staleness_after_a_sentinel_failover(
    fresh_sentinels: Sentinels, kind: str
) -> None:
    sentinels = fresh_sentinels
    near, plain = caches(sentinels.location, sentinels.options)  # reads from replicas
    plain.set("flag", 1)
    sentinels.wait_replicated()
    warm(near, "flag")

    def write() -> float:
        _, new = fail_over(sentinels, kind)
        return write_when_named(sentinels, new, near.make_key("flag"), DEADLINE)[1]

    stale, late = stale_reads(near, "flag", write)
    assert late > 0
    assert stale == 0
    warm(near, "flag")  # serving locally again, from the new primary
    assert near.get("flag") == 2


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    yield from started(Cluster())


def test_the_near_cache_never_serves_past_max_staleness_after_a_cluster_failover(
    fresh_cluster: Cluster,
) -> None:
    cluster = fresh_cluster
    near, plain = caches(cluster.location, cluster.options)
    plain.set("flag", 1)
    key = near.make_key("flag")
    old = cluster.node_for(key)
    cluster.wait_replicated()
    warm(near, "flag")
    replica = next(
        node
        for node in cluster.data_nodes()
        if node is not old
        and cluster.admin(node).info("replication").get("master_port") == old.port
    )

    def write() -> float:
        cluster.admin(replica).execute_command("CLUSTER", "FAILOVER")
        wait_until(lambda: cluster.node_for(key) is replica, DEADLINE, "the promotion")
        with replica.client() as client:
            client.set(key, 2)
        return time.monotonic()

    stale, late = stale_reads(near, "flag", write)
    assert late > 0
    assert stale == 0
    warm(near, "flag")
    assert near.get("flag") == 2
