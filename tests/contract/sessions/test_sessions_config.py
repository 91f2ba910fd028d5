"""Where djredis.sessions keeps sessions: SESSION_REDIS in the guides' styles, the older
SESSION_REDIS_* settings, a cache alias, or the 'default' cache; bad settings fail loudly."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from djredis.sessions import SessionStore
from tests._servers import RedisServer


def save_one() -> str:
    store = SessionStore()
    store["where"] = "here"
    store.save()
    assert store.session_key is not None
    return store.session_key


def keys_in(client: redis.Redis) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter())


@pytest.fixture(autouse=True)
def engine(settings: Any, redis_client: redis.Redis) -> None:
    settings.SESSION_ENGINE = "djredis.sessions"


def test_lowercase_dict_of_the_first_guide(settings: Any, redis_server: RedisServer) -> None:
    settings.SESSION_REDIS = {
        "host": "127.0.0.1",
        "port": redis_server.port,
        "db": 1,
        "prefix": "session",
        "socket_timeout": 1,
    }
    key = save_one()
    assert keys_in(redis_server.client(1)) == [f"session:{key}"]


def test_uppercase_dict_of_the_third_guide(settings: Any, redis_server: RedisServer) -> None:
    settings.SESSION_REDIS = {
        "HOST": "127.0.0.1",
        "PORT": redis_server.port,
        "DB": 2,  # Using a different database for sessions
        "PASSWORD": "",
        "PREFIX": "session",
        "SOCKET_TIMEOUT": 1,
    }
    key = save_one()
    assert keys_in(redis_server.client(2)) == [f"session:{key}"]


def test_url_and_the_other_django_redis_sessions_keys(
    settings: Any, redis_server: RedisServer
) -> None:
    settings.SESSION_REDIS = {
        "url": redis_server.url(4),
        "retry_on_timeout": True,
        "socket_connect_timeout": 0.5,
        "prefix": "",
    }
    key = save_one()
    assert keys_in(redis_server.client(4)) == [key]


def test_unix_socket_setting_of_the_2013_guide(
    settings: Any, redis_unix_server: RedisServer
) -> None:
    settings.SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH = redis_unix_server.socket_path
    redis_unix_server.client().flushall()
    key = save_one()
    assert keys_in(redis_unix_server.client()) == [f"session:{key}"]


def test_older_top_level_settings(settings: Any, redis_server: RedisServer) -> None:
    settings.SESSION_REDIS_HOST = "127.0.0.1"
    settings.SESSION_REDIS_PORT = redis_server.port
    settings.SESSION_REDIS_DB = 5
    settings.SESSION_REDIS_PREFIX = "old"
    settings.SESSION_REDIS_SOCKET_TIMEOUT = 1
    key = save_one()
    assert keys_in(redis_server.client(5)) == [f"old:{key}"]


def test_location_and_options_take_the_cache_forms(
    settings: Any, redis_server: RedisServer
) -> None:
    settings.SESSION_REDIS = {
        "location": [redis_server.url(6), redis_server.url(6)],  # a primary and a replica
        "options": {"SOCKET_TIMEOUT": 2, "health_check_interval": 30},
    }
    key = save_one()
    assert keys_in(redis_server.client(6)) == [f"session:{key}"]


def test_cache_alias_reuses_that_caches_server(settings: Any, redis_server: RedisServer) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(7),
            "KEY_PREFIX": "session",
        },
    }
    settings.SESSION_REDIS = {"cache": "sessions"}
    key = save_one()
    assert keys_in(redis_server.client(7)) == [f"session:{key}"]


def test_cache_clear_with_the_same_prefix_keeps_sessions_and_their_index(
    settings: Any, redis_server: RedisServer
) -> None:
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(8),
            "KEY_PREFIX": "session",
        }
    }
    store = SessionStore()
    store["_auth_user_id"] = "1"
    store.save()
    caches["default"].set("k", "v")
    caches["default"].clear()
    assert keys_in(redis_server.client(8)) == sorted(
        [f"session:{store.session_key}", "session:user=1"]
    )


def test_without_session_redis_the_default_cache_server_is_used(
    settings: Any, redis_server: RedisServer
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": redis_server.url(9)}
    }
    key = save_one()
    assert keys_in(redis_server.client(9)) == [f"session:{key}"]


def test_a_dict_naming_no_server_uses_the_default_cache_server(
    settings: Any, redis_server: RedisServer
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": redis_server.url(10)}
    }
    settings.SESSION_REDIS = {"prefix": "sess"}
    key = save_one()
    assert keys_in(redis_server.client(10)) == [f"sess:{key}"]


@pytest.mark.parametrize(
    ("session_redis", "message"),
    [
        ({"hots": "localhost"}, r"SESSION_REDIS\['hots'\] is not a djredis session setting"),
        ({"HOTS": "localhost"}, "did you mean 'HOST'"),
        ({"host": "a", "HOST": "b"}, "sets 'host' and 'HOST' to different values"),
        ({"url": "redis://a/0", "host": "b"}, "names the server twice"),
        ({"cache": "default", "db": 1}, r"reuses CACHES\['default'\]'s connection"),
        ({"url": "redis://a/0", "ignore_load_errors": "yes"}, "must be True or False"),
        ({"url": "redis://a/0", "prefix": "s*"}, "without glob characters"),
        ({"url": "redis://a/0", "port": 1}, "names the server twice"),
        ({"host": "a", "port": "x"}, "must be a port number"),
        ({"url": "redis://a/0", "options": {"SERIALIZER": "json"}}, "not a djredis option"),
        ({"url": "redis://a/1", "db": 2}, "'db' is 1 in LOCATION but 2"),
        ({"db": 2}, "but no server"),
        ({"cache": "missing"}, r"there is no CACHES\['missing'\]"),
        ("redis://a/0", "must be a dict"),
    ],
)
def test_bad_session_redis_raises_improperly_configured(
    settings: Any, session_redis: Any, message: str
) -> None:
    settings.SESSION_REDIS = session_redis
    with pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()


def test_session_redis_and_top_level_settings_together_are_rejected(settings: Any) -> None:
    settings.SESSION_REDIS = {"url": "redis://a/0"}
    settings.SESSION_REDIS_HOST = "b"
    with pytest.raises(ImproperlyConfigured, match="both set"):
        SessionStore()


def test_unknown_top_level_setting_is_rejected(settings: Any) -> None:
    settings.SESSION_REDIS_HOTS = "a"
    named = r"SESSION_REDIS_HOTS is not a djredis.*mean SESSION_REDIS_HOST"
    with pytest.raises(ImproperlyConfigured, match=named):
        SessionStore()


def test_without_any_setting_a_non_djredis_default_cache_is_explained(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with pytest.raises(ImproperlyConfigured, match="SESSION_REDIS is not set"):
        SessionStore()
