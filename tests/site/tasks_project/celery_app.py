"""The project's Celery app, as the Celery guide writes it (settings prefixed CELERY_)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.site.tasks_project.settings")

app = Celery("tasks_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
