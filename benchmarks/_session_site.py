"""The Django site the session benchmark serves: settings from the environment.

``DJREDIS_BENCH_ENGINE`` picks the contender (see ``benchmarks.sessions.CONTENDERS``),
``DJREDIS_BENCH_REDIS`` the Redis URL and ``DJREDIS_BENCH_SQLITE`` the SQLite file. The
same ``configure()`` serves the in-process test-client run and ``uvicorn
benchmarks._session_site:app``.
"""

from __future__ import annotations

import os
from typing import Any

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
DJREDIS_MIDDLEWARE = "djredis.middleware.SessionMiddleware"

# name -> (SESSION_ENGINE, session middleware, URL of the view)
CONTENDERS: dict[str, tuple[str, str, str]] = {
    "djredis": ("djredis.sessions", DJANGO_MIDDLEWARE, "/counter/"),
    "djredis, async view + djredis middleware": (
        "djredis.sessions",
        DJREDIS_MIDDLEWARE,
        "/acounter/",
    ),
    "django-redis cache engine": (
        "django.contrib.sessions.backends.cache",
        DJANGO_MIDDLEWARE,
        "/counter/",
    ),
    "Django db engine (SQLite)": (
        "django.contrib.sessions.backends.db",
        DJANGO_MIDDLEWARE,
        "/counter/",
    ),
}


def settings_for(name: str, redis_url: str, sqlite_path: str) -> dict[str, Any]:
    """Return the Django settings of one contender."""
    engine, middleware, _ = CONTENDERS[name]
    return {
        "SECRET_KEY": "benchmark",
        "DEBUG": False,
        "ALLOWED_HOSTS": ["*"],
        "USE_TZ": True,
        "ROOT_URLCONF": "tests.sessions_app.urls",
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        "MIDDLEWARE": [middleware],
        "SESSION_ENGINE": engine,
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}},
        "CACHES": {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "django_redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url},
        },
        "SESSION_CACHE_ALIAS": "django_redis",
        "SESSION_REDIS": {"url": redis_url, "prefix": "bench"},
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        "LOGGING_CONFIG": None,
    }


def configure(name: str, redis_url: str, sqlite_path: str) -> None:
    """Configure Django for one contender and create the session table if needed."""
    import django
    from django.conf import settings

    settings.configure(**settings_for(name, redis_url, sqlite_path))
    django.setup()


def _asgi_app() -> Any:
    configure(
        os.environ["DJREDIS_BENCH_ENGINE"],
        os.environ["DJREDIS_BENCH_REDIS"],
        os.environ["DJREDIS_BENCH_SQLITE"],
    )
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


app = _asgi_app() if "DJREDIS_BENCH_ENGINE" in os.environ else None
