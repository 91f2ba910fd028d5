"""The Django settings the benchmarks' ASGI sites share: no middleware, no apps, one cache.

Each site module (``_async_site``, ``_near_site``, ``_ratelimit_site``) is served by uvicorn
in a process of its own and configured from the environment the benchmark sets.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

DUMMY_CACHE = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}


def redis_cache(
    backend: str, location: str, prefix: str = "", options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One cache alias's settings."""
    return {
        "BACKEND": backend,
        "LOCATION": location,
        "KEY_PREFIX": prefix,
        "OPTIONS": options or {},
    }


def configure(urlconf: str, cache: dict[str, Any], **extra: Any) -> None:
    """Configure Django for a site whose views live in ``urlconf``, and set it up."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=urlconf,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        CACHES={"default": cache},
        USE_TZ=True,
        **extra,
    )
    django.setup()
