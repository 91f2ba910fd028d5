"""The Redis dashboard: what each cache alias and the servers are doing, refreshed live."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

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


def _site_figures() -> tuple[str | None, dict[str, Any]]:
    """Return (whose figures, per-alias figures) from djredis.metrics: every worker's in
    multiprocess mode (run.py --production), else this process's; (None, {}) when off."""
    if not getattr(settings, "DJREDIS_PROMETHEUS", False):
        return None, {}
    from djredis import metrics

    scope = "every worker" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "this worker"
    return scope, dict(metrics.summary())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """djredis.metrics.metrics_view, or 404 when prometheus_client is not installed."""
    if not getattr(settings, "DJREDIS_PROMETHEUS", False):
        raise Http404("prometheus_client is not installed")
    from djredis import metrics

    return metrics.metrics_view(request)


def _snapshot() -> dict[str, Any]:
    """Collect each alias's counters and database, each server's figures, the Celery queue."""
    aliases, servers = [], {}
    scope, site = _site_figures()
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
                # djredis.metrics: the whole site's reads under several workers.
                "site": _site_entry(site.get(alias)),
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
    return {
        "aliases": aliases,
        "servers": servers,
        "celery_queue": _celery_queue_length(),
        "metrics_scope": scope,
        "pid": os.getpid(),  # which worker answered
    }


def _site_entry(found: Any) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "hits": found.hits,
        "misses": found.misses,
        "fails": found.fails,
        "hit_ratio": found.hit_ratio,
        "p50_ms": found.p50_ms,
        "p99_ms": found.p99_ms,
    }


def dashboard(request: HttpRequest) -> HttpResponse:
    """Show the dashboard; its script polls dashboard_json every two seconds."""
    return render_demo(
        request,
        "reference/dashboard.html",
        {"snapshot": _snapshot()},
        guide="Monitoring: djredis.cache.stats and Redis INFO",
        code=[_snapshot, _site_figures],
    )


def dashboard_json(request: HttpRequest) -> JsonResponse:
    """Return the dashboard's figures as JSON."""
    return JsonResponse(_snapshot())
