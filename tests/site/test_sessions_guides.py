"""The guides' session snippets, run as written against djredis (all three ways).

"How to Use Redis with Django" stores sessions with Django's cache engine on the
'sessions' cache alias, or with a dedicated engine configured by a lowercase
``SESSION_REDIS``; "Using Redis as Django's session store" (2013) uses the cache engine,
``cached_db``, or ``SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH``; "Django and Redis: Mastering
Caching and Session Storage" an uppercase ``SESSION_REDIS`` or, without it, the 'default'
cache. The dedicated engine's path is ``djredis.sessions`` in place of
``django_redis.session`` / ``redis_sessions.session``; servers are the test servers. Each
configuration runs the first guide's views (tests/sessions_app/views.py): log in, see the
dashboard, update, log out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.test import Client

from tests._servers import RedisServer

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": ["tests/sessions_app/templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]


def first_guide_caches(server: RedisServer) -> dict[str, Any]:
    """The first guide's "Multiple Cache Backends" block (CLIENT_CLASS kept as written)."""
    options = {"CLIENT_CLASS": "django_redis.client.DefaultClient"}
    return {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(0),
            "OPTIONS": options,
            "KEY_PREFIX": "default",
            "TIMEOUT": 300,
        },
        "sessions": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(1),
            "OPTIONS": options,
            "KEY_PREFIX": "session",
            "TIMEOUT": 86400,  # 24 hours
        },
    }


def cache_engine(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.CACHES = first_guide_caches(server)
    # Use Redis for sessions
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.SESSION_CACHE_ALIAS = "sessions"
    return 1, "session:1:django.contrib.sessions.cache"


def dedicated_lowercase(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.CACHES = first_guide_caches(server)
    # Or use the session backend directly
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {
        "host": "127.0.0.1",
        "port": server.port,
        "db": 1,
        "prefix": "session",
        "socket_timeout": 1,
    }
    return 1, "session:"


def cache_engine_2013(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": server.url(0)}
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    return 0, ":1:django.contrib.sessions.cache"


def cached_db_2013(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.CACHES = {
        "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": server.url(0)}
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    return 0, ":1:django.contrib.sessions.cached_db"


def unix_socket_2013(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH = unix.socket_path
    return -1, "session:"  # -1: the Unix-socket server's db 0


def dedicated_uppercase(settings: Any, server: RedisServer, unix: RedisServer) -> tuple[int, str]:
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {
        "HOST": "127.0.0.1",
        "PORT": server.port,
        "DB": 2,  # Using a different database for sessions
        "PASSWORD": "",
        "PREFIX": "session",
        "SOCKET_TIMEOUT": 1,
    }
    return 2, "session:"


def default_cache_third_guide(
    settings: Any, server: RedisServer, unix: RedisServer
) -> tuple[int, str]:
    settings.CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(1),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
    settings.SESSION_ENGINE = "djredis.sessions"
    # By default, it will use the 'default' cache configuration.
    return 1, "session:"


CONFIGURATIONS = [
    cache_engine,
    dedicated_lowercase,
    cache_engine_2013,
    cached_db_2013,
    unix_socket_2013,
    dedicated_uppercase,
    default_cache_third_guide,
]


@pytest.mark.django_db
@pytest.mark.parametrize("configure", CONFIGURATIONS, ids=lambda f: f.__name__)
def test_guide_session_views_log_in_update_and_log_out(
    configure: Callable[..., tuple[int, str]],
    settings: Any,
    redis_server: RedisServer,
    redis_unix_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    redis_unix_server.client().flushall()
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.TEMPLATES = TEMPLATES
    settings.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
    # Session settings
    settings.SESSION_COOKIE_AGE = 86400  # 24 hours
    settings.SESSION_SAVE_EVERY_REQUEST = False
    db, prefix = configure(settings, redis_server, redis_unix_server)
    server = redis_unix_server.client() if db < 0 else redis_server.client(db)
    client = Client()

    assert client.get("/dashboard/").headers["Location"] == "/login/"
    response = client.get("/login/", follow=True)
    assert response.content.decode().strip() == "dashboard of alice"
    key = client.cookies["sessionid"].value
    stored = [k.decode() for k in server.scan_iter() if key in k.decode()]
    assert stored == [prefix + key]
    assert 3500 < server.ttl(stored[0]) <= 3600  # request.session.set_expiry(3600)

    assert client.get("/update/").status_code == 200
    assert client.get("/logout/").headers["Location"] == "/"
    assert server.exists(stored[0]) == 0
    assert client.get("/dashboard/").headers["Location"] == "/login/"
