"""django-redis-sessions' other settings forms: Sentinel, 'pool' and a connection object.

Its README (README.rst of martinrusev/django-redis-sessions) documents them next to the
SESSION_REDIS dict; its settings module (redis_sessions/settings.py) reads
SESSION_REDIS_CONNECTION_OBJECT and SESSION_REDIS_SENTINEL_PASSWORD. Each test cites the
line it holds djredis to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel

from djredis.sessions import SessionStore, user_sessions
from tests._servers import RedisServer
from tests._sessions import Sessions
from tests._topologies import PASSWORD, SENTINEL_PASSWORD, SERVICE, USERNAME, Sentinels, started


def save_one(ops: Sessions, **data: Any) -> str:
    store = SessionStore()
    store.update(data or {"where": "here"})
    ops.save(store)
    assert store.session_key is not None
    return store.session_key


def load(ops: Sessions, key: str) -> dict[str, Any]:
    return ops.load(SessionStore(key))


@pytest.fixture(autouse=True)
def engine(settings: Any) -> None:
    settings.SESSION_ENGINE = "djredis.sessions"


# -- Redis Sentinel -------------------------------------------------------------------------


def sentinel_settings(settings: Any, sentinels: Sentinels) -> None:
    """README.rst, "Redis Sentinel":
    ``SESSION_REDIS_SENTINEL_LIST = [(host, port), (host, port), (host, port)]``
    ``SESSION_REDIS_SENTINEL_MASTER_ALIAS = 'sentinel-master'``
    with the data nodes' credentials in SESSION_REDIS and the Sentinels' password in
    SESSION_REDIS_SENTINEL_PASSWORD (redis_sessions/settings.py)."""
    settings.SESSION_REDIS = {
        "prefix": "session",
        "db": 0,
        "username": USERNAME,
        "password": PASSWORD,
        "socket_timeout": 0.5,
    }
    sentinel_list = [("127.0.0.1", port) for port in sentinels.sentinel_ports]
    settings.SESSION_REDIS_SENTINEL_LIST = sentinel_list
    settings.SESSION_REDIS_SENTINEL_MASTER_ALIAS = SERVICE
    settings.SESSION_REDIS_SENTINEL_PASSWORD = SENTINEL_PASSWORD


def sentinel_object_settings(settings: Any, sentinels: Sentinels) -> Iterator[None]:
    """redis_sessions/settings.py: ``SESSION_REDIS_CONNECTION_OBJECT``, here what a
    project builds for Sentinel: ``Sentinel(...).master_for(service)``."""
    sentinel = Sentinel(
        [("127.0.0.1", port) for port in sentinels.sentinel_ports],
        sentinel_kwargs={"password": SENTINEL_PASSWORD},
        username=USERNAME,
        password=PASSWORD,
        socket_timeout=0.5,
    )
    client = sentinel.master_for(SERVICE)
    settings.SESSION_REDIS = {"prefix": "session"}
    settings.SESSION_REDIS_CONNECTION_OBJECT = client
    yield
    client.close()
    for each in sentinel.sentinels:
        each.close()


FORMS: dict[str, Callable[[Any, Sentinels], Any]] = {
    "sentinel_list": sentinel_settings,
    "sentinel_connection_object": sentinel_object_settings,
}


@pytest.fixture(params=sorted(FORMS))
def sentinel_form(request: pytest.FixtureRequest, settings: Any) -> Iterator[Sentinels]:
    """A fresh primary, replica and three Sentinels (the test kills the primary), with
    the engine configured by one of django-redis-sessions' Sentinel forms."""
    for sentinels in started(Sentinels()):
        configured = FORMS[str(request.param)](settings, sentinels)
        if isinstance(configured, Iterator):
            next(configured)
        yield sentinels
        if isinstance(configured, Iterator):
            next(configured, None)


def on_primary(sentinels: Sentinels, key: str) -> bool:
    with sentinels.current_primary().client() as client:
        return bool(client.exists(f"session:{key}"))


@pytest.mark.slow
def test_sentinel_forms_follow_the_primary_through_a_failover(
    sentinel_form: Sentinels, ops: Sessions
) -> None:
    sentinels = sentinel_form
    before = save_one(ops, _auth_user_id="7")
    assert on_primary(sentinels, before)
    sentinels.wait_replicated()
    victim = sentinels.current_primary()
    victim.kill()
    deadline = time.monotonic() + 30
    while sentinels.master_address()[1] == victim.port:
        assert time.monotonic() < deadline, "no promotion"
        time.sleep(0.1)
    while True:  # writes resume once the client has found the promoted replica
        try:
            after = save_one(ops, _auth_user_id="7")
            break
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            assert time.monotonic() < deadline, "writes did not resume"
            time.sleep(0.1)
    assert sentinels.current_primary().port != victim.port
    assert on_primary(sentinels, after)
    assert load(ops, before) == {"_auth_user_id": "7"}
    assert len(user_sessions("7")) == 2


@pytest.mark.parametrize(
    ("top_level", "message"),
    [
        (
            {"SESSION_REDIS_SENTINEL_LIST": [("a", 26379)]},
            "without SESSION_REDIS_SENTINEL_MASTER_ALIAS",
        ),
        ({"SESSION_REDIS_SENTINEL_MASTER_ALIAS": "m"}, "without SESSION_REDIS_SENTINEL_LIST"),
        (
            {
                "SESSION_REDIS_SENTINEL_LIST": [("a", 26379)],
                "SESSION_REDIS_SENTINEL_MASTER_ALIAS": "m",
                "SESSION_REDIS": {"host": "b", "port": 6379},
            },
            r"SESSION_REDIS_SENTINEL_LIST and SESSION_REDIS\['host'\] and "
            r"SESSION_REDIS\['port'\] all name the sessions' server",
        ),
        (
            {"SESSION_REDIS_SENTINEL_PASSWORD": "x", "SESSION_REDIS": {"url": "redis://a"}},
            "only applies with SESSION_REDIS_SENTINEL_LIST",
        ),
        (
            {"SESSION_REDIS": {"url": "redis://a", "sentinel_kwargs": {"password": "x"}}},
            "only applies with SESSION_REDIS_SENTINEL_LIST",
        ),
        (
            {
                "SESSION_REDIS_SENTINEL_LIST": ["a:26379"],
                "SESSION_REDIS_SENTINEL_MASTER_ALIAS": "m",
                "SESSION_REDIS_SENTINEL_PASSWORD": "x",
                "SESSION_REDIS": {"sentinel_kwargs": {"password": "y"}},
            },
            "differ; keep one",
        ),
    ],
)
def test_incomplete_or_contradictory_sentinel_settings_say_what_to_fix(
    settings: Any, top_level: dict[str, Any], message: str
) -> None:
    for name, value in top_level.items():
        setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()


# -- SESSION_REDIS['pool'] ------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["pool", "POOL"])
def test_a_pool_of_one_server_is_that_server(
    settings: Any, redis_server: RedisServer, ops: Sessions, spelling: str
) -> None:
    """README.rst, "Redis Pool (Horizontal partitioning)": ``'pool': [{'host': ...,
    'port': 6379, 'db': 0, 'password': None, 'unix_domain_socket_path': None, 'url': None,
    'weight': 1}, ...]`` next to 'prefix' and 'socket_timeout' (redis_sessions/settings.py
    reads it as 'POOL')."""
    redis_server.client(11).flushdb()
    settings.SESSION_REDIS = {
        "prefix": "session",
        "socket_timeout": 1,
        "retry_on_timeout": False,
        spelling: [
            {
                "host": "127.0.0.1",
                "port": redis_server.port,
                "db": 11,
                "password": None,
                "unix_domain_socket_path": None,
                "url": None,
                "weight": 1,
            }
        ],
    }
    key = save_one(ops)
    assert redis_server.client(11).exists(f"session:{key}") == 1
    assert load(ops, key) == {"where": "here"}


def test_a_pool_of_several_servers_is_refused_with_the_setting_to_write(settings: Any) -> None:
    """README.rst, "Redis Pool": "Splits sessions between Redis instances based on the
    session key" — djredis leaves that to Redis Cluster and says so."""
    settings.SESSION_REDIS = {
        "prefix": "session",
        "pool": [
            {"host": "localhost3", "port": 6379, "db": 0, "weight": 1},
            {"url": "redis://localhost2:6379/0", "host": None, "weight": 1},
        ],
    }
    with pytest.raises(ImproperlyConfigured) as raised:
        SessionStore()
    message = str(raised.value)
    assert "lists 2 servers (localhost3:6379, redis://localhost2:6379/0)" in message
    assert "'location': 'redis+cluster://host1:6379,host2:6379'" in message


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ([], "must be a list of servers"),
        ("redis://a", "must be a list of servers"),
        ([{"hots": "a"}], "hots not accepted in an entry"),
        ([{"host": "a", "url": "redis://b"}], "names the server twice"),
    ],
)
def test_a_bad_pool_says_what_is_wrong(settings: Any, pool: Any, message: str) -> None:
    settings.SESSION_REDIS = {"pool": pool}
    with pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()


# -- SESSION_REDIS_CONNECTION_OBJECT --------------------------------------------------------


def test_a_redis_client_object_gives_its_server_and_db(
    settings: Any, redis_server: RedisServer, ops: Sessions
) -> None:
    """redis_sessions/settings.py: ``SESSION_REDIS_CONNECTION_OBJECT = getattr(settings,
    'SESSION_REDIS_CONNECTION_OBJECT', None)``, used as the client as it is. djredis reads
    its server, db and credentials and opens its own connections."""
    redis_server.client(12).flushdb()
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=12, decode_responses=True)
    settings.SESSION_REDIS = {"prefix": "session"}
    settings.SESSION_REDIS_CONNECTION_OBJECT = client
    key = save_one(ops)
    assert client.exists(f"session:{key}") == 1
    assert load(ops, key) == {"where": "here"}  # decode_responses is the object's own
    client.close()


def test_a_connection_pool_over_a_unix_socket_gives_its_path(
    settings: Any, redis_unix_server: RedisServer, ops: Sessions
) -> None:
    pool = redis.ConnectionPool(
        connection_class=redis.UnixDomainSocketConnection,
        path=redis_unix_server.socket_path,
        db=2,
    )
    settings.SESSION_REDIS_CONNECTION_OBJECT = pool
    key = save_one(ops)
    assert redis_unix_server.client(2).exists(f"session:{key}") == 1
    pool.disconnect()


@pytest.mark.parametrize(
    ("session_redis", "obj", "message"),
    [
        (None, "redis://a:6379/0", "must be a redis.Redis client"),
        (
            {"prefix": "s", "db": 3},
            redis.Redis(),
            r"brings its own connection settings; remove db from SESSION_REDIS",
        ),
        (
            {"url": "redis://a"},
            redis.Redis(),
            r"SESSION_REDIS_CONNECTION_OBJECT and SESSION_REDIS\['url'\] all name",
        ),
    ],
)
def test_an_unusable_connection_object_says_what_to_write(
    settings: Any, session_redis: Any, obj: Any, message: str
) -> None:
    if session_redis is not None:
        settings.SESSION_REDIS = session_redis
    settings.SESSION_REDIS_CONNECTION_OBJECT = obj
    with pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()
