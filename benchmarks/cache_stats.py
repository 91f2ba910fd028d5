"""Time what djredis.cache.stats costs on the read path: the same cache, counting or not.

Run from the project root::

    python -m benchmarks.cache_stats          # full run; rewrites the "cache_stats" docs
    python -m benchmarks.cache_stats --quick  # 3-round smoke test; leaves docs/ alone

The counters are one uncontended lock per read in this process; a read is a round trip to
Redis. "counters off" is the same backend with its counters replaced by ones that do
nothing (here only, for the measurement); django-redis is timed alongside as a peer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _charts, _report
from ._harness import Contender, Results, run_rounds

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.cache_stats"
SECTION = "cache_stats"
CHART = "benchmarks-cache-stats.png"
COUNTING = "djredis, counting"
OFF = "djredis, counters off"
DJANGO_REDIS = "django-redis"
ORDER = (COUNTING, OFF, DJANGO_REDIS)
OPS = ("get (hit)", "get (miss)", "get_many (10 keys)")
KEYS = [f"k{i}" for i in range(10)]


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: int
    write_docs: bool


class NullCounters:
    """Counters that count nothing: the backend without statistics."""

    def record(self, hits: int, misses: int) -> None:
        """Do nothing."""


def build_contenders(server: RedisServer) -> list[Contender]:
    """Configure three caches on three databases, fill them, return their reads."""
    import django
    from django.conf import settings

    settings.configure(
        CACHES={
            "counting": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": server.url(1)},
            "off": {
                "BACKEND": "djredis.cache.RedisCache",
                "LOCATION": server.url(2),
                "KEY_PREFIX": "off",
            },
            "django_redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": server.url(3)},
        },
        USE_TZ=True,
    )
    django.setup()
    from django.core.cache import caches

    contenders = []
    for name, alias in [(COUNTING, "counting"), (OFF, "off"), (DJANGO_REDIS, "django_redis")]:
        cache: Any = caches[alias]
        if name == OFF:
            cache._stats = NullCounters()
        cache.set_many(dict.fromkeys(KEYS, "v" * 100), None)
        ops = {
            OPS[0]: lambda cache=cache: cache.get("k0"),
            OPS[1]: lambda cache=cache: cache.get("absent"),
            OPS[2]: lambda cache=cache: cache.get_many(KEYS),
        }
        contenders.append(Contender(name, ops, f"`{type(cache).__module__}`"))
    return contenders


HEADERS = ("operation", "contender", "median µs/op", "range", "x counters off", "paired")
ALIGN = "llrrrr"


def rows(results: Results) -> list[list[str]]:
    return [results.row(op, name, OFF) for op in OPS for name in ORDER]


def chart(results: Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    colors = dict(zip(ORDER, _charts.PALETTE, strict=False))
    _charts.grouped_bars(
        ax, OPS, ORDER, lambda op, name: results.median(op, name), colors, lambda v: f"{v:.0f}"
    )
    ax.set_ylabel("median µs per call (lower is better)")
    ax.set_title("Reads with and without djredis.cache.stats counters")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(_report.DOCS_DIR / CHART, dpi=110)


def markdown_section(config: Config, results: Results, server_version: str) -> str:
    return f"""{_report.section_head("Cache statistics overhead", MODULE, server_version)}

### Method

- One `redis-server` for the run on 127.0.0.1; each cache on its own database, 100-byte
  values. The machine was shared (2 cores, other work running).
- "{COUNTING}" is `djredis.cache.RedisCache` as shipped; "{OFF}" the same backend with its
  counters replaced by no-ops in this process; django-redis alongside as a peer.
- {config.rounds} interleaved rounds of {config.calls} calls per (operation, contender),
  order rotated each round. Reported: median µs/op, fastest and slowest round, ratio of
  medians to "{OFF}", and the median of per-round ratios (`paired`).

### Results

{_report.markdown_table(HEADERS, rows(results), ALIGN)}

Target: counting costs no measurable time next to the round trip (ratio within the
rounds' noise of 1.00).

![Reads with and without counters]({CHART})
"""


def parse_args(argv: Sequence[str] | None = None) -> Config:
    doc = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=doc)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15)")
    parser.add_argument("--calls", type=int, help="calls per batch (default 2000)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 200 calls; no docs")
    args = parser.parse_args(argv)
    return Config(
        rounds=args.rounds or (3 if args.quick else 15),
        calls=args.calls or (200 if args.quick else 2000),
        write_docs=not args.quick,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, time the contenders, print and document the results."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        server_version = str(server.client().info("server")["redis_version"])
        contenders = build_contenders(server)
        calls = dict.fromkeys(OPS, config.calls)
        results = run_rounds(contenders, OPS, calls, config.rounds)
    finally:
        server.stop()
    print()
    print(_report.text_table(HEADERS, rows(results), ALIGN))
    if config.write_docs:
        chart(results)
        page = _report.write_section(SECTION, markdown_section(config, results, server_version))
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
