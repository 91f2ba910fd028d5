"""djredis.sessions: Django's session contract, round trips, expiry and errors.

Django's own ``SessionTestsMixin`` runs against the engine in
tests/contract/django_contract/test_django_session_suite.py; these tests add what it does not
check: the commands each operation costs (counted with MONITOR), what lands in Redis, and the
behaviour when Redis is away. Most run twice: through the sync API and the native async one.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import django
import pytest
import redis
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.management import call_command
from django.test import AsyncClient, Client
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import djredis.sessions
from djredis.sessions import SessionStore
from tests._servers import RedisServer, free_port
from tests._sessions import Sessions, index_key, redis_key, sent_commands

pytestmark = pytest.mark.usefixtures("sessions")

# The test views that read the session natively use session.aget(): Django >= 5.0.
ASYNC_SESSION_API = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="the async view uses session.aget(), Django 5.0's"
)


def stored(ops: Sessions, data: dict[str, Any]) -> SessionStore:
    store = SessionStore()
    store.update(data)
    ops.save(store)
    return store


# -- the contract ---------------------------------------------------------------------------


def test_save_then_load_returns_the_data(ops: Sessions) -> None:
    key = stored(ops, {"cart": [1, 2], "name": "ünï"}).session_key
    assert ops.load(SessionStore(key)) == {"cart": [1, 2], "name": "ünï"}


def test_load_of_an_unknown_key_is_empty_and_drops_the_key(ops: Sessions) -> None:
    store = SessionStore("unknownsessionkey")
    assert ops.load(store) == {}
    assert store.session_key is None


def test_exists_follows_create_and_delete(ops: Sessions) -> None:
    store = SessionStore()
    ops.create(store)
    key = store.session_key
    assert ops.exists(store, key) is True
    ops.delete(store)
    assert ops.exists(store, key) is False
    assert ops.exists(store, None) is False


def test_save_does_not_resurrect_a_session_deleted_meanwhile(
    ops: Sessions, sessions: redis.Redis
) -> None:
    store = stored(ops, {"a": 1})
    ops.delete(SessionStore(store.session_key))
    store["a"] = 2
    with pytest.raises(UpdateError):
        ops.save(store)
    assert sessions.exists(redis_key(store.session_key)) == 0


def test_save_with_must_create_refuses_an_existing_key(ops: Sessions) -> None:
    key = stored(ops, {"a": 1}).session_key
    intruder = SessionStore(key)
    intruder["a"] = "overwritten?"
    with pytest.raises(CreateError):
        ops.save(intruder, must_create=True)
    assert ops.load(SessionStore(key)) == {"a": 1}


class CollidingStore(SessionStore):
    """A store whose key generator returns the given keys first (a forced collision)."""

    keys: ClassVar[list[str]] = []

    def _get_new_session_key(self) -> str:
        return self.keys.pop(0) if self.keys else super()._get_new_session_key()


def test_create_retries_with_a_new_key_on_a_collision(ops: Sessions) -> None:
    taken = stored(ops, {"owner": "first"}).session_key
    CollidingStore.keys = [taken]
    store = CollidingStore()
    store["owner"] = "second"
    ops.create(store)
    assert store.session_key != taken
    assert ops.load(SessionStore(taken)) == {"owner": "first"}
    assert ops.load(SessionStore(store.session_key)) == {"owner": "second"}


def test_cycle_key_moves_the_data_and_deletes_the_old_key(sessions: redis.Redis) -> None:
    store = SessionStore()
    store["a"] = 1
    store.save()
    old = store.session_key
    store.cycle_key()
    assert store.session_key != old
    assert sessions.exists(redis_key(old)) == 0
    assert SessionStore(store.session_key).load() == {"a": 1}


def test_flush_deletes_the_session_and_forgets_the_key(
    ops: Sessions, sessions: redis.Redis
) -> None:
    store = stored(ops, {"a": 1})
    key = store.session_key
    if ops.api == "sync":
        store.flush()
    else:
        ops.delete(store)  # aflush() is Django >= 5.0's; it calls adelete() the same way
        store._session_key = None
    assert store.session_key is None
    assert sessions.exists(redis_key(key)) == 0


def test_clearsessions_command_runs_and_keeps_live_sessions(ops: Sessions) -> None:
    key = stored(ops, {"a": 1}).session_key
    call_command("clearsessions")
    assert ops.load(SessionStore(key)) == {"a": 1}


# -- expiry ---------------------------------------------------------------------------------


def test_redis_ttl_is_the_session_cookie_age(
    ops: Sessions, sessions: redis.Redis, settings: Any
) -> None:
    settings.SESSION_COOKIE_AGE = 600
    key = stored(ops, {"a": 1}).session_key
    assert 599_000 < sessions.pttl(redis_key(key)) <= 600_000


def test_set_expiry_seconds_sets_the_redis_ttl(ops: Sessions, sessions: redis.Redis) -> None:
    store = SessionStore()
    store.set_expiry(90)
    ops.save(store)
    assert 89_000 < sessions.pttl(redis_key(store.session_key)) <= 90_000


def test_expire_at_browser_close_keeps_the_cookie_age_on_the_server(
    ops: Sessions, sessions: redis.Redis, settings: Any
) -> None:
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    settings.SESSION_COOKIE_AGE = 300
    store = SessionStore()
    store.set_expiry(0)
    ops.save(store)
    assert store.get_expire_at_browser_close() is True
    assert 299_000 < sessions.pttl(redis_key(store.session_key)) <= 300_000


def test_an_expiry_in_the_past_ends_the_session_at_once(
    ops: Sessions, sessions: redis.Redis
) -> None:
    store = stored(ops, {"a": 1})
    store.set_expiry(-10)
    ops.save(store)
    assert sessions.exists(redis_key(store.session_key)) == 0
    assert ops.load(SessionStore(store.session_key)) == {}


def test_a_session_is_gone_once_its_expiry_passes(ops: Sessions) -> None:
    store = SessionStore()
    store["a"] = 1
    store.set_expiry(1)
    ops.save(store)
    deadline = time.monotonic() + 5
    while ops.load(SessionStore(store.session_key)) != {}:
        assert time.monotonic() < deadline, "the session did not expire"
        time.sleep(0.05)


# -- encoding -------------------------------------------------------------------------------


def test_data_is_stored_with_session_serializer_json_by_default(
    ops: Sessions, sessions: redis.Redis
) -> None:
    key = stored(ops, {"a": [1, "b"]}).session_key
    assert json.loads(sessions.hget(redis_key(key), "d")) == {"a": [1, "b"]}


class PickleSerializer:
    """A SESSION_SERIALIZER keeping Python types (Django removed its own in 5.0)."""

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def test_session_serializer_setting_is_used(ops: Sessions, settings: Any) -> None:
    settings.SESSION_SERIALIZER = "tests.contract.sessions.test_sessions.PickleSerializer"
    key = stored(ops, {"t": (1, 2), "s": {3}}).session_key
    assert ops.load(SessionStore(key)) == {"t": (1, 2), "s": {3}}


def test_a_value_the_serializer_rejects_raises_before_any_write(
    ops: Sessions, sessions: redis.Redis
) -> None:
    store = SessionStore()
    store["when"] = object()
    with pytest.raises(TypeError):
        ops.save(store)
    assert sessions.dbsize() == 0


def test_undecodable_data_is_an_empty_session_and_a_log_line(
    ops: Sessions, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SESSION_SERIALIZER = "tests.contract.sessions.test_sessions.PickleSerializer"
    key = stored(ops, {"t": (1, 2)}).session_key
    settings.SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
    store = SessionStore(key)
    with caplog.at_level(logging.WARNING, "djredis.sessions"):
        assert ops.load(store) == {}
    assert store.session_key is None
    assert "cannot be decoded" in caplog.text


def test_a_foreign_key_at_the_session_key_is_an_empty_session(
    ops: Sessions, sessions: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    sessions.set(redis_key("foreignsessionkey"), "a string, not a djredis session")
    with caplog.at_level(logging.WARNING, "djredis.sessions"):
        assert ops.load(SessionStore("foreignsessionkey")) == {}
    assert "not a djredis session" in caplog.text


# -- round trips: the commands the client sends (MONITOR) ---------------------------------


@pytest.fixture
def warm(ops: Sessions, sessions: redis.Redis) -> None:
    """Load every script and open the connections, so the counts below are the steady state."""
    store = stored(ops, {"_auth_user_id": "1"})
    ops.delete(store)


@pytest.mark.usefixtures("warm")
def test_load_is_one_command(ops: Sessions, sessions: redis.Redis) -> None:
    key = stored(ops, {"a": 1}).session_key
    with sent_commands(sessions) as sent:
        ops.load(SessionStore(key))
    assert sent == ["HGET"]


@pytest.mark.usefixtures("warm")
def test_save_of_an_existing_session_is_one_command(ops: Sessions, sessions: redis.Redis) -> None:
    store = stored(ops, {"a": 1})
    store["a"] = 2
    with sent_commands(sessions) as sent:
        ops.save(store)
    assert sent == ["EVALSHA"]


@pytest.mark.usefixtures("warm")
def test_create_is_one_command(ops: Sessions, sessions: redis.Redis) -> None:
    store = SessionStore()
    store["a"] = 1
    with sent_commands(sessions) as sent:
        ops.save(store)
    assert sent == ["EVALSHA"]  # no EXISTS round trip first: the script writes with NX
    assert store.session_key is not None


@pytest.mark.usefixtures("warm")
def test_delete_is_one_command(ops: Sessions, sessions: redis.Redis) -> None:
    store = stored(ops, {"_auth_user_id": "5"})
    with sent_commands(sessions) as sent:
        ops.delete(store)
    assert sent == ["DEL"]


@pytest.mark.usefixtures("warm")
def test_saving_a_logged_in_users_session_updates_the_index_in_the_same_command(
    ops: Sessions, sessions: redis.Redis
) -> None:
    store = stored(ops, {"_auth_user_id": "5"})
    store["page"] = 2
    with sent_commands(sessions) as sent:
        ops.save(store)
    assert sent == ["EVALSHA"]
    assert sessions.zrange(index_key(5), 0, -1) == [store.session_key.encode()]


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize(
    "middleware",
    [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "djredis.middleware.SessionMiddleware",
    ],
)
@pytest.mark.parametrize("path", ["/counter/", pytest.param("/acounter/", marks=ASYNC_SESSION_API)])
def test_a_request_that_reads_and_writes_its_session_costs_two_commands(
    settings: Any,
    sessions: redis.Redis,
    middleware: str,
    path: str,
    run: Callable[[Any], Any],
) -> None:
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = [middleware]
    client = AsyncClient()

    async def visit() -> Any:
        return (await client.get(path)).json()

    # One event loop, as under an ASGI server; the first visits open its connections.
    assert [run(visit()) for _ in range(2)] == [{"count": 1}, {"count": 2}]
    with sent_commands(sessions) as sent:
        assert run(visit()) == {"count": 3}
    assert sent == ["HGET", "EVALSHA"]  # load, save


@ASYNC_SESSION_API
@pytest.mark.parametrize(
    "middleware",
    [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "djredis.middleware.SessionMiddleware",
    ],
)
def test_a_session_deleted_during_an_async_request_is_a_400(
    settings: Any, sessions: redis.Redis, middleware: str, run: Callable[[Any], Any]
) -> None:
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = [middleware]
    client = AsyncClient()
    assert run(client.get("/acounter/")).status_code == 200
    key = client.cookies["sessionid"].value
    assert run(client.get("/aconcurrent-logout/")).status_code == 400  # SessionInterrupted
    assert not sessions.exists(redis_key(key))  # not resurrected


# -- Redis down or slow ---------------------------------------------------------------------


@pytest.fixture
def dead_redis(settings: Any, sessions: redis.Redis) -> str:
    """Point the sessions at a port nothing listens on; return its URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.SESSION_REDIS = {"url": url, "socket_connect_timeout": 0.2}
    return url


@pytest.mark.usefixtures("dead_redis")
def test_load_raises_when_redis_is_down(ops: Sessions, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "djredis.sessions"), pytest.raises(RedisConnectionError):
        ops.load(SessionStore("somesessionkey1"))
    assert "loading a session" in caplog.text


@pytest.mark.usefixtures("dead_redis")
def test_save_raises_when_redis_is_down_even_with_ignore_load_errors(
    ops: Sessions, settings: Any
) -> None:
    settings.SESSION_REDIS = {**settings.SESSION_REDIS, "ignore_load_errors": True}
    store = SessionStore()
    store["a"] = 1
    with pytest.raises(RedisConnectionError):
        ops.save(store)


@pytest.mark.usefixtures("dead_redis")
def test_ignore_load_errors_serves_an_empty_session_logged_and_keeps_the_key(
    ops: Sessions, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SESSION_REDIS = {**settings.SESSION_REDIS, "ignore_load_errors": True}
    store = SessionStore("somesessionkey1")
    with caplog.at_level(logging.WARNING, "djredis.sessions"):
        assert ops.load(store) == {}
    assert store.session_key == "somesessionkey1"
    assert "ignore_load_errors is on" in caplog.text


def test_ignore_load_errors_never_overwrites_the_session_it_could_not_read(
    ops: Sessions, settings: Any, sessions: redis.Redis, redis_server: RedisServer
) -> None:
    settings.SESSION_REDIS = {
        **settings.SESSION_REDIS,
        "ignore_load_errors": True,
        "socket_timeout": 0.2,
    }
    key = stored(ops, {"cart": [1, 2]}).session_key
    paused = redis_server.client()
    paused.execute_command("CLIENT", "PAUSE", 600, "ALL")  # the server stops answering
    store = SessionStore(key)
    assert ops.load(store) == {}
    store["cart"] = []
    with pytest.raises(RedisTimeoutError):
        ops.save(store)  # the changes of this request are refused, not written over
    deadline = time.monotonic() + 5
    while True:
        try:
            assert ops.load(SessionStore(key)) == {"cart": [1, 2]}
            break
        except AssertionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.usefixtures("dead_redis")
def test_ignore_load_errors_skips_an_unmodified_save(ops: Sessions, settings: Any) -> None:
    settings.SESSION_REDIS = {**settings.SESSION_REDIS, "ignore_load_errors": True}
    store = SessionStore("somesessionkey1")
    assert ops.load(store) == {}  # the load error became an empty session
    ops.save(store)  # SESSION_SAVE_EVERY_REQUEST: nothing changed, nothing is sent
    store["cart"] = [1]
    with pytest.raises(RedisConnectionError):  # a change is sent, and Redis is down
        ops.save(store)


def test_a_request_fails_with_the_error_when_redis_is_down(settings: Any, dead_redis: str) -> None:
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
    client = Client(raise_request_exception=True)
    client.cookies["sessionid"] = "somesessionkey1"
    with pytest.raises(RedisConnectionError):
        client.get("/counter/")


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_writers_never_resurrect_a_deleted_session(sessions: redis.Redis) -> None:
    key = stored(Sessions("sync", lambda c: c), {"n": 0}).session_key
    errors: list[BaseException] = []

    def writer() -> None:
        for _ in range(50):
            store = SessionStore(key)
            try:
                store["n"] = store.get("n", 0) + 1
                store.save()
            except UpdateError:
                return
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    SessionStore(key).delete()
    for thread in threads:
        thread.join()
    assert not errors
    assert sessions.exists(redis_key(key)) == 0


def test_module_exports_are_pinned() -> None:
    assert sorted(djredis.sessions.__all__) == [
        "RevokeSessionsOnPasswordChange",
        "SessionInfo",
        "SessionStore",
        "arevoke_all_sessions",
        "arevoke_session",
        "auser_sessions",
        "revoke_all_sessions",
        "revoke_session",
        "session_id",
        "user_sessions",
    ]
