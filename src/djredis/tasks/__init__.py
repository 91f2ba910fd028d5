"""Django's task framework (``django.tasks``, or the ``django_tasks`` backport) on Celery.

``TASKS = {"default": {"BACKEND": "djredis.tasks.CeleryBackend"}}``: ``@task`` functions are
sent to Celery workers over the Redis broker and run by one Celery task,
``djredis.tasks.run``, which a worker registers when it imports this package (Celery's
``app.autodiscover_tasks()`` does, with ``"djredis"`` in INSTALLED_APPS). See docs/tasks.md.
"""

from __future__ import annotations

from .backend import CeleryBackend, CeleryTask
from .runner import run

__all__ = ["CeleryBackend", "CeleryTask", "run"]
