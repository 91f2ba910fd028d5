"""Compare djredis's cache backend with django-redis, Django's builtin one and raw redis-py.

Run from the project root::

    python -m benchmarks.cache            # full run; rewrites the "cache" section of docs
    python -m benchmarks.cache --quick    # 3-round smoke test; leaves docs/ alone

Every contender talks to one redis-server started for the run (127.0.0.1, free port), each
under its own KEY_PREFIX. See ``benchmarks/_harness.py`` for how rounds are timed.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _report
from ._charts import PALETTE, grouped_bars
from ._harness import Contender, Results, run_rounds, warm_up

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.cache"
SECTION = "cache"
CHART = _report.DOCS_DIR / "benchmarks-cache.png"

OPERATIONS = ("get", "set", "get_many", "set_many")
TIMEOUT = 300
KEY = "user:42"
MANY = 100
VALUE: dict[str, Any] = {
    "id": 4242,
    "username": "alice",
    "email": "alice@example.com",
    "is_active": True,
    "roles": ["editor", "viewer"],
    "score": 12.5,
}
MANY_DATA: dict[str, Any] = {f"item:{i}": {**VALUE, "id": i} for i in range(MANY)}
MANY_KEYS = list(MANY_DATA)

RAW = "redis-py (raw)"
RAW_PIPELINE = "redis-py pipeline SET PX"
DJREDIS = "djredis"
DJANGO_REDIS = "django-redis"
DJANGO = "Django builtin"
ORDER = (RAW, RAW_PIPELINE, DJREDIS, DJANGO_REDIS, DJANGO)
COLORS = dict(zip(ORDER, PALETTE[: len(ORDER)], strict=True))

# (name, Django cache alias, BACKEND, KEY_PREFIX); the raw client uses prefix "bench0".
BACKENDS = (
    (DJREDIS, "djredis", "djredis.cache.RedisCache", "bench1"),
    (DJANGO_REDIS, "django_redis", "django_redis.cache.RedisCache", "bench2"),
    (DJANGO, "django", "django.core.cache.backends.redis.RedisCache", "bench3"),
)
RAW_PREFIX = "bench0"

# op -> (limit on djredis / raw redis-py, what the raw reference does)
TARGETS = {
    "get": (1.05, "GET + pickle.loads"),
    "set": (1.05, "pickle.dumps + SET EX"),
    "get_many": (1.3, "MGET + pickle.loads of each"),
    "set_many": (1.3, "pickle.dumps of each + MSET"),
}


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: dict[str, int]
    warm_calls: dict[str, int]
    write_docs: bool


# -- contenders -------------------------------------------------------------------------------


def configure_django(url: str) -> None:
    """Configure Django once, with one cache alias per backend, all on ``url``."""
    import django
    from django.conf import settings

    caches = {
        alias: {"BACKEND": backend, "LOCATION": url, "KEY_PREFIX": prefix}
        for _, alias, backend, prefix in BACKENDS
    }
    settings.configure(CACHES=caches, USE_TZ=True)
    django.setup()


def _protocol(client: Any) -> str:
    """Return the RESP version a redis-py client's connection negotiated (CLIENT INFO)."""
    return f"RESP{client.client_info()['resp']}"


def _backend_client(name: str, cache: Any) -> Any:
    """Return the redis-py client behind a cache backend, to ask it its protocol."""
    if name == DJANGO:
        return cache._cache.get_client(write=True)
    return cache.client.get_client(write=True)


def cache_contender(name: str, alias: str, backend: str) -> Contender:
    """Return a contender running the operations through ``caches[alias]``."""
    from django.core.cache import caches

    cache = caches[alias]
    ops = {
        "get": lambda: cache.get(KEY),
        "set": lambda: cache.set(KEY, VALUE, TIMEOUT),
        "get_many": lambda: cache.get_many(MANY_KEYS),
        "set_many": lambda: cache.set_many(MANY_DATA, TIMEOUT),
    }
    cache.set(KEY, VALUE, TIMEOUT)
    cache.set_many(MANY_DATA, TIMEOUT)
    protocol = _protocol(_backend_client(name, cache))
    return Contender(name, ops, f"`{backend}`, default OPTIONS ({protocol})")


def raw_contenders(client: Any) -> list[Contender]:
    """Return raw redis-py doing each operation with pickle, and the pipelined SET PX."""
    dumps, loads = pickle.dumps, pickle.loads
    key = f"{RAW_PREFIX}:1:{KEY}"
    many = {f"{RAW_PREFIX}:1:{k}": v for k, v in MANY_DATA.items()}
    many_keys = list(many)
    ttl_ms = TIMEOUT * 1000

    def set_many_pipeline() -> None:
        pipe = client.pipeline(transaction=False)
        for k, v in many.items():
            pipe.set(k, dumps(v), px=ttl_ms)
        pipe.execute()

    ops: dict[str, Callable[[], object]] = {
        "get": lambda: loads(client.get(key)),
        "set": lambda: client.set(key, dumps(VALUE), ex=TIMEOUT),
        "get_many": lambda: [loads(v) for v in client.mget(many_keys)],
        "set_many": lambda: client.mset({k: dumps(v) for k, v in many.items()}),
    }
    ops["set"]()
    set_many_pipeline()
    protocol = _protocol(client)
    return [
        Contender(RAW, ops, f"`redis.Redis.from_url(url)` + `pickle` ({protocol})"),
        Contender(
            RAW_PIPELINE,
            {"set_many": set_many_pipeline},
            f"same client, non-transactional pipeline of {MANY} `SET k v PX` ({protocol})",
        ),
    ]


def check_hits(contenders: Sequence[Contender]) -> None:
    """Fail unless every contender's reads return the stored values (timed reads hit)."""
    for contender in contenders:
        ops = contender.ops
        if "get" in ops and ops["get"]() != VALUE:
            raise RuntimeError(f"{contender.name}: get() does not return the stored value")
        if "get_many" in ops and len(ops["get_many"]()) != MANY:  # type: ignore[arg-type]
            raise RuntimeError(f"{contender.name}: get_many() does not return {MANY} values")


def build_contenders(server: RedisServer) -> list[Contender]:
    """Configure Django and return every contender, in report order."""
    import redis

    configure_django(server.url())
    contenders = raw_contenders(redis.Redis.from_url(server.url()))
    contenders += [cache_contender(name, alias, backend) for name, alias, backend, _ in BACKENDS]
    return contenders


# -- reporting --------------------------------------------------------------------------------


def _ratio(results: Results, op: str, name: str, reference: str, paired: bool = False) -> str:
    if not results.has(op, reference):
        return "—"
    if paired:
        return f"{results.paired_ratio(op, name, reference):.2f}x"
    return f"{results.ratio(op, name, reference):.2f}x"


def result_rows(results: Results) -> list[list[str]]:
    """Return one row per (operation, contender): medians, range and ratios."""
    rows = []
    for op in OPERATIONS:
        for name in ORDER:
            if not results.has(op, name):
                continue
            low, high = results.spread(op, name)
            rows.append(
                [
                    op,
                    name,
                    f"{results.median(op, name):.1f}",
                    f"{low:.1f}-{high:.1f}",
                    _ratio(results, op, name, RAW),
                    _ratio(results, op, name, RAW, paired=True),
                    _ratio(results, op, name, RAW_PIPELINE),
                ]
            )
    return rows


RESULT_HEADERS = (
    "operation",
    "contender",
    "median µs/op",
    "range over rounds",
    "x raw",
    "x raw (paired)",
    "x raw pipeline",
)
RESULT_ALIGN = "llrrrrr"


def target_rows(results: Results, code: bool = False) -> list[list[str]]:
    """Return one row per target: djredis vs raw redis-py, the limit, MET or NOT MET."""
    rows = []
    for op, (limit, reference) in TARGETS.items():
        ratio = results.ratio(op, DJREDIS, RAW)
        rows.append(
            [
                (f"`{op}`" if code else op) + (f" ({MANY} keys)" if op.endswith("_many") else ""),
                f"{results.median(op, DJREDIS):.1f} µs",
                f"{results.median(op, RAW):.1f} µs ({reference})",
                f"{ratio:.3f}x",
                f"{results.paired_ratio(op, DJREDIS, RAW):.3f}x",
                f"≤ {limit}x",
                "MET" if ratio <= limit else "NOT MET",
            ]
        )
    return rows


TARGET_HEADERS = ("operation", "djredis", "raw redis-py", "ratio", "paired", "target", "status")
TARGET_ALIGN = "lrrrrrl"


def draw_chart(results: Results, path: Path) -> Path:
    """Save a two-panel PNG: µs/op on a log scale, and each contender's ratio to raw."""
    import matplotlib.pyplot as plt

    def us(op: str, name: str) -> float | None:
        return results.median(op, name) if results.has(op, name) else None

    def ratio(op: str, name: str) -> float | None:
        return results.ratio(op, name, RAW) if results.has(op, name) else None

    labels = [op + (f"\n({MANY} keys)" if op.endswith("_many") else "") for op in OPERATIONS]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 9), constrained_layout=True)
    grouped_bars(top, OPERATIONS, ORDER, us, COLORS, lambda v: f"{v:.0f}")
    top.set_yscale("log")
    top.set_ylabel("µs per operation (median, log scale)")
    top.set_title("Time per cache operation: lower is better")
    top.set_xticks(range(len(OPERATIONS)), labels)
    top.margins(y=0.25)
    extents = grouped_bars(bottom, OPERATIONS, ORDER, ratio, COLORS, lambda v: f"{v:.2f}")
    _draw_targets(bottom, extents)
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_ylabel("x raw redis-py (MGET / MSET for 100 keys)")
    bottom.set_title("Relative to raw redis-py + pickle; red dashes: djredis target")
    bottom.set_xticks(range(len(OPERATIONS)), labels)
    bottom.set_ylim(0, max(2.0, bottom.get_ylim()[1] * 1.1))
    handles = dict(zip(*reversed(top.get_legend_handles_labels()), strict=True))
    names = [name for name in ORDER if name in handles]
    fig.legend([handles[n] for n in names], names, loc="outside right upper", fontsize=9)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_targets(ax: Any, extents: dict[str, tuple[float, float]]) -> None:
    """Draw each operation's target ratio as a dashed line across its group of bars."""
    for op, (limit, _) in TARGETS.items():
        left, right = extents[op]
        ax.hlines(limit, left, right, colors="#D55E00", linestyles="dashed", linewidth=1.5)
        ax.annotate(
            f"≤ {limit}x",
            (right, limit),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=8,
            color="#D55E00",
        )


def method_text(config: Config, contenders: Sequence[Contender]) -> str:
    """Return the Markdown describing what was measured and how."""
    size = len(pickle.dumps(VALUE))
    lines = [
        "- One `redis-server` started for the run on 127.0.0.1 (TCP loopback, same machine "
        "as the client), persistence off. Every contender uses it with its own KEY_PREFIX. "
        "Client and server share the machine's CPUs with whatever else runs there: the "
        "range column shows how noisy the run was.",
        f"- Value: a small dict (`pickle.dumps` gives {size} bytes). `get` is a hit on one "
        f"key; `set` stores it with a timeout of {TIMEOUT} s; `get_many` / `set_many` read / "
        f"write {MANY} such keys (all hits; `set_many` with timeout {TIMEOUT} s, except the "
        "raw MSET, which carries no TTL at all).",
        f"- {config.rounds} interleaved rounds. In each round, for each operation, every "
        f"contender times one batch of {config.calls['get']} calls (`get`/`set`) or "
        f"{config.calls['get_many']} calls (100-key operations) with "
        "`time.perf_counter_ns`; the order of the contenders rotates by one each round.",
        "- The GC is collected before and disabled during each batch. Every contender is "
        f"warmed up first ({config.warm_calls['get']} / {config.warm_calls['get_many']} calls "
        "per operation: connections open, Lua scripts loaded) and checked to read hits.",
        "- Reported: the median µs/op over the rounds (and the fastest-slowest round), and "
        "ratios of medians to raw redis-py (`x raw`); for `set_many` also to the raw "
        "pipeline of `SET k v PX`, the raw way to write many keys *with* a timeout. "
        "`x raw (paired)` is the median over rounds of the ratio within each round (the two "
        "batches ran moments apart), a cross-check that is less sensitive to load changing "
        "between rounds. MET / NOT MET uses the ratio of medians.",
        "",
        "Contenders:",
        "",
    ]
    lines += [f"- **{c.name}**: {c.description}" for c in contenders]
    return "\n".join(lines)


def markdown_section(
    config: Config, contenders: Sequence[Contender], results: Results, server_version: str
) -> str:
    """Return the whole ``cache`` section of docs/benchmarks.md."""
    return f"""{_report.section_head("Cache backend", MODULE, server_version)}

### Method

{method_text(config, contenders)}

### Results

{_report.markdown_table(RESULT_HEADERS, result_rows(results), RESULT_ALIGN)}

![Cache benchmark: µs per operation and ratio to raw redis-py]({CHART.name})

### Targets

djredis compared with raw redis-py doing the same command plus (de)serialization.

{_report.markdown_table(TARGET_HEADERS, target_rows(results, code=True), TARGET_ALIGN)}
"""


def print_results(results: Results) -> None:
    """Print the results and the targets as plain-text tables."""
    print()
    print(_report.text_table(RESULT_HEADERS, result_rows(results), RESULT_ALIGN))
    print()
    print(_report.text_table(TARGET_HEADERS, target_rows(results), TARGET_ALIGN))


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Return the run's configuration from the command line."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15)")
    parser.add_argument("--calls", type=int, help="calls per batch for get/set (default 2000)")
    parser.add_argument(
        "--many-calls", type=int, help="calls per batch for get_many/set_many (default 300)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds of small batches; leaves docs/ alone"
    )
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    single = args.calls or (300 if args.quick else 2000)
    many = args.many_calls or (50 if args.quick else 300)
    return Config(
        rounds=rounds,
        calls={"get": single, "set": single, "get_many": many, "set_many": many},
        warm_calls={"get": 300, "set": 300, "get_many": 30, "set_many": 30},
        write_docs=not (args.quick or args.no_docs),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, benchmark every contender, print and document the results."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        server_version = str(server.client().info("server")["redis_version"])
        contenders = build_contenders(server)
        warm_up(contenders, config.warm_calls)
        check_hits(contenders)
        print(f"Timing {len(contenders)} contenders, {config.rounds} rounds...", file=sys.stderr)
        results = run_rounds(contenders, OPERATIONS, config.calls, config.rounds)
    finally:
        server.stop()
    print_results(results)
    if config.write_docs:
        chart = draw_chart(results, CHART)
        page = _report.write_section(
            SECTION, markdown_section(config, contenders, results, server_version)
        )
        print(
            f"\nWrote {page.relative_to(_report.PROJECT_ROOT)} and "
            f"{chart.relative_to(_report.PROJECT_ROOT)}"
        )


if __name__ == "__main__":
    main()
