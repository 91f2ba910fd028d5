"""An async view using the cache's native async API, for the Django test client tests."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import path


async def counter(request: HttpRequest) -> HttpResponse:
    """Count visits with aadd + aincr."""
    await cache.aadd("visits", 0, 60)
    return HttpResponse(str(await cache.aincr("visits")))


urlpatterns = [path("counter/", counter)]
