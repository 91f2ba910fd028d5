"""The two windows of a Sentinel failover in which the near-cache served a replaced value
(``test_failover_switch``'s near-cache test failed 1 run in 5-10 through them), held open.

- The Sentinel leading a failover names the promoted replica to ``GET-MASTER-ADDR-BY-NAME``
  (what every client asks, and what the writer here waits for) from the moment it sees the
  promotion; it announces ``+switch-master`` only once the other replicas follow the new
  primary, and the other Sentinels when they hear of it, a tick or two later. djredis
  followed the announcement, so for that long it read from the old primary (a primary
  still, until the Sentinels demote it) and kept what it read. Here the second replica
  cannot follow (it authenticates with a user only the old primary knows) and the other
  Sentinels are paused (SIGSTOP): ``+switch-master`` comes 10 s late. Reads started after
  ``accepted + MAX_STALENESS`` must return the new value.
- Told of new read servers, the near-cache started its new listeners' threads before it
  emptied the local tier; on a loaded machine a thread's start takes a time slice or more,
  and what it held (read from the old server) was served meanwhile. Here a listener's
  start takes 0.3 s; no local hit may come once the move has begun.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from djredis.cache import RedisCache
from djredis.cache.near.tracking import Listener
from tests._near import caches, wait_for, warm
from tests._servers import RedisServer
from tests._topologies import SERVICE, Node, Sentinels, started
from tests.failover.test_failover_switch import stale_reads

# A user the old primary has and the new one lacks: the replica that syncs with it can
# follow the old primary only.
_OLD_ONLY = ("--user", "oldonly", "on", ">oldonly", "~*", "&*", "+@all")
SLOW_START = 0.3


@pytest.fixture
def slow_listener_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener's thread takes ``SLOW_START`` s to start (a loaded machine, exaggerated)."""
    start = Listener.start

    def slow_start(listener: Listener) -> None:
        time.sleep(SLOW_START)
        start(listener)

    monkeypatch.setattr(Listener, "start", slow_start)


@pytest.mark.usefixtures("slow_listener_start")
def test_a_near_cache_told_of_new_read_servers_serves_nothing_it_held_while_it_moves(
    pair: tuple[RedisCache, RedisCache],
) -> None:
    near, plain = pair
    plain.set("flag", 1)
    warm(near, "flag")
    tier = near._near
    (tracked,) = tier._listeners
    other = RedisServer().start()
    try:
        moved = tracked.at("127.0.0.1", other.port)
        # What a topology does after a failover, from the thread that noticed it.
        moving = threading.Thread(target=tier.servers_changed, args=((moved,),))
        moving.start()
        wait_for(lambda: moved in tier._listeners, 5, "the move to begin")
        hits = near.near_stats()["hits"]
        near.get("flag")
        assert near.near_stats()["hits"] == hits
        moving.join(5)
    finally:
        other.stop()


@pytest.fixture
def stalled_failover() -> Iterator[Sentinels]:
    """A primary, a replica to promote, and a replica that can follow only the primary
    (never promoted, ``replica-priority 0``)."""
    sentinels = Sentinels()
    sentinels.servers[0].extra = (*sentinels.servers[0].extra, *_OLD_ONLY)
    stuck = Node(
        extra=("--replica-priority", "0", "--masteruser", "oldonly", "--masterauth", "oldonly")
    )
    sentinels.servers.append(stuck)
    yield from started(sentinels)


def _signal_all(servers: list[Any], sig: signal.Signals) -> None:
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            os.kill(server.process.pid, sig)


def _fail_over_and_write(sentinels: Sentinels, key: str) -> float:
    """Start a manual failover on the first Sentinel; once it names the new primary, write
    ``key = 2`` there; return when that write was accepted."""
    old = sentinels.current_primary()
    new = sentinels.servers[1]
    assert new is not old
    with sentinels.sentinel_client(sentinels.sentinel_ports[0]) as leader:
        leader.execute_command("SENTINEL", "FAILOVER", SERVICE)
        deadline = time.monotonic() + 10
        while int(leader.sentinel_get_master_addr_by_name(SERVICE)[1]) != new.port:
            assert time.monotonic() < deadline, "the leader did not name the new primary"
            time.sleep(0.002)
        with new.client() as client:
            client.set(key, 2)
        accepted = time.monotonic()
        # The window this test is about: the failover is not over.
        assert leader.sentinel_master(SERVICE)["port"] == old.port
    return accepted


@pytest.mark.slow
@pytest.mark.parametrize("reads", ["primary", "replicas"])
def test_the_near_cache_serves_the_new_value_once_a_sentinel_names_the_new_primary(
    stalled_failover: Sentinels, reads: str
) -> None:
    sentinels = stalled_failover
    options = {**sentinels.options, "READ_FROM_REPLICAS": reads == "replicas"}
    near, plain = caches(sentinels.location, options)
    plain.set("flag", 1)
    sentinels.wait_replicated()
    warm(near, "flag")
    others = sentinels.sentinels[1:]
    _signal_all(others, signal.SIGSTOP)
    try:
        stale, late = stale_reads(
            near, "flag", lambda: _fail_over_and_write(sentinels, near.make_key("flag"))
        )
    finally:
        _signal_all(others, signal.SIGCONT)
    assert late > 0
    assert stale == 0
    warm(near, "flag")  # serving locally again, from the new primary
    assert near.get("flag") == 2
    near.close()
    plain.close()
