"""Compare djredis's set / sorted-set / hash methods with django-redis 7.0's, and raw redis-py.

Run from the project root::

    python -m benchmarks.structures            # full run; rewrites its docs section
    python -m benchmarks.structures --quick    # 3-round smoke test; leaves docs/ alone

One redis-server is started for the run; each contender uses its own KEY_PREFIX. See
``benchmarks/_harness.py`` for how rounds are timed (interleaved, rotated, medians).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import _report
from ._charts import PALETTE, grouped_bars
from ._harness import Contender, Results, run_rounds, warm_up

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.structures"
SECTION = "structures"
CHART = _report.DOCS_DIR / "benchmarks-structures.png"

OPERATIONS = ("sadd", "smembers", "sismember", "zadd", "zrange", "hset")
SET_SIZE = 50
ZSET_SIZE = 100
TOP = 10
MEMBER: tuple[Any, ...] = (7, "alice", "editor")  # set members must be hashable

RAW = "redis-py + pickle"
DJREDIS = "djredis"
DJANGO_REDIS = "django-redis 7.0"
ORDER = (RAW, DJREDIS, DJANGO_REDIS)
COLORS = dict(zip(ORDER, PALETTE[: len(ORDER)], strict=True))

WHAT = {
    "sadd": "add one member already present (a tuple)",
    "smembers": f"read a set of {SET_SIZE} tuple members",
    "sismember": "test one member",
    "zadd": "set one member's score",
    "zrange": f"top {TOP} of {ZSET_SIZE} with scores",
    "hset": "set one field to a tuple",
}


def _members() -> list[tuple[Any, ...]]:
    return [(i, *MEMBER[1:]) for i in range(SET_SIZE)]


def cache_ops(cache: Any) -> dict[str, Callable[[], object]]:
    """The operations through a cache object's django-redis API."""
    for member in _members():
        cache.sadd("s", member)
    cache.zadd("z", {f"player{i}": i for i in range(ZSET_SIZE)})
    return {
        "sadd": lambda: cache.sadd("s", MEMBER),
        "smembers": lambda: cache.smembers("s"),
        "sismember": lambda: cache.sismember("s", MEMBER),
        "zadd": lambda: cache.zadd("z", {"player3": 3}),
        "zrange": lambda: cache.zrange("z", 0, TOP - 1, desc=True, withscores=True),
        "hset": lambda: cache.hset("h", "f", MEMBER),
    }


def raw_ops(client: Any) -> dict[str, Callable[[], object]]:
    """What a hand-written redis-py version does: pickle members, decode replies."""
    dumps, loads = pickle.dumps, pickle.loads
    client.sadd("raw:s", *[dumps(m) for m in _members()])
    client.zadd("raw:z", {dumps(f"player{i}"): i for i in range(ZSET_SIZE)})
    member = dumps(MEMBER)
    player = dumps("player3")
    return {
        "sadd": lambda: client.sadd("raw:s", member),
        "smembers": lambda: [loads(m) for m in client.smembers("raw:s")],
        "sismember": lambda: bool(client.sismember("raw:s", member)),
        "zadd": lambda: client.zadd("raw:z", {player: 3}),
        "zrange": lambda: [
            (loads(m), s) for m, s in client.zrange("raw:z", 0, TOP - 1, desc=True, withscores=True)
        ],
        "hset": lambda: client.hset("raw:h", "f", dumps(MEMBER)),
    }


def build_contenders(server: RedisServer) -> list[Contender]:
    import django
    import redis
    from django.conf import settings

    settings.configure(USE_TZ=True)
    django.setup()
    from django_redis.cache import RedisCache as DjangoRedisCache

    from djredis.cache import RedisCache

    ours = RedisCache(server.url(), {"KEY_PREFIX": "bench1"})
    theirs = DjangoRedisCache(server.url(), {"KEY_PREFIX": "bench3"})
    contenders = [
        Contender(RAW, raw_ops(redis.Redis.from_url(server.url())), "`redis.Redis` + `pickle`"),
        Contender(DJREDIS, cache_ops(ours), "`djredis.cache.RedisCache`, sync methods"),
        Contender(DJANGO_REDIS, cache_ops(theirs), "`django_redis.cache.RedisCache` 7.0"),
    ]
    check(contenders)
    return contenders


def check(contenders: Sequence[Contender]) -> None:
    """Fail unless every contender reads what was stored (the timed reads are real)."""
    for contender in contenders:
        members = contender.ops["smembers"]()
        if len(members) != SET_SIZE:  # type: ignore[arg-type]
            raise RuntimeError(f"{contender.name}: smembers gave {len(members)} members")  # type: ignore[arg-type]
        top = contender.ops["zrange"]()
        if top[0] != ("player99", 99.0):  # type: ignore[index]
            raise RuntimeError(f"{contender.name}: zrange gave {top!r}")


def result_rows(results: Results) -> list[list[str]]:
    return [results.row(op, name, DJANGO_REDIS, 2) for op in OPERATIONS for name in ORDER]


HEADERS = (
    "operation",
    "contender",
    "median µs/op",
    "range over rounds",
    "x django-redis",
    "x django-redis (paired)",
)
ALIGN = "llrrrr"


def draw_chart(results: Results) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5), constrained_layout=True)
    grouped_bars(
        ax, OPERATIONS, ORDER, lambda op, n: results.median(op, n), COLORS, lambda v: f"{v:.0f}"
    )
    ax.set_ylabel("µs per operation (median)")
    ax.set_title("Sets, sorted sets, hashes on the cache object: lower is better")
    ax.legend(fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.margins(y=0.2)
    fig.savefig(CHART, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 rounds, docs untouched")
    args = parser.parse_args(argv)
    rounds, calls = (3, 300) if args.quick else (11, 1500)
    server = RedisServer().start()
    try:
        contenders = build_contenders(server)
        warm_up(contenders, dict.fromkeys(OPERATIONS, 200))
        results = run_rounds(contenders, OPERATIONS, dict.fromkeys(OPERATIONS, calls), rounds)
        version = server.client().info()["redis_version"]
    finally:
        server.stop()
    rows = result_rows(results)
    print(_report.text_table(HEADERS, rows, ALIGN))
    if args.quick:
        return
    draw_chart(results)
    what = "\n".join(f"- `{op}`: {text}." for op, text in WHAT.items())
    head = _report.section_head("Sets, sorted sets and hashes vs django-redis", MODULE, version)
    body = f"""{head}

### Method

- One `redis-server` on 127.0.0.1 started for the run; each contender has its own
  KEY_PREFIX. {rounds} interleaved rounds of {calls} calls per operation and contender, the
  contenders' order rotated each round (`benchmarks/_harness.py`); medians reported, and
  the paired ratio (median of the per-round ratios) as a cross-check.
- The machine was shared while this ran (2 cores, other helpers' work running): the range
  column shows the noise; trust the ratios more than the absolute µs.
- Sync methods only: django-redis 7.0 has no `a*` methods for these (djredis's `a*` twins
  share the code path measured here, with the multiplexed async connection instead).

{what}

### Results

{_report.markdown_table(HEADERS, rows, ALIGN)}

![structures chart]({CHART.name})
"""
    _report.write_section(SECTION, body)


if __name__ == "__main__":
    main()
