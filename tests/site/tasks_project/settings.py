"""Settings of the worker's Django project (the test process uses tests.settings)."""

from __future__ import annotations

import os

SECRET_KEY = "djredis-tasks-tests-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "djredis",  # app.autodiscover_tasks() imports djredis.tasks: the runner task
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJREDIS_TASKS_DB", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

BROKER_URL = os.environ.get("DJREDIS_TASKS_BROKER_URL", "redis://127.0.0.1:6399/3")
CELERY_BROKER_URL = BROKER_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Every priority its own list, so the order of all ten Celery priorities is observable.
    "priority_steps": list(range(10)),
    "visibility_timeout": 3600,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# The queue names mirror the test process's TASKS (tests/site/test_tasks_backend.py).
TASKS = {
    "default": {
        "BACKEND": "djredis.tasks.CeleryBackend",
        "QUEUES": ["default", "backlog", "restart"],
        "OPTIONS": {
            "APP": "tests.site.tasks_project.celery_app.app",
            "QUEUE_MAP": {"backlog": "djredis-backlog", "restart": "djredis-restart"},
            "RESULT_EXPIRES": 600,
        },
    }
}
