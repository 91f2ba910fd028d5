"""Walk a cache's keyspace page by page with SCAN, for tools that list or delete keys.

``scan_pages`` yields each page of matching keys with an estimate of how far the scan has
got (SCAN examines about COUNT keys per call; the primaries' DBSIZE is the whole), so a
command can show a progress bar on a long scan. Every command goes through the cache's own
connections and routing: one server, or each primary of a Redis Cluster in turn (SCAN
cursors belong to one server), never a replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from djredis._core.commands import Call, Operation, Primaries
from djredis.cache.base import glob_escape
from djredis.cache.stats import djredis_cache

__all__ = ["ScanPage", "cache_pattern", "prefix_pattern", "scan_pages", "unlink"]

# (primaries, index of the one being scanned, its cursor)
_Position = tuple[tuple[Any, ...], int, int]


@dataclass(frozen=True)
class ScanPage:
    """Keys matching the pattern in one SCAN reply, and how far the scan has got."""

    keys: list[bytes]
    examined: int
    """About how many keys the scan has looked at so far (COUNT per call)."""
    total: int
    """The primaries' DBSIZE when the scan started."""

    @property
    def fraction(self) -> float | None:
        """Return the estimated share of the keyspace scanned, from 0 to 1."""
        if not self.total:
            return None
        return min(1.0, self.examined / self.total)


def cache_pattern(alias: str, search: str, version: int | None = None) -> str:
    """Return the Redis glob for cache keys matching ``search`` (``prefix:version:search``)."""
    pattern: str = djredis_cache(alias)._pattern(search, version)
    return pattern


def prefix_pattern(prefix: str) -> str:
    """Return the Redis glob for raw keys starting with ``prefix``."""
    if not prefix:
        raise ValueError("the prefix must not be empty (that would match every key)")
    return glob_escape(prefix) + "*"


def _op_start() -> Operation[tuple[_Position, int]]:
    nodes = tuple((yield Primaries()))
    total = 0
    for node in nodes:
        total += int((yield Call(("DBSIZE",), node=node)))
    return (nodes, 0, 0), total


def _op_page(position: _Position, pattern: str, count: int) -> Operation[Any]:
    nodes, index, cursor = position
    next_cursor, raws = yield Call(
        ("SCAN", cursor, "MATCH", pattern, "COUNT", count), node=nodes[index]
    )
    keys = [raw if isinstance(raw, bytes) else str(raw).encode() for raw in raws]
    if int(next_cursor):
        return (nodes, index, int(next_cursor)), keys, False
    done_node = index + 1 >= len(nodes)
    return (None if done_node else (nodes, index + 1, 0)), keys, True


def scan_pages(alias: str, pattern: str, count: int = 1000) -> Iterator[ScanPage]:
    """Yield the keys matching the Redis glob ``pattern``, one SCAN page at a time."""
    backend = djredis_cache(alias)
    position: _Position | None
    position, total = backend._run(_op_start(), "scan", (((), 0, 0), 0))
    if not position[0]:
        return
    examined = finished = 0
    while position is not None:
        position, keys, node_done = backend._run(
            _op_page(position, pattern, count), "scan", (None, [], True)
        )
        examined += count
        if node_done:  # a finished server counts as fully examined
            finished += 1
            examined = max(
                examined, round(total * finished / len(position[0]) if position else total)
            )
        yield ScanPage(keys, examined, total)


def _op_unlink(keys: list[bytes]) -> Operation[int]:
    return int((yield Call(("UNLINK", *keys))))


def unlink(alias: str, keys: list[bytes]) -> int:
    """Unlink ``keys`` (one SCAN page's) on the primary of ``alias``; return how many existed."""
    if not keys:
        return 0
    deleted: int = djredis_cache(alias)._run(_op_unlink(keys), "unlink", 0)
    return deleted
