"""``manage.py djredis_cache``: look at and clean up the Redis behind the djredis caches.

manage.py djredis_cache info                          # every djredis alias (server INFO, and
                                                      # hit ratio and latency from djredis.metrics)
manage.py djredis_cache keys "user:*" --alias default --limit 50
manage.py djredis_cache delete "user:*" --dry-run     # cache keys, as cache.delete_pattern
manage.py djredis_cache clear-prefix "legacy:" --alias default   # raw Redis keys

``delete`` takes a pattern of cache keys (KEY_PREFIX and version added, like
``cache.delete_pattern``); ``clear-prefix`` takes the start of raw Redis keys (for keys
written outside the cache). Both scan with SCAN (never KEYS), delete with UNLINK page by
page, show a progress bar on long scans (``--progress`` to force it, ``--no-progress`` to
hide it) and, with ``--dry-run``, only count and list what they would delete.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from djredis.cache.keyspace import cache_pattern, prefix_pattern, scan_pages, unlink
from djredis.cache.stats import djredis_aliases, probe_servers

PROGRESS_THRESHOLD = 10_000  # keys in the database: above this, show the bar by default
BAR_WIDTH = 30


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value} ms"


def _metrics_summary() -> dict[str, Any] | None:
    """Per-alias figures from djredis.metrics (every worker's in multiprocess mode), or None
    without prometheus_client."""
    try:
        from djredis import metrics
    except ImportError:
        return None
    return dict(metrics.summary())


class Command(BaseCommand):
    help = "Show the djredis caches' servers; list or delete cache keys by pattern."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["info", "keys", "delete", "clear-prefix"])
        parser.add_argument("pattern", nargs="?", help="cache-key glob, or the raw key prefix")
        parser.add_argument("--alias", default=None, help="the cache alias (default: default)")
        parser.add_argument(
            "--key-version", type=int, default=None, help="cache key version (default: VERSION)"
        )
        parser.add_argument("--limit", type=int, default=100, help="keys: how many to print")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--count", type=int, default=1000, help="SCAN COUNT per call")
        progress = parser.add_mutually_exclusive_group()
        progress.add_argument("--progress", action="store_true", default=None)
        progress.add_argument("--no-progress", action="store_false", dest="progress")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        aliases = djredis_aliases()
        alias = options["alias"] or "default"
        if options["alias"] is not None and alias not in aliases:
            raise CommandError(f"{alias!r} is not a djredis cache alias; these are: {aliases}")
        if action == "info":
            self._info([alias] if options["alias"] else aliases)
            return
        if alias not in aliases:
            raise CommandError(f"CACHES[{alias!r}] is not a djredis cache; pass --alias")
        if options["pattern"] is None:
            raise CommandError(f"{action} needs a pattern (for example 'user:*').")
        if action == "clear-prefix":
            try:
                pattern = prefix_pattern(options["pattern"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        else:
            pattern = cache_pattern(alias, options["pattern"], options["key_version"])
        if action == "keys":
            self._keys(alias, pattern, options["limit"], options["count"])
        else:
            self._delete(alias, pattern, options)

    def _info(self, aliases: list[str]) -> None:
        figures = _metrics_summary()
        for location, stats in probe_servers():
            if stats.alias not in aliases:
                continue
            self.stdout.write(f"{stats.alias}: {location}")
            if not stats.reachable:
                self.stdout.write(self.style.ERROR(f"  unreachable: {stats.error}"))
                continue
            keys = ", ".join(f"db{db}={n}" for db, n in stats.keys_per_db.items()) or "none"
            self.stdout.write(
                f"  Redis {stats.version}, PING {stats.latency_ms} ms, "
                f"{stats.connected_clients} clients, {stats.ops_per_sec} ops/s, "
                f"memory {stats.used_memory_human} (maxmemory-policy {stats.maxmemory_policy})\n"
                f"  keys: {keys}\n"
                f"  hit ratio (server-wide, INFO keyspace_hits/misses): "
                f"{_ratio(stats.keyspace_hit_ratio)} "
                f"({stats.keyspace_hits} hits, {stats.keyspace_misses} misses)"
            )
            self._metrics(figures, stats.alias)

    def _metrics(self, figures: dict[str, Any] | None, alias: str) -> None:
        if figures is None:
            self.stdout.write("  djredis metrics: off (pip install prometheus-client)")
            return
        found = figures.get(alias)
        where = "every worker" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "this process"
        if found is None or not (found.gets or found.commands):
            self.stdout.write(
                f"  djredis metrics ({where}): none recorded (DJREDIS_PROMETHEUS = True, and "
                "PROMETHEUS_MULTIPROC_DIR to see the workers' figures from here)"
            )
            return
        self.stdout.write(
            f"  hit ratio (djredis metrics, {where}): {_ratio(found.hit_ratio)} "
            f"({found.hits:.0f} hits, {found.misses:.0f} misses, {found.fails:.0f} failed)\n"
            f"  command latency (djredis metrics, {where}): p50 {_ms(found.p50_ms)}, "
            f"p95 {_ms(found.p95_ms)}, p99 {_ms(found.p99_ms)} over {found.commands:.0f} commands"
        )

    def _keys(self, alias: str, pattern: str, limit: int, count: int) -> None:
        shown = 0
        for page in scan_pages(alias, pattern, count):
            for key in page.keys:
                if shown >= limit:
                    self.stdout.write("... (more; raise --limit to see them)")
                    return
                self.stdout.write(key.decode(errors="backslashreplace"))
                shown += 1
        self.stdout.write(f"{shown} key(s) matching {pattern}")

    def _delete(self, alias: str, pattern: str, options: dict[str, Any]) -> None:
        dry_run = options["dry_run"]
        bar = _ProgressBar(self.stderr, options["progress"])
        matched = deleted = 0
        for page in scan_pages(alias, pattern, options["count"]):
            matched += len(page.keys)
            if dry_run:
                for key in page.keys[: max(0, 20 - (matched - len(page.keys)))]:
                    self.stdout.write(f"would delete {key.decode(errors='backslashreplace')}")
            else:
                deleted += unlink(alias, page.keys)
            bar.show(page.fraction, page.total, matched)
        bar.close()
        if dry_run:
            self.stdout.write(f"dry run: {matched} key(s) match {pattern}; nothing deleted")
        else:
            self.stdout.write(f"deleted {deleted} key(s) matching {pattern}")


class _ProgressBar:
    """A one-line progress bar on ``stream``, shown on long scans or when forced."""

    def __init__(self, stream: OutputWrapper, forced: bool | None) -> None:
        self.stream = stream
        self.forced = forced
        self.drawn = False

    def show(self, fraction: float | None, total: int | None, matched: int) -> None:
        if fraction is None or self.forced is False:
            return
        if self.forced is None and (total or 0) < PROGRESS_THRESHOLD:
            return
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"\r[{bar}] {fraction:4.0%} of {total} keys scanned, {matched} matched"
        self.stream.write(line, ending="")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("")
            self.stream.flush()
