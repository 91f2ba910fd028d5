"""Settings for the djredis reference site.

Environment variables:
- ``DJREDIS_EXAMPLE_REDIS_URL``: the Redis the site uses (default redis://127.0.0.1:6399/0,
  the private server that ``example/run.py`` starts). The caches, the sessions and Celery
  use databases 0 to 4 of that server, as the guide lays them out, and the chat's channel
  layer database 5;
  ``REDIS_URL`` is read too when that is unset;
- ``DJREDIS_EXAMPLE_DB``: the SQLite file (default example/.data/db.sqlite3, git-ignored);
- ``DATABASE_URL``: ``postgres://user:password@host:5432/name`` to use PostgreSQL instead
  (needs ``pip install psycopg``);
- ``DJREDIS_EXAMPLE_DEBUG``: ``0`` for a production-style run (DEBUG off).
"""

from __future__ import annotations

import importlib.util
import os
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "djredis-reference-site-development-only"
DEBUG = os.environ.get("DJREDIS_EXAMPLE_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "djredis",  # the djredis_sessions management command
    "djredis.ratelimit",  # the rate limit system checks (manage.py check)
    # The guide's Channels setup. Without daphne in INSTALLED_APPS, Channels 4 leaves
    # runserver alone; the site is served by uvicorn (run.py), which speaks WebSocket.
    "channels",
    "reference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Django's SessionMiddleware, saving with asave() under ASGI (djredis.sessions).
    "djredis.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reference.urls"
WSGI_APPLICATION = "reference.wsgi.application"
ASGI_APPLICATION = "reference.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    }
]

REDIS_URL = (
    os.environ.get("DJREDIS_EXAMPLE_REDIS_URL")
    or os.environ.get("REDIS_URL")
    or "redis://127.0.0.1:6399/0"
)


def redis_db(db: int) -> str:
    """Return REDIS_URL pointing at database ``db`` of the same server."""
    parts = urlsplit(REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{db}"))


# The guide's "Multiple Cache Configuration": one alias per use, each on its own database,
# with its own KEY_PREFIX and default TIMEOUT.
CACHES = {
    "default": {
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": redis_db(0),
        "KEY_PREFIX": "example",
        "TIMEOUT": 300,
        # A per-process near-cache in front of Redis, kept coherent by CLIENT TRACKING
        # (docs/near-cache.md); the dashboard shows its counters.
        "OPTIONS": {"NEAR_CACHE": True},
    },
    "sessions": {
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": redis_db(1),
        "KEY_PREFIX": "session",
        "TIMEOUT": 86400,
    },
    "api_cache": {
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": redis_db(2),
        "KEY_PREFIX": "api",
        "TIMEOUT": 60,
    },
}

# Sessions: djredis's engine on the "sessions" cache's server and database, with the
# per-user index (the "active sessions" page) and the client's IP and User-Agent recorded.
# djredis.metrics (docs/operations.md): django-prometheus's cache counters and djredis's
# command latencies, served at /metrics to a scraper sending this token. Under two workers
# (run.py --production sets PROMETHEUS_MULTIPROC_DIR) the dashboard reads every worker's.
DJREDIS_PROMETHEUS = find_spec("prometheus_client") is not None
DJREDIS_METRICS_TOKEN = os.environ.get("DJREDIS_EXAMPLE_METRICS_TOKEN")

SESSION_ENGINE = "djredis.sessions"
SESSION_REDIS = {"cache": "sessions", "prefix": "session", "record_client": True}
SESSION_COOKIE_AGE = 86400
SESSION_SAVE_EVERY_REQUEST = False

# -- Rate limiting (the ratelimit page; docs/ratelimit.md) ------------------------------------
# Decisions run on the "default" cache's Redis. When Redis gives no decision (down, timed
# out), a limit fails closed: 429 with Retry-After: 1, as django-ratelimit's do. Set
# RATELIMIT_FAIL_OPEN = True (or fail_open=True on one rule) to admit instead.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "sessions"
LOGOUT_REDIRECT_URL = "home"
# The demo account that the migrations create (reference/migrations/0002_demo_user.py).
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "djredis-demo"


def database_from_url(url: str) -> dict[str, object]:
    """Return a DATABASES entry for a ``postgres://`` (or ``postgresql://``) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r}: only postgres://user:password@host:port/name is understood"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DATABASE_PATH = Path(os.environ.get("DJREDIS_EXAMPLE_DB", BASE_DIR / ".data" / "db.sqlite3"))
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASE_PATH.parent.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATABASE_PATH}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# -- Channels (the chat page) -----------------------------------------------------------------
# The guide's CHANNEL_LAYERS with djredis's layer as BACKEND (was
# channels_redis.core.RedisChannelLayer), on database 5 of the same server: the layer's
# keys (asgi:c:{...}, asgi:g:{...}) stay apart from the caches, sessions and Celery.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "djredis.channels.RedisChannelLayer",
        "CONFIG": {
            "hosts": [redis_db(5)],
            "capacity": 1500,
            "expiry": 10,
        },
    },
}

# -- Django's task framework on Celery (the "Django tasks" page) -----------------------------
# @task functions (reference/mail.py) run on the site's Celery worker, over its Redis broker
# (CELERY_BROKER_URL below); djredis's result records live there too, for an hour.
TASKS = {
    "default": {
        "BACKEND": "djredis.tasks.CeleryBackend",
        "OPTIONS": {"APP": "reference.celery.app", "RESULT_EXPIRES": 3600},
    }
}
if importlib.util.find_spec("django.tasks") is None and importlib.util.find_spec("django_tasks"):
    # Django < 6.0: the backport's app runs the backends' system checks (CeleryBackend's too).
    INSTALLED_APPS.append("django_tasks")

# -- Celery (reference/celery.py reads every CELERY_* setting) -------------------------------
# Broker and result backend on databases 3 and 4 of the same server, as in the guide. The
# broker's server must run with `maxmemory-policy noeviction` (run.py starts it so; the
# tasks page checks it): under any other policy Redis may evict queued tasks silently.
CELERY_BROKER_URL = redis_db(3)
CELERY_RESULT_BACKEND = redis_db(4)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 3600  # results are deleted from Redis after an hour
# Rate limiting: at most 10 welcome emails a minute per worker.
CELERY_TASK_ANNOTATIONS = {"reference.tasks.send_welcome_email": {"rate_limit": "10/m"}}
# The longest ETA or countdown this site schedules (tasks page: "in one hour").
LONGEST_ETA_SECONDS = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task a worker fetched but has not acknowledged goes back to the queue after this
    # long. ETA/countdown tasks are fetched at once and held until due, so this must be
    # longer than the longest ETA, or the task is redelivered and runs twice.
    "visibility_timeout": 2 * LONGEST_ETA_SECONDS,
}
# Celery 5.3+ warns unless this is set: keep retrying the broker at start-up.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# On a warm shutdown, give running tasks this long to finish before the cold shutdown
# (Celery 5.5+); with the Redis broker, unacknowledged tasks then go back to the queue.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 10.0
# task_reject_on_worker_lost requeues a task whose worker process died mid-task: it then
# runs again, so it is set only on idempotent tasks (reference/tasks.py), never globally.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CLEANUP_SECONDS = float(os.environ.get("DJREDIS_EXAMPLE_CLEANUP_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE = {
    "cleanup-expired-sessions": {
        "task": "reference.tasks.cleanup_expired_sessions",
        "schedule": CLEANUP_SECONDS,
    },
}
# Retry delay of process_order, in seconds (the guide's 60; tests shorten it).
ORDER_RETRY_SECONDS = float(os.environ.get("DJREDIS_EXAMPLE_ORDER_RETRY_SECONDS", "5"))

# send_welcome_email writes files: example/.data/mail, or $DJREDIS_EXAMPLE_MAIL_DIR.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = Path(os.environ.get("DJREDIS_EXAMPLE_MAIL_DIR", BASE_DIR / ".data" / "mail"))
DEFAULT_FROM_EMAIL = "noreply@example.com"
