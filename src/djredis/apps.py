"""``"djredis"`` in INSTALLED_APPS: management commands, the deploy system check, and the
observability settings (``DJREDIS_OPENTELEMETRY``, ``DJREDIS_PROMETHEUS``,
``DJREDIS_SLOW_COMMAND_MS``; docs/operations.md)."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class DjredisConfig(AppConfig):
    """Register the Redis reachability check (``manage.py check --deploy``) and turn on the
    observers the settings ask for."""

    name = "djredis"
    verbose_name = "djredis"

    def ready(self) -> None:
        from djredis.health import check_redis_servers

        checks.register(check_redis_servers, checks.Tags.caches, deploy=True)
        # Each imports its optional library only when its setting asks for it.
        tracing = getattr(settings, "DJREDIS_OPENTELEMETRY", None)
        if tracing:
            from djredis import otel

            otel.configure(tracing)
        prometheus = getattr(settings, "DJREDIS_PROMETHEUS", None)
        if prometheus:
            from djredis import metrics

            metrics.configure(prometheus)
        slow_ms = getattr(settings, "DJREDIS_SLOW_COMMAND_MS", None)
        if slow_ms is not None:
            from djredis import slowlog

            slowlog.configure(slow_ms)
