"""Settings for the djredis reference site (development only: DEBUG is on).

Environment variables:
- ``DJREDIS_EXAMPLE_REDIS_URL``: the Redis the site uses (default redis://127.0.0.1:6399/0,
  the private server that ``example/run.py`` starts);
- ``DJREDIS_EXAMPLE_DB``: the SQLite file (default example/.data/db.sqlite3, git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "djredis-reference-site-development-only"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "reference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reference.urls"
WSGI_APPLICATION = "reference.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
            ],
        },
    }
]

REDIS_URL = os.environ.get("DJREDIS_EXAMPLE_REDIS_URL", "redis://127.0.0.1:6399/0")

CACHES = {
    "default": {
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "example",
    }
}

DATABASE_PATH = Path(os.environ.get("DJREDIS_EXAMPLE_DB", BASE_DIR / ".data" / "db.sqlite3"))
DATABASE_PATH.parent.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATABASE_PATH,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
