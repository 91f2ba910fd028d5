"""Primary + replicas, Sentinel and Redis Cluster: how to configure them, and what each
guarantees beyond the behaviour suite (which runs on every topology: tests/conftest.py).

The configuration tests need no server. The others use the session's shared topologies
(tests/_topologies.py) and leave them as they found them; the tests that kill servers are
in test_topologies_failover.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis.cluster import RedisCluster
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.sentinel import SentinelConnectionPool

from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, ConnectionSettings, SentinelSettings
from djredis._routing.cluster import slot_of
from djredis.cache import RedisCache
from tests._listener import silent_port
from tests._servers import free_port
from tests._topologies import (
    PASSWORD,
    SENTINEL_PASSWORD,
    SERVICE,
    USERNAME,
    Cluster,
    Replicated,
    Sentinels,
    free_cluster_port,
)
from tests.contract.test_cache_errors import OPERATIONS


def parse(location: Any, options: dict[str, Any] | None = None) -> Any:
    return parse_connection_settings(
        location,
        options,
        setting="CACHES['default']['OPTIONS']",
        component_options=frozenset({"CLIENT_CLASS"}),  # the cache's own, which it reads
    )


# -- configuration ---------------------------------------------------------------------------


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    settings = parse(
        "redis+sentinel://app:s3cret@s1:26379,s2,[::1]:26380/mymaster/2?socket_timeout=0.5"
    )
    assert isinstance(settings, SentinelSettings)
    assert settings.service_name == "mymaster"
    assert [s.address for s in settings.sentinels] == [
        ("s1", 26379),
        ("s2", 26379),
        ("::1", 26380),
    ]
    node = settings.node.kwargs()
    assert (node["username"], node["password"], node["db"]) == ("app", "s3cret", 2)
    assert node["socket_timeout"] == 0.5
    assert settings.read_from_replicas is False


def test_sentinels_get_their_own_credentials_and_the_nodes_timeouts() -> None:
    settings = parse(
        "redis+sentinel://:data-pw@s1/mymaster",
        {"SENTINEL_KWARGS": {"password": "sentinel-pw"}, "SOCKET_TIMEOUT": 0.3},
    )
    sentinel = settings.sentinels[0].kwargs()
    assert sentinel["password"] == "sentinel-pw"
    assert sentinel["socket_timeout"] == 0.3
    assert "db" not in sentinel
    assert settings.node.kwargs()["password"] == "data-pw"


def test_django_redis_sentinel_settings_work_unchanged() -> None:
    options = {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "SENTINELS": [("s1", 26379), ("s2", 26380)],
        "SENTINEL_KWARGS": {"password": "sentinel-pw"},
        "CONNECTION_POOL_CLASS": "django_redis.pool.SentinelConnectionPool",
    }
    settings = parse("redis://mymaster/1", options)
    assert isinstance(settings, SentinelSettings)
    assert settings.service_name == "mymaster"
    assert settings.node.kwargs()["db"] == 1
    assert [s.address for s in settings.sentinels] == [("s1", 26379), ("s2", 26380)]
    RedisCache("redis://mymaster/1", {"OPTIONS": options})  # CLIENT_CLASS accepted
    replicas = parse(["redis://mymaster/1?is_master=1", "redis://mymaster/1?is_master=0"], options)
    assert replicas.read_from_replicas is True


def test_a_cluster_url_lists_seed_nodes() -> None:
    settings = parse("rediss+cluster://app:s3cret@n1:7000,n2:7001,n3", {"ssl_cert_reqs": "none"})
    assert isinstance(settings, ClusterSettings)
    assert [seed.address for seed in settings.seeds] == [("n1", 7000), ("n2", 7001), ("n3", 6379)]
    assert all(seed.connection_class is SSLConnection for seed in settings.seeds)
    assert settings.seeds[0].kwargs()["username"] == "app"
    assert settings.client_class is RedisCluster


def test_the_cluster_option_turns_ordinary_locations_into_seeds() -> None:
    settings = parse(["redis://n1:7000", "redis://n2:7001"], {"CLUSTER": True})
    assert isinstance(settings, ClusterSettings)
    assert [seed.address for seed in settings.seeds] == [("n1", 7000), ("n2", 7001)]


def test_multi_host_urls_are_not_split_on_commas() -> None:
    assert len(parse("redis+cluster://n1:7000,n2:7001").seeds) == 2
    replicas = parse("redis://p:1/0,redis://r:1/0")
    assert isinstance(replicas, ConnectionSettings)
    assert len(replicas.replicas) == 1


def test_all_reads_can_be_sent_to_the_primary() -> None:
    assert parse(["redis://p", "redis://r"]).read_from_replicas is True
    primary_only = parse(["redis://p", "redis://r"], {"READ_FROM_REPLICAS": False})
    assert primary_only.read_from_replicas is False
    assert parse("redis+sentinel://s/m", {"READ_FROM_REPLICAS": True}).read_from_replicas is True


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("redis+sentinel://s1:26379", {}, "names no Sentinel service"),
        ("redis+sentinel://s1/m/0", {"SENTINELS": [("s", 1)]}, "both name the Sentinels"),
        ("redis+cluster://n1/1", {}, "only database 0"),
        ("redis://n1", {"CLUSTER": True, "DB": 3}, "only database 0"),
        ("redis+cluster://n1", {"CLUSTER": False}, "contradicts"),
        ("redis+cluster://n1", {"READ_FROM_REPLICAS": True}, "primaries"),
        ("redis://h", {"SENTINEL_KWARGS": {}}, "only applies to Sentinel"),
        ("redis://m/0", {"SENTINELS": "s1:26379"}, "list of"),
        (["redis+cluster://n1", "redis://n2"], {}, "mixes"),
        (["redis+cluster://n1", "redis+cluster://:pw@n2"], {}, "disagrees"),
        ("/tmp/redis.sock", {"CLUSTER": True}, "over TCP"),
        ("redis+cluster://n1", {"REDIS_CLIENT_CLASS": "redis.Redis"}, "RedisCluster"),
        ("redis://h", {"CLUSTER": "yes"}, "True or False"),
    ],
)
def test_contradictory_topology_settings_are_improperly_configured(
    location: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse(location, options)


def test_sentinel_client_class_without_sentinels_says_what_to_add() -> None:
    options = {"CLIENT_CLASS": "django_redis.client.SentinelClient"}
    with pytest.raises(ImproperlyConfigured, match="SENTINELS"):
        RedisCache("redis://h", {"OPTIONS": options})


@pytest.mark.parametrize("scheme", ["redis+sentinel", "redis+cluster"])
def test_nothing_connects_when_a_sentinel_or_cluster_cache_is_built(scheme: str) -> None:
    with silent_port() as port:
        path = "/mymaster/0" if scheme == "redis+sentinel" else ""
        RedisCache(f"{scheme}://127.0.0.1:{port.port}{path}", {})
        assert not port.dialed()


def test_log_lines_never_show_the_password() -> None:
    cache = RedisCache("redis+sentinel://app:s3cret@127.0.0.1:1/mymaster/0", {})
    assert "s3cret" not in cache._where
    assert "app:***@" in cache._where


# -- primary + replica -------------------------------------------------------------------------


def _counts(topology: Any, node: Any) -> dict[str, int]:
    stats = topology.admin(node).info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _delta(before: dict[str, int], after: dict[str, int], command: str) -> int:
    return after.get(command, 0) - before.get(command, 0)


@pytest.fixture
def replicated(replicated_topology: Replicated) -> Replicated:
    replicated_topology.flush()
    return replicated_topology


@pytest.mark.slow
def test_reads_go_to_the_replica_and_writes_to_the_primary(replicated: Replicated) -> None:
    cache = RedisCache(replicated.location, {})
    primary = _counts(replicated, replicated.primary)
    replica = _counts(replicated, replicated.replica)
    cache.set("k", 1)
    replicated.wait_replicated()
    assert cache.get("k") == 1
    assert cache.get_many(["k"]) == {"k": 1}
    after_primary = _counts(replicated, replicated.primary)
    after_replica = _counts(replicated, replicated.replica)
    assert _delta(primary, after_primary, "set") == 1
    assert _delta(primary, after_primary, "get") + _delta(primary, after_primary, "mget") == 0
    assert _delta(replica, after_replica, "get") == 1
    assert _delta(replica, after_replica, "mget") == 1
    assert cache.incr("k") == 2  # read-modify-write: on the primary
    assert _delta(primary, _counts(replicated, replicated.primary), "evalsha") == 1


@pytest.mark.slow
def test_read_from_replicas_false_keeps_every_read_on_the_primary(replicated: Replicated) -> None:
    cache = RedisCache(replicated.location, {"OPTIONS": {"READ_FROM_REPLICAS": False}})
    replica = _counts(replicated, replicated.replica)
    cache.set("k", 1)
    assert cache.get("k") == 1  # no replication lag to wait for
    assert cache.get_many(["k"]) == {"k": 1}
    after = _counts(replicated, replicated.replica)
    assert _delta(replica, after, "get") + _delta(replica, after, "mget") == 0


# -- Sentinel ---------------------------------------------------------------------------------


@pytest.fixture
def sentinels(sentinel_topology: Sentinels) -> Sentinels:
    sentinel_topology.flush()
    return sentinel_topology


@pytest.mark.slow
def test_sentinel_finds_the_primary_and_reads_from_the_replica_when_asked(
    sentinels: Sentinels,
) -> None:
    primary, replica = sentinels.current_primary(), sentinels.replicas()[0]
    cache = RedisCache(sentinels.location, {"OPTIONS": sentinels.options})
    before_primary, before_replica = _counts(sentinels, primary), _counts(sentinels, replica)
    cache.set("k", 1)
    sentinels.wait_replicated()
    assert cache.get("k") == 1
    after_primary, after_replica = _counts(sentinels, primary), _counts(sentinels, replica)
    assert _delta(before_primary, after_primary, "set") == 1
    assert _delta(before_replica, after_replica, "get") == 1
    assert _delta(before_primary, after_primary, "get") == 0


@pytest.mark.slow
def test_sentinel_reads_go_to_the_primary_by_default(sentinels: Sentinels) -> None:
    options = {"SENTINEL_KWARGS": {"password": SENTINEL_PASSWORD}}
    cache = RedisCache(sentinels.location, {"OPTIONS": options})
    cache.set("k", 1)
    assert cache.get("k") == 1  # read-your-writes: same server


@pytest.mark.slow
def test_django_redis_sentinel_settings_reach_the_primary(sentinels: Sentinels) -> None:
    options = {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "SENTINELS": [("127.0.0.1", port) for port in sentinels.sentinel_ports],
        "SENTINEL_KWARGS": {"password": SENTINEL_PASSWORD},
        "PASSWORD": PASSWORD,
        "USERNAME": USERNAME,
    }
    cache = RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": options})
    cache.set("k", "via SENTINELS")
    assert sentinels.client().exists(cache.make_key("k")) == 1
    assert cache.get("k") == "via SENTINELS"


@pytest.mark.slow
def test_get_redis_connection_follows_sentinel(sentinels: Sentinels) -> None:
    cache = RedisCache(sentinels.location, {"OPTIONS": sentinels.options})
    client = cache.client.get_client(write=True)
    assert isinstance(client.connection_pool, SentinelConnectionPool)
    client.set("direct", b"1")
    assert sentinels.client().get("direct") == b"1"
    replica = cache.client.get_client(write=False)
    assert replica.connection_pool.is_master is False


@pytest.mark.slow
def test_a_wrong_sentinel_password_is_a_connection_error_naming_the_sentinels(
    sentinels: Sentinels,
) -> None:
    cache = RedisCache(sentinels.location, {"OPTIONS": {"SENTINEL_KWARGS": {"password": "no"}}})
    with pytest.raises(RedisConnectionError, match="no Sentinel names a usable primary"):
        cache.get("k")


@pytest.mark.slow
def test_an_unknown_service_is_a_connection_error(sentinels: Sentinels) -> None:
    location = sentinels.location.replace(f"/{SERVICE}/", "/no-such-service/")
    cache = RedisCache(location, {"OPTIONS": sentinels.options})
    with pytest.raises(RedisConnectionError, match="no-such-service"):
        cache.get("k")


@pytest.mark.slow
def test_async_sentinel_lock_and_client(sentinels: Sentinels) -> None:
    cache = RedisCache(sentinels.location, {"OPTIONS": sentinels.options})

    async def scenario() -> tuple[bool, bytes | None]:
        async with cache.alock("job", timeout=5):
            held = bool(await cache.client.get_async_client().exists(cache.make_key("job")))
        return held, await cache.client.get_async_client().get(cache.make_key("job"))

    assert asyncio.run(scenario()) == (True, None)


# -- Cluster ----------------------------------------------------------------------------------


@pytest.fixture
def cluster(cluster_topology: Cluster) -> Cluster:
    cluster_topology.flush()
    return cluster_topology


@pytest.fixture
def cluster_cache(cluster: Cluster) -> RedisCache:
    return RedisCache(cluster.location, {"KEY_PREFIX": "c"})


def _spread_keys(cache: RedisCache, cluster: Cluster, per_node: int) -> list[str]:
    """Return keys of which ``per_node`` live on each primary, interleaved."""
    by_node: dict[int, list[str]] = {node.port: [] for node in cluster.primaries()}
    i = 0
    while any(len(keys) < per_node for keys in by_node.values()):
        key = f"user:{i}"
        keys = by_node[cluster.node_for(cache.make_key(key)).port]
        if len(keys) < per_node:
            keys.append(key)
        i += 1
    return [key for group in zip(*by_node.values(), strict=True) for key in group]


@pytest.mark.slow
def test_cluster_keys_are_hash_tagged_so_every_version_shares_a_slot(
    cluster_cache: RedisCache,
) -> None:
    assert cluster_cache.make_key("user:1") == "c:1:{user:1}"
    versions = {slot_of(cluster_cache.make_key("user:1", version=v)) for v in range(1, 10)}
    assert len(versions) == 1
    spread = {slot_of(cluster_cache.make_key(f"user:{i}")) for i in range(100)}
    assert len(spread) > 90  # different user keys still spread over the slots


@pytest.mark.slow
@pytest.mark.parametrize("api", ["sync", "async"])
def test_bulk_operations_across_every_node_keep_the_callers_order(
    cluster_cache: RedisCache, cluster: Cluster, api: str
) -> None:
    keys = _spread_keys(cluster_cache, cluster, 5)
    data = {key: i for i, key in enumerate(keys)}
    asked = [keys[3], "missing", *reversed(keys), keys[0]]

    async def scenario() -> tuple[Any, ...]:
        stored = await cluster_cache.aset_many(data, 60)
        got = await cluster_cache.aget_many(asked)
        await cluster_cache.adelete_many(keys[:5])
        return stored, got, await cluster_cache.aget_many(keys)

    if api == "sync":
        stored = cluster_cache.set_many(data, 60)
        got = cluster_cache.get_many(asked)
        cluster_cache.delete_many(keys[:5])
        left = cluster_cache.get_many(keys)
    else:
        stored, got, left = asyncio.run(scenario())
    assert stored == []
    # Dict order = first mention; misses are left out.
    assert list(got) == list(dict.fromkeys([keys[3], *reversed(keys)]))
    assert got == {key: data[key] for key in keys}
    assert left == {key: data[key] for key in keys[5:]}
    assert {cluster.node_for(cluster_cache.make_key(k)).port for k in keys} == {
        node.port for node in cluster.primaries()
    }


@pytest.mark.slow
def test_clear_and_key_scans_visit_every_primary_and_keep_other_prefixes(
    cluster: Cluster,
) -> None:
    mine = RedisCache(cluster.location, {"KEY_PREFIX": "mine"})
    theirs = RedisCache(cluster.location, {"KEY_PREFIX": "theirs"})
    keys = _spread_keys(mine, cluster, 20)
    mine.set_many(dict.fromkeys(keys, 1))
    theirs.set_many(dict.fromkeys(keys, 2))
    assert sorted(mine.keys("user:*")) == sorted(keys)
    assert sorted(mine.iter_keys("user:*", itersize=7)) == sorted(keys)
    assert mine.delete_pattern("user:1*") == len([k for k in keys if k.startswith("user:1")])
    mine.clear()
    assert mine.keys("*") == []
    assert theirs.get_many(keys) == dict.fromkeys(keys, 2)


@pytest.mark.slow
def test_clear_without_a_prefix_flushes_every_primary(cluster: Cluster) -> None:
    bare = RedisCache(cluster.location, {})
    keys = _spread_keys(bare, cluster, 3)
    bare.set_many(dict.fromkeys(keys, 1))
    bare.clear()
    assert all(cluster.admin(node).dbsize() == 0 for node in cluster.primaries())


@pytest.mark.slow
def test_cluster_locks_hold_the_key_on_its_node(
    cluster_cache: RedisCache, cluster: Cluster
) -> None:
    key = cluster_cache.make_key("job")
    with cluster_cache.lock("job", timeout=5):
        assert cluster.client().exists(key)
        assert cluster_cache.lock("job", blocking=False).acquire() is False

    async def scenario() -> bool:
        async with cluster_cache.alock("job", timeout=5):
            return bool(await cluster_cache.client.get_async_client().exists(key))

    assert asyncio.run(scenario()) is True
    assert not cluster.client().exists(key)


@pytest.mark.slow
def test_get_redis_connection_is_a_redis_cluster_client(cluster_cache: RedisCache) -> None:
    client = cluster_cache.client.get_client()
    assert isinstance(client, RedisCluster)
    client.set(cluster_cache.make_key("direct"), b"1")
    assert cluster_cache.get("direct") == 1


class _Migration:
    """Move one hash slot between two primaries the way redis-cli --cluster reshard does."""

    def __init__(self, cluster: Cluster, slot: int) -> None:
        self.cluster = cluster
        self.slot = slot
        self.source = next(n for n in cluster.primaries() if self._owns(n))
        self.target = next(n for n in cluster.primaries() if n is not self.source)

    def _owns(self, node: Any) -> bool:
        slots = self.cluster.admin(node).execute_command("CLUSTER", "SLOTS")
        for start, end, owner, *_ in slots:
            if start <= self.slot <= end:
                return int(owner[1]) == node.port
        return False

    def _id(self, node: Any) -> str:
        node_id = self.cluster.admin(node).execute_command("CLUSTER", "MYID")
        return node_id.decode() if isinstance(node_id, bytes) else str(node_id)

    def start(self) -> None:
        """Put the slot in migration: keys moved so far answer ASK on the source."""
        admin = self.cluster.admin
        admin(self.target).execute_command(
            "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self._id(self.source)
        )
        admin(self.source).execute_command(
            "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self._id(self.target)
        )

    def move(self, key: str) -> None:
        self.cluster.admin(self.source).execute_command(
            "MIGRATE", "127.0.0.1", self.target.port, "", 0, 5000,
            "AUTH2", USERNAME, PASSWORD, "KEYS", key,
        )  # fmt: skip

    def finish(self) -> None:
        """Give the slot to the target on every node: the source now answers MOVED."""
        owner = self._id(self.target)
        for node in self.cluster.primaries():
            self.cluster.admin(node).execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", owner)
        # Make the new owner's claim the newest, so replicas (which only hear of the move
        # by gossip) cannot keep preferring the old owner's equally recent claim.
        self.cluster.admin(self.target).execute_command("CLUSTER", "BUMPEPOCH")

    def back(self) -> None:
        """Return the slot to its first owner, with its keys."""
        self.source, self.target = self.target, self.source
        self.start()
        for key in self.cluster.admin(self.source).execute_command(
            "CLUSTER", "GETKEYSINSLOT", self.slot, 1000
        ):
            self.move(key.decode())
        # Gossip can leave a replica on the old claim for a while: re-assert and wait again.
        for attempt in range(3):
            self.finish()
            try:
                self.cluster.wait_healthy(timeout=20)
                return
            except RuntimeError:
                if attempt == 2:
                    raise


@pytest.fixture
def migration(cluster: Cluster, cluster_cache: RedisCache) -> Iterator[_Migration]:
    move = _Migration(cluster, slot_of(cluster_cache.make_key("moving")))
    yield move
    move.back()


@pytest.mark.slow
@pytest.mark.parametrize("api", ["sync", "async"])
def test_ask_and_moved_during_resharding_are_followed(
    cluster_cache: RedisCache, migration: _Migration, api: str
) -> None:
    def run(call: Callable[[], Any]) -> Any:
        result = call()
        return asyncio.run(result) if asyncio.iscoroutine(result) else result

    get = cluster_cache.get if api == "sync" else cluster_cache.aget
    cluster_cache.set("moving", "value")  # djredis now maps the slot to the source
    migration.start()
    migration.move(cluster_cache.make_key("moving"))
    assert run(lambda: get("moving")) == "value"  # ASK: ASKING + GET on the target
    migration.finish()
    assert run(lambda: get("moving")) == "value"  # MOVED: the map is updated
    cluster_cache.set("moving", "updated")
    assert run(lambda: get("moving")) == "updated"


# -- nothing answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        pytest.param(lambda: f"redis+sentinel://127.0.0.1:{free_port()}/mymaster/0", id="sentinel"),
        pytest.param(lambda: f"redis+cluster://127.0.0.1:{free_cluster_port()}", id="cluster"),
    ],
)
@pytest.mark.parametrize(("name", "call", "fallback"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_with_nothing_answering_ignore_exceptions_gives_misses(
    location: Callable[[], str], name: str, call: Callable[[RedisCache], Any], fallback: Any
) -> None:
    options = {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2}
    assert call(RedisCache(location(), {"KEY_PREFIX": "x", "OPTIONS": options})) == fallback
    with pytest.raises(RedisConnectionError):
        call(
            RedisCache(location(), {"KEY_PREFIX": "x", "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2}})
        )
