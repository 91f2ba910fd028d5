"""Which configured Redis servers are reachable, with latency: a view and a system check.

``djredis.health.health`` is a view answering JSON, 200 when every djredis cache's server
answers PING and 503 otherwise::

    path("health/redis/", djredis.health.health)

With ``"djredis"`` in ``INSTALLED_APPS``, ``manage.py check --deploy`` reports each server:
``djredis.I001`` (reachable, with the latency) or ``djredis.W001`` (unreachable, with the
error).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Info, Warning
from django.http import HttpRequest, JsonResponse

from djredis.cache.stats import probe_servers

__all__ = ["check_redis_servers", "health"]


def health(request: HttpRequest) -> JsonResponse:
    """Answer whether every djredis cache's Redis is reachable, with latencies (JSON)."""
    servers: list[dict[str, Any]] = [
        {
            "alias": stats.alias,
            "location": location,
            "reachable": stats.reachable,
            "latency_ms": stats.latency_ms,
            "error": stats.error,
        }
        for location, stats in probe_servers()
    ]
    ok = all(server["reachable"] for server in servers)
    return JsonResponse(
        {"status": "ok" if ok else "error", "servers": servers}, status=200 if ok else 503
    )


def check_redis_servers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check (deploy): report each djredis cache's server, reachable or not."""
    messages: list[CheckMessage] = []
    for location, stats in probe_servers():
        where = f"CACHES[{stats.alias!r}] ({location})"
        if stats.reachable:
            messages.append(
                Info(
                    f"{where}: Redis {stats.version} reachable, PING {stats.latency_ms} ms",
                    id="djredis.I001",
                )
            )
        else:
            messages.append(
                Warning(
                    f"{where}: Redis is not reachable: {stats.error}",
                    hint="Start that server or correct its LOCATION; the site cannot cache "
                    "(or keep sessions) without it.",
                    id="djredis.W001",
                )
            )
    return messages
