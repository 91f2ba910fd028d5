"""Walk a cache's keyspace page by page with SCAN, for tools that list or delete keys.

``scan_pages`` yields each page of matching keys with an estimate of how far the scan has
got (SCAN examines about COUNT keys per call; DBSIZE is the whole), so a command can show
a progress bar on a long scan. On Redis Cluster the scan covers every primary, through
redis-py's own ``scan_iter``, and gives no estimate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redis.cluster import RedisCluster

from djredis.cache.base import glob_escape
from djredis.cache.stats import _backend

__all__ = ["ScanPage", "cache_pattern", "prefix_pattern", "scan_pages", "unlink"]


@dataclass(frozen=True)
class ScanPage:
    """Keys matching the pattern in one SCAN reply, and how far the scan has got."""

    keys: list[bytes]
    examined: int
    """About how many keys the scan has looked at so far (COUNT per call)."""
    total: int | None
    """DBSIZE when the scan started (None on Redis Cluster)."""

    @property
    def fraction(self) -> float | None:
        """Return the estimated share of the keyspace scanned, from 0 to 1."""
        if not self.total:
            return None
        return min(1.0, self.examined / self.total)


def cache_pattern(alias: str, search: str, version: int | None = None) -> str:
    """Return the Redis glob for cache keys matching ``search`` (``prefix:version:search``)."""
    pattern: str = _backend(alias)._pattern(search, version)
    return pattern


def prefix_pattern(prefix: str) -> str:
    """Return the Redis glob for raw keys starting with ``prefix``."""
    if not prefix:
        raise ValueError("the prefix must not be empty (that would match every key)")
    return glob_escape(prefix) + "*"


def scan_pages(alias: str, pattern: str, count: int = 1000) -> Iterator[ScanPage]:
    """Yield the keys matching the Redis glob ``pattern``, one SCAN page at a time."""
    client: Any = _backend(alias).client.get_client(write=True)
    if isinstance(client, RedisCluster):
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=count):
            batch.append(key)
            if len(batch) >= count:
                yield ScanPage(batch, 0, None)
                batch = []
        yield ScanPage(batch, 0, None)
        return
    total = int(client.dbsize())
    cursor, examined = 0, 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count)
        examined += count
        yield ScanPage(list(keys), examined if cursor else max(examined, total), total)
        if not cursor:
            return


def unlink(alias: str, keys: list[bytes]) -> int:
    """Unlink ``keys`` on the primary of ``alias``; return how many existed."""
    if not keys:
        return 0
    client: Any = _backend(alias).client.get_client(write=True)
    return int(client.unlink(*keys))
