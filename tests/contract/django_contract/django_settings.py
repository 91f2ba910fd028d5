"""Settings for Django's runtests.py when it runs its cache tests against djredis.

Copied at run time to ``<django tests>/djredis_contract_settings.py`` and passed as
``--settings``. It mirrors Django's own ``tests/test_sqlite.py`` and adds a djredis cache
on the redis-server the pytest test started (its URL comes in the environment).
"""

import os

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "other": {"ENGINE": "django.db.backends.sqlite3"},
}

SECRET_KEY = "django_tests_secret_key"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = False

# Django's RedisCacheTests takes its base config from the settings' CACHES the same way.
CACHES = {
    "default": {
        "BACKEND": "djredis.cache.RedisCache",
        "LOCATION": os.environ["DJREDIS_CONTRACT_REDIS_URL"],
    },
}
