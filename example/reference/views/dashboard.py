"""The Redis dashboard: what each cache alias and the servers are doing, refreshed live."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from djredis import get_redis_connection
from djredis.cache.stats import all_cache_stats, server_stats

from ..celery import app
from ._common import render_demo

QUEUE = "celery"


def _celery_queue_length() -> int | None:
    """Return how many tasks wait in the Celery queue (a list on the broker database)."""
    try:
        with app.connection_for_read() as connection:
            return int(connection.default_channel.client.llen(QUEUE))
    except Exception:  # the broker is down: show "?" rather than fail the dashboard
        return None


def _snapshot() -> dict[str, Any]:
    """Collect each alias's counters and database, each server's figures, the Celery queue."""
    aliases, servers = [], {}
    for alias, stats in all_cache_stats().items():
        server = server_stats(alias)
        pool = get_redis_connection(alias).connection_pool.connection_kwargs
        address, db = f"{pool.get('host')}:{pool.get('port')}", int(pool.get("db", 0))
        aliases.append(
            {
                "alias": alias,
                "server": address,
                "db": db,
                "keys": server.keys_per_db.get(db, 0),
                "hits": stats.hits,
                "misses": stats.misses,
                "hit_ratio": stats.hit_ratio,
                "near": stats.near,
                "reachable": server.reachable,
                "latency_ms": server.latency_ms,
                "error": server.error,
            }
        )
        if server.reachable:
            servers[address] = {
                "version": server.version,
                "used_memory_human": server.used_memory_human,
                "connected_clients": server.connected_clients,
                "ops_per_sec": server.ops_per_sec,
                "keyspace_hit_ratio": server.keyspace_hit_ratio,
                "keys_per_db": server.keys_per_db,
            }
    return {"aliases": aliases, "servers": servers, "celery_queue": _celery_queue_length()}


def dashboard(request: HttpRequest) -> HttpResponse:
    """Show the dashboard; its script polls dashboard_json every two seconds."""
    return render_demo(
        request,
        "reference/dashboard.html",
        {"snapshot": _snapshot()},
        guide="Monitoring: djredis.cache.stats and Redis INFO",
        code=[_snapshot],
    )


def dashboard_json(request: HttpRequest) -> JsonResponse:
    """Return the dashboard's figures as JSON."""
    return JsonResponse(_snapshot())
