"""Sessions on Redis Cluster spread over every shard, and their index stays consistent.

Each session hashes to a slot of its own (no engine-wide hash tag); the index of a user is
a key of its own, updated by a command of its own sent together with the session's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from djredis import sessions
from djredis.sessions import SessionStore
from tests._sessions import Sessions, sent_commands

pytestmark = pytest.mark.slow

PREFIX = "spread"
SESSIONS = 10_000


@pytest.fixture
def cluster(settings: Any, cluster_topology: Any) -> Iterator[Any]:
    """Point the engine at the suite's Cluster (3 primaries), emptied first."""
    cluster_topology.flush()
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {
        "location": cluster_topology.location,
        "options": cluster_topology.options,
        "prefix": PREFIX,
    }
    yield cluster_topology
    cluster_topology.flush()


def primaries(cluster: Any) -> list[redis.Redis]:
    return [cluster.admin(node) for node in cluster.primaries()]


def session_count(node: redis.Redis) -> int:
    """Count the sessions on ``node`` (the cluster holds nothing else but user indexes)."""
    return sum(1 for key in node.scan_iter(count=1000) if b"user=" not in key)


def test_ten_thousand_sessions_spread_evenly_over_three_primaries(
    cluster: Any, run: Callable[[Any], Any]
) -> None:
    async def create(count: int) -> None:
        async def one(i: int) -> None:
            store = SessionStore()
            store["n"] = i
            await store.asave()

        for start in range(0, count, 500):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 500, count))))

    run(create(SESSIONS))
    counts = [session_count(node) for node in primaries(cluster)]
    assert len(counts) == 3
    assert sum(counts) == SESSIONS
    shares = [100 * n / SESSIONS for n in counts]
    print(f"\nsessions per primary: {counts} = {', '.join(f'{s:.2f}%' for s in shares)}")
    for share in shares:
        assert 100 / 3 - 5 <= share <= 100 / 3 + 5, shares


def test_a_logged_in_session_and_its_index_live_in_their_own_slots(
    cluster: Any, ops: Sessions
) -> None:
    client = cluster.client()
    stores = []
    for _ in range(20):
        store = SessionStore()
        store["_auth_user_id"] = "7"
        ops.save(store)
        stores.append(store)
    slots = {client.keyslot(f"{PREFIX}:{store.session_key}") for store in stores}
    assert len(slots) > 1
    assert client.zcard(f"{PREFIX}:user=7") == 20
    assert len(sessions.user_sessions("7")) == 20


def test_a_listed_session_that_is_gone_is_pruned_on_read(cluster: Any, ops: Sessions) -> None:
    client = cluster.client()
    kept, deleted, taken = (SessionStore() for _ in range(3))
    for store in (kept, deleted, taken):
        store["_auth_user_id"] = "7"
        ops.save(store)
    ops.delete(deleted)  # leaves its index entry behind: listing drops it
    taken["_auth_user_id"] = "8"  # the session changed hands
    ops.save(taken)
    listed = sessions.user_sessions("7", current_session_key=kept.session_key)
    assert [info.current for info in listed] == [True]
    assert client.zrange(f"{PREFIX}:user=7", 0, -1) == [kept.session_key.encode()]
    assert [info.id for info in sessions.user_sessions("8")] == [
        sessions.session_id(taken.session_key)
    ]


def test_revoking_on_cluster_deletes_only_the_users_sessions(
    cluster: Any, run: Callable[[Any], Any]
) -> None:
    mine = [SessionStore() for _ in range(5)]
    for store in mine:
        store["_auth_user_id"] = "7"
        store.save()
    taken = mine[4]
    taken["_auth_user_id"] = "8"
    taken.save()
    one = sessions.session_id(mine[0].session_key)
    assert run(sessions.arevoke_session("7", one)) is True
    assert sessions.revoke_all_sessions("7", keep=mine[1].session_key) == 2
    assert [SessionStore().exists(s.session_key) for s in mine] == [
        False,
        True,
        False,
        False,
        True,  # user 8's now
    ]
    assert len(sessions.user_sessions("7")) == 1
    assert run(sessions.arevoke_all_sessions("8")) == 1


def test_commands_per_operation_on_cluster(cluster: Any, ops: Sessions) -> None:
    """Each node gets at most one command per operation, all sent before any reply is read."""
    nodes = primaries(cluster)
    for _ in range(10):  # every node gets its connections and scripts (NOSCRIPT, handshakes)
        warm = SessionStore()
        warm["_auth_user_id"] = "7"
        ops.save(warm)
        ops.load(SessionStore(warm.session_key))
        sessions.user_sessions("7")
        ops.delete(warm)
        sessions.revoke_all_sessions("7")
    store = SessionStore()
    store["_auth_user_id"] = "7"
    counts: dict[str, list[str]] = {}
    with sent_commands(*nodes) as counts["create (logged in)"]:
        ops.save(store)
    store["x"] = 1
    with sent_commands(*nodes) as counts["save (logged in)"]:
        ops.save(store)
    anonymous = SessionStore()
    with sent_commands(*nodes) as counts["create (anonymous)"]:
        ops.save(anonymous)
    with sent_commands(*nodes) as counts["load"]:
        ops.load(SessionStore(store.session_key))
    with sent_commands(*nodes) as counts["delete"]:
        ops.delete(anonymous)
    with sent_commands(*nodes) as counts["user_sessions"]:
        sessions.user_sessions("7")
    with sent_commands(*nodes) as counts["revoke_all_sessions"]:
        sessions.revoke_all_sessions("7")
    print(f"\ncommands per operation on Cluster ({ops.api}): {counts}")
    assert sorted(counts["create (logged in)"]) == ["EVALSHA", "EVALSHA"]
    assert sorted(counts["save (logged in)"]) == ["EVALSHA", "EVALSHA"]
    assert counts["create (anonymous)"] == ["EVALSHA"]
    assert counts["load"] == ["HGET"]
    assert counts["delete"] == ["DEL"]
    assert sorted(counts["user_sessions"]) == ["EVALSHA", "HMGET"]
    # The index, then the session and the index again: one script per slot, sent together.
    assert counts["revoke_all_sessions"] in (["EVALSHA"] * 2, ["EVALSHA"] * 3)
