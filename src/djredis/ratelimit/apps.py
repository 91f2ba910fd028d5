"""``INSTALLED_APPS += ["djredis.ratelimit"]`` registers the rate limit system checks."""

from __future__ import annotations

from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "djredis.ratelimit"
    label = "djredis_ratelimit"
    verbose_name = "djredis rate limiting"

    def ready(self) -> None:
        from djredis.ratelimit import checks  # noqa: F401  (registers the checks)
