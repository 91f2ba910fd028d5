"""URLs for the in-process ASGI part of ``benchmarks.near_cache``: the same view reading 5
hot keys from the near-cache alias, the plain djredis alias, or no cache at all."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.urls import path

KEYS = ["site", "flags", "menu", "footer", "settings"]


def _view(alias: str | None) -> Any:
    async def view(request: HttpRequest) -> HttpResponse:
        found = 0
        if alias is not None:
            cache = caches[alias]
            for key in KEYS:
                found += await cache.aget(key) is not None
        return HttpResponse(str(found))

    return view


urlpatterns = [
    path("near/", _view("djredis + near-cache")),
    path("plain/", _view("djredis")),
    path("none/", _view(None)),
]
