"""LOCATION and OPTIONS parsing, validation errors, defaults and pool sharing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis.connection import (
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)

from djredis._config.locations import parse_locations
from djredis._config.options import parse_connection_settings
from djredis._io import bridge as _connections
from djredis.cache import RedisCache
from tests._servers import RedisServer, free_port

GUIDE_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SOCKET_CONNECT_TIMEOUT": 5,
    "SOCKET_TIMEOUT": 5,
    "RETRY_ON_TIMEOUT": True,
    "MAX_CONNECTIONS": 50,
    "CONNECTION_POOL_CLASS_KWARGS": {"max_connections": 50},
}


def kwargs_of(location: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return parse_connection_settings(location, options, setting="OPTIONS").primary.kwargs()


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("redis://localhost:6379/0", {"host": "localhost", "port": 6379, "db": 0}),
        ("redis://127.0.0.1:6380/2", {"host": "127.0.0.1", "port": 6380, "db": 2}),
        ("redis://h:1?db=3", {"host": "h", "port": 1, "db": 3}),
        ("redis://alice:s3cret@h:1/4", {"username": "alice", "password": "s3cret", "db": 4}),
        ("redis://:pw@h/0", {"password": "pw"}),
        ("localhost:6390", {"host": "localhost", "port": 6390}),
        ("redis-host", {"host": "redis-host", "port": 6379}),
        ("[::1]:7000", {"host": "::1", "port": 7000}),
        ("/var/run/redis/redis.sock", {"path": "/var/run/redis/redis.sock"}),
        ("unix:///tmp/r.sock?db=5", {"path": "/tmp/r.sock", "db": 5}),
        ("unix://:pw@/tmp/r.sock", {"path": "/tmp/r.sock", "password": "pw"}),
    ],
)
def test_every_location_form_parses(location: str, expected: dict[str, Any]) -> None:
    kwargs = kwargs_of(location)
    assert {k: kwargs.get(k) for k in expected} == expected


def test_location_scheme_picks_the_connection_class() -> None:
    settings = parse_connection_settings(
        ["redis://a", "rediss://b", "unix:///c.sock", "/d.sock"], None, setting="x"
    )
    classes = [s.connection_class for s in (settings.primary, *settings.replicas)]
    assert classes == [
        Connection,
        SSLConnection,
        UnixDomainSocketConnection,
        UnixDomainSocketConnection,
    ]


@pytest.mark.parametrize(
    "location",
    [
        ["redis://p:1/0", "redis://r1:1/0", "redis://r2:1/0"],
        "redis://p:1/0,redis://r1:1/0,redis://r2:1/0",
        "redis://p:1/0; redis://r1:1/0; redis://r2:1/0",
    ],
)
def test_first_location_is_primary_and_the_rest_replicas(location: Any) -> None:
    settings = parse_connection_settings(location, None, setting="x")
    assert settings.primary.kwargs()["host"] == "p"
    assert [r.kwargs()["host"] for r in settings.replicas] == ["r1", "r2"]


def test_guide_options_are_accepted_and_mapped() -> None:
    own = frozenset({"CLIENT_CLASS"})  # the cache's own option: the cache reads it
    settings = parse_connection_settings(
        "redis://localhost:6379/0", GUIDE_OPTIONS, setting="OPTIONS", component_options=own
    )
    kwargs = settings.primary.kwargs()
    assert kwargs["socket_connect_timeout"] == 5
    assert kwargs["socket_timeout"] == 5
    assert kwargs["retry_on_timeout"] is True
    assert kwargs["max_connections"] == 50


def test_defaults_are_chosen_for_the_request_path() -> None:
    kwargs = kwargs_of("redis://localhost")
    assert kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["socket_timeout"] == 1.0
    assert kwargs["protocol"] == 2
    assert kwargs["max_connections"] == 2**31 - 1


def test_lowercase_redis_py_arguments_pass_through() -> None:
    kwargs = kwargs_of("redis://h", {"health_check_interval": 30, "client_name": "web"})
    assert kwargs["health_check_interval"] == 30
    assert kwargs["client_name"] == "web"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"SOCKET_TIMEOUTS": 1}, "SOCKET_TIMEOUTS"),
        ({"MAX_CONECTIONS": 1}, "MAX_CONECTIONS"),
        ({"socket_timout": 1}, "socket_timout"),
        ({"CONNECTION_POOL_KWARGS": {"max_conections": 3}}, "max_conections"),
        ({"MAX_ENTRIES": 1000}, "maxmemory"),
        ({"SENTINEL_KWARGS": {"password": "pw"}}, "redis\\+sentinel://"),
    ],
)
def test_unknown_or_misspelled_option_is_improperly_configured(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        parse_connection_settings("redis://h", options, setting="CACHES['default']['OPTIONS']")


def test_unknown_option_error_lists_the_accepted_ones() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        parse_connection_settings("redis://h", {"SOCKET_TIMEOUTS": 1}, setting="CACHES['x']")
    assert "SOCKET_TIMEOUT" in str(info.value)
    assert "CACHES['x']" in str(info.value)


def test_ssl_option_on_plain_url_says_it_needs_rediss() -> None:
    with pytest.raises(ImproperlyConfigured, match="rediss://"):
        parse_connection_settings("redis://h", {"ssl_cert_reqs": "none"}, setting="x")
    assert kwargs_of("rediss://h", {"ssl_cert_reqs": "none"})["ssl_cert_reqs"] == "none"


def test_same_knob_with_two_values_is_an_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="max_connections"):
        kwargs_of(
            "redis://h", {"MAX_CONNECTIONS": 5, "CONNECTION_POOL_KWARGS": {"max_connections": 6}}
        )
    with pytest.raises(ImproperlyConfigured, match="db"):
        kwargs_of("redis://h/1", {"DB": 2})
    assert kwargs_of("redis://h/1", {"DB": 1})["db"] == 1


@pytest.mark.parametrize("bad", [0, -1, "5", float("inf")])
def test_nonsense_timeouts_are_rejected(bad: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="socket_timeout"):
        kwargs_of("redis://h", {"SOCKET_TIMEOUT": bad})


@pytest.mark.parametrize("location", ["ftp://h", "redis://h:notaport", "h:port", "", [], " , "])
def test_bad_locations_are_improperly_configured(location: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        parse_locations(location) if location != "redis://h:notaport" else kwargs_of(location)


def test_pool_class_by_dotted_path() -> None:
    settings = parse_connection_settings(
        "redis://h",
        {
            "CONNECTION_POOL_CLASS": "redis.connection.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {"timeout": 3},
            "MAX_CONNECTIONS": 7,
        },
        setting="x",
    )
    assert settings.primary.pool_class is BlockingConnectionPool
    pool = _connections.get_pool(settings.primary)
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 7


@pytest.mark.parametrize(
    ("client_class", "advice"),
    [
        ("django_redis.client.HerdClient", "herd"),
        ("django_redis.client.ShardClient", "Cluster"),
        ("django_redis.client.SentinelClient", "Sentinel"),
        ("myapp.MyClient", "DefaultClient"),
    ],
)
def test_other_django_redis_clients_say_what_to_use(client_class: str, advice: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=advice):
        RedisCache("redis://h", {"OPTIONS": {"CLIENT_CLASS": client_class}})


def test_identical_configurations_share_a_pool_and_different_ones_do_not() -> None:
    a = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"SOCKET_TIMEOUT": 2}})
    b = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"SOCKET_TIMEOUT": 2}})
    c = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"SOCKET_TIMEOUT": 3}})
    pool = lambda cache: cache.client.get_client().connection_pool  # noqa: E731
    assert pool(a) is pool(b)
    assert pool(a) is not pool(c)


def test_nothing_connects_when_a_cache_is_built(
    redis_server: RedisServer, redis_client: Any
) -> None:
    before = redis_client.info("stats")["total_connections_received"]
    RedisCache(redis_server.url(), {"OPTIONS": {"SOCKET_TIMEOUT": 4}})
    assert redis_client.info("stats")["total_connections_received"] == before


def test_a_bare_socket_path_location_works(redis_unix_server: RedisServer) -> None:
    cache = RedisCache(redis_unix_server.socket_path, {})
    cache.set("k", "over the socket")
    assert redis_unix_server.client().get(cache.make_key("k")) is not None
    assert cache.get("k") == "over the socket"


def test_acl_credentials_in_the_url(redis_server: RedisServer, redis_client: Any) -> None:
    redis_client.acl_setuser(
        "djredis_user", enabled=True, passwords=["+pw1"], keys=["*"], commands=["+@all"]
    )
    try:
        cache = RedisCache(f"redis://djredis_user:pw1@127.0.0.1:{redis_server.port}/0", {})
        cache.set("acl", 1)
        assert cache.get("acl") == 1
        bad = RedisCache(f"redis://djredis_user:wrong@127.0.0.1:{redis_server.port}/0", {})
        with pytest.raises(Exception, match=r"(?i)invalid|WRONGPASS"):
            bad.get("acl")
    finally:
        redis_client.acl_deluser("djredis_user")


def test_reads_go_to_replicas_and_writes_to_the_primary(redis_server: RedisServer) -> None:
    replica = RedisServer().start()
    try:
        cache = RedisCache([redis_server.url(3), replica.url(3)], {})
        cache.set("routed", "on the primary")
        assert redis_server.client(3).exists(cache.make_key("routed"))
        assert not replica.client(3).exists(cache.make_key("routed"))
        # The "replica" here is an independent server, so a read that reaches it misses.
        assert cache.get("routed") is None
        assert cache.client.get_client(write=True).get(cache.make_key("routed")) is not None
    finally:
        replica.stop()


def test_pools_survive_fork(redis_server: RedisServer, redis_client: Any) -> None:
    cache = RedisCache(redis_server.url(), {})
    cache.set("parent", 1)
    pid = os.fork()
    if pid == 0:  # child: the inherited pool must not reuse the parent's socket
        code = 0
        try:
            cache.set("child", 2)
            code = 0 if cache.get("parent") == 1 else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get("child") == 2
    assert cache.incr("parent") == 2


def test_a_server_that_is_not_there_raises_connection_error() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", {})
    with pytest.raises(RedisConnectionError):
        cache.get("x")
