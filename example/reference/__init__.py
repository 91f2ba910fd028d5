"""The djredis reference site: a Django project showing each pattern of the guides."""

from __future__ import annotations

# The guide's pattern: load the Celery app with Django, so @shared_task binds to it.
from .celery import app as celery_app

__all__ = ["celery_app"]
