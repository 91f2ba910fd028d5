"""The guide's Celery app: settings come from Django's, every name prefixed ``CELERY_``.

Start a worker and the beat scheduler from example/ (``run.py`` does both)::

    celery -A reference worker --loglevel=info
    celery -A reference beat --loglevel=info
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reference.settings")

app = Celery("reference")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
