"""A small Django project whose Celery worker runs djredis.tasks.CeleryBackend's tasks.

The worker is plain ``celery -A tests.site.tasks_project.celery_app worker``, started by
tests/site/test_tasks_backend.py against a redis-server the suite starts; its settings come
from ``settings.py`` here, the broker URL from ``DJREDIS_TASKS_BROKER_URL``.
"""
