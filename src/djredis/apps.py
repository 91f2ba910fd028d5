"""``"djredis"`` in INSTALLED_APPS: management commands and the deploy system check."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class DjredisConfig(AppConfig):
    """Register the Redis reachability check (``manage.py check --deploy``)."""

    name = "djredis"
    verbose_name = "djredis"

    def ready(self) -> None:
        from djredis.health import check_redis_servers

        checks.register(check_redis_servers, checks.Tags.caches, deploy=True)
