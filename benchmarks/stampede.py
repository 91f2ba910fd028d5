"""Cache stampedes: the guide's ``cached_function`` against djredis's ``memoize``.

Run from the project root::

    python -m benchmarks.stampede          # full run; rewrites the "stampede" docs section
    python -m benchmarks.stampede --quick  # a smoke test; leaves docs/ alone

Three measurements, on one redis-server started for the run:

1. **Stampede.** 100 callers (threads, or asyncio tasks) released together on a key that
   is missing, whose computation takes 50 ms (a sleep: a database query's shape). Per
   contender: how many times the function ran, and each caller's latency (p50/p99/max
   over every caller of every round). Contenders run in rotated order each round.
2. **Hit path.** A hit through ``memoize`` against a plain ``cache.get`` of the same value
   (and the guide's decorator), in interleaved rounds (``benchmarks/_harness.py``).
3. **Signed values.** ``get``/``set`` with ``OPTIONS["SIGN_VALUES"]`` against the same
   cache without it, interleaved; the paired ratio is the cost of signing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _report
from ._harness import Contender, Results, run_rounds
from ._stampede_storms import (
    CALLERS,
    COMPUTE,
    STAMPEDERS,
    VALUE,
    StormResults,
    cached_function,
    run_storms,
)

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.stampede"
SECTION = "stampede"
CHART = "benchmarks-stampede.png"
TITLE = "Stampedes, memoize and signed values"


@dataclass(frozen=True)
class Config:
    rounds: int
    hit_rounds: int
    hit_calls: int
    write_docs: bool


# -- hit path and signing -----------------------------------------------------------------------


def hit_contenders() -> list[Contender]:
    from django.core.cache import caches

    from djredis.cache import memoize

    plain = caches["default"]

    @memoize(300)
    def expensive_query(user_id: int, include_details: bool = False) -> dict[str, Any]:
        return VALUE

    @cached_function
    def guide_query(user_id, include_details=False):  # type: ignore[no-untyped-def]
        return VALUE

    plain.set("plain", VALUE, 300)
    expensive_query(7)
    guide_query(7)
    signed = caches["signed"]
    unsigned = caches["unsigned"]
    signed.set("v", VALUE, 300)
    unsigned.set("v", VALUE, 300)
    if not (signed.get("v") == unsigned.get("v") == plain.get("plain") == VALUE):
        raise RuntimeError("the caches do not return the stored value")
    return [
        Contender("cache.get", {"hit": lambda: plain.get("plain")}),
        Contender("djredis memoize hit", {"hit": lambda: expensive_query(7)}),
        Contender("guide cached_function hit", {"hit": lambda: guide_query(7)}),
        Contender(
            "unsigned",
            {"get": lambda: unsigned.get("v"), "set": lambda: unsigned.set("v", VALUE, 300)},
        ),
        Contender(
            "SIGN_VALUES",
            {"get": lambda: signed.get("v"), "set": lambda: signed.set("v", VALUE, 300)},
        ),
    ]


# -- reporting ----------------------------------------------------------------------------------

STORM_HEADERS = (
    "contender",
    "callers",
    "runs per stampede (median, max)",
    "p50 ms",
    "p99 ms",
    "max ms",
)
STORM_ALIGN = "llrrrr"
HIT_HEADERS = ("operation", "contender", "median µs/op", "range over rounds", "paired ratio")
HIT_ALIGN = "llrrr"


def storm_rows(storms: StormResults) -> list[list[str]]:
    rows = []
    for stampeder in STAMPEDERS:
        name, runs = stampeder.name, storms.runs[stampeder.name]
        rows.append(
            [
                stampeder.name,
                stampeder.kind,
                f"{statistics.median(runs):g}, {max(runs)}",
                f"{storms.latency(name, 50) * 1000:.1f}",
                f"{storms.latency(name, 99) * 1000:.1f}",
                f"{storms.latency(name, None) * 1000:.1f}",
            ]
        )
    return rows


def hit_rows(results: Results) -> list[list[str]]:
    rows = []
    for op, name, reference in (
        ("hit", "cache.get", "cache.get"),
        ("hit", "djredis memoize hit", "cache.get"),
        ("hit", "guide cached_function hit", "cache.get"),
        ("get", "unsigned", "unsigned"),
        ("get", "SIGN_VALUES", "unsigned"),
        ("set", "unsigned", "unsigned"),
        ("set", "SIGN_VALUES", "unsigned"),
    ):
        low, high = results.spread(op, name)
        rows.append(
            [
                op,
                name,
                f"{results.median(op, name):.1f}",
                f"{low:.1f}-{high:.1f}",
                f"{results.paired_ratio(op, name, reference):.3f}x",
            ]
        )
    return rows


TARGET_HEADERS = ("target", "measured", "goal", "verdict")


def target_rows(storms: StormResults, results: Results) -> list[list[str]]:
    rows = []
    for name in (
        "djredis memoize",
        "djredis memoize, async def",
        "djredis get_or_set(stampede=True)",
    ):
        worst = max(storms.runs[name])
        rows.append(
            [
                f"{name}: computations per stampede (worst round)",
                str(worst),
                "1",
                _verdict(worst <= 1),
            ]
        )
        # Against the guide's logic on the same kind of callers (threads or tasks).
        guide = "guide logic, async port" if "async" in name else "guide cached_function"
        p99 = storms.latency(name, 99) / storms.latency(guide, 99)
        rows.append(
            [f"{name}: p99 latency vs {guide}", f"{p99:.2f}x", "≤ 1.25x", _verdict(p99 <= 1.25)]
        )
    for op in ("get", "set"):
        ratio = results.paired_ratio(op, "SIGN_VALUES", "unsigned")
        rows.append(
            [
                f"SIGN_VALUES `{op}` vs unsigned (paired)",
                f"{ratio:.3f}x",
                "≤ 1.10x",
                _verdict(ratio <= 1.10),
            ]
        )
    return rows


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def draw_chart(storms: StormResults, results: Results) -> None:
    import matplotlib.pyplot as plt

    from ._charts import PALETTE

    names = [s.name for s in STAMPEDERS]
    fig, (runs_ax, wait_ax, hit_ax) = plt.subplots(1, 3, figsize=(15, 5.2))
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    medians = [statistics.median(storms.runs[n]) for n in names]
    bars = runs_ax.barh(names, medians, color=colors)
    runs_ax.bar_label(bars, labels=[f"{m:g}" for m in medians], padding=2, fontsize=8)
    runs_ax.invert_yaxis()
    runs_ax.set_xlabel(f"computations per stampede of {CALLERS} callers (median)")
    runs_ax.set_title("How often the 50 ms function runs")
    for i, name in enumerate(names):
        points = [storms.latency(name, q) * 1000 for q in (50, 99, None)]
        wait_ax.plot([0, 1, 2], points, marker="o", color=colors[i], label=name)
    wait_ax.set_xticks([0, 1, 2], ["p50", "p99", "max"])
    wait_ax.axhline(COMPUTE * 1000, color="#CC79A7", linestyle="--", linewidth=1)
    wait_ax.set_ylabel("caller latency, ms")
    wait_ax.set_title("Caller latency (dashed: the computation)")
    wait_ax.legend(fontsize=7)
    labels = ["cache.get", "memoize hit", "guide hit", "get", "get signed", "set", "set signed"]
    keys = [
        ("hit", "cache.get"),
        ("hit", "djredis memoize hit"),
        ("hit", "guide cached_function hit"),
        ("get", "unsigned"),
        ("get", "SIGN_VALUES"),
        ("set", "unsigned"),
        ("set", "SIGN_VALUES"),
    ]
    values = [results.median(op, name) for op, name in keys]
    bars = hit_ax.bar(labels, values, color=[PALETTE[2], PALETTE[4], PALETTE[1]] + [PALETTE[3]] * 4)
    hit_ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], padding=2, fontsize=8)
    hit_ax.set_ylabel("µs per call (median of rounds)")
    hit_ax.set_title("Hit path and signed values")
    hit_ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(_report.DOCS_DIR / CHART, dpi=110)
    plt.close(fig)


def markdown_section(
    config: Config, storms: StormResults, results: Results, server_version: str
) -> str:
    return f"""{_report.section_head(TITLE, MODULE, server_version)}

The machine was shared: 2 cores, with other work running during the measurement.

### Method

- One `redis-server` on 127.0.0.1; Django's `default` cache is djredis on it.
- **Stampede**: {CALLERS} callers released together (a `threading.Barrier`, or
  `asyncio.gather`) on a missing key whose computation sleeps {COMPUTE * 1000:.0f} ms.
  {config.rounds} rounds; each round deletes the key, then runs every contender once, in
  an order rotated each round. Latency is per caller, from its release to its answer;
  reported is the median over rounds of each round's p50, p99 and slowest caller.
- The guide's `cached_function` is reproduced verbatim from the full guide; its async
  row is the same logic written with `aget`/`aset` (the guide has no async version).
- **Hit path / signing**: {config.hit_rounds} interleaved rounds of {config.hit_calls}
  calls (`benchmarks/_harness.py`); the value is a small dict (pickled, about 100 bytes).
  The paired ratio is the median over rounds of contender / reference in the same round.

### Stampede: {CALLERS} callers on a missing key, {COMPUTE * 1000:.0f} ms computation

{_report.markdown_table(STORM_HEADERS, storm_rows(storms), STORM_ALIGN)}

### Hit path and signed values

{_report.markdown_table(HIT_HEADERS, hit_rows(results), HIT_ALIGN)}

### Targets

{_report.markdown_table(TARGET_HEADERS, target_rows(storms, results), "lrrl")}

Reading it: without protection (the guide's decorator, Django's `get_or_set`) every caller
runs the function; with it one does and the others wait for its value, so a stampede costs
one query instead of {CALLERS}. Latency stays close to the computation for everyone: the
waiters see the value within a few milliseconds of it being stored. With threads the tail
(p99, max) is mostly the time 100 threads take to get the GIL back on 2 shared cores, for
every contender alike. A `memoize` hit costs its key (arguments bound and hashed) on top
of the `GET`.

![Stampedes, hit path and signing]({CHART})
"""


# -- main ---------------------------------------------------------------------------------------


def configure_django(server: RedisServer) -> None:
    import django
    from django.conf import settings

    def conf(db: int, **options: Any) -> dict[str, Any]:
        return {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": server.url(db),
            "OPTIONS": options,
        }

    settings.configure(
        CACHES={"default": conf(0), "unsigned": conf(1), "signed": conf(2, SIGN_VALUES=True)},
        SECRET_KEY="benchmark-only",
        USE_TZ=True,
    )
    django.setup()


def parse_args(argv: Sequence[str] | None = None) -> Config:
    doc = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=doc)
    parser.add_argument("--rounds", type=int, help="stampede rounds (default 9)")
    parser.add_argument("--hit-rounds", type=int, help="hit-path rounds (default 15)")
    parser.add_argument("--hit-calls", type=int, help="calls per hit-path batch (default 2000)")
    parser.add_argument("--quick", action="store_true", help="a smoke test; no docs")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    return Config(
        rounds=args.rounds or (2 if args.quick else 9),
        hit_rounds=args.hit_rounds or (3 if args.quick else 15),
        hit_calls=args.hit_calls or (200 if args.quick else 2000),
        write_docs=not (args.quick or args.no_docs),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, run the stampedes and the hit-path rounds, document them."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        server_version = str(server.client().info("server")["redis_version"])
        configure_django(server)
        print(
            f"Stampedes: {len(STAMPEDERS)} contenders, {config.rounds} rounds...", file=sys.stderr
        )
        storms = run_storms(config.rounds)
        contenders = hit_contenders()
        calls = {"hit": config.hit_calls, "get": config.hit_calls, "set": config.hit_calls}
        print(f"Hit path: {config.hit_rounds} rounds...", file=sys.stderr)
        results = run_rounds(contenders, ("hit", "get", "set"), calls, config.hit_rounds)
    finally:
        server.stop()
    print()
    print(_report.text_table(STORM_HEADERS, storm_rows(storms), STORM_ALIGN))
    print()
    print(_report.text_table(HIT_HEADERS, hit_rows(results), HIT_ALIGN))
    if config.write_docs:
        draw_chart(storms, results)
        page = _report.write_section(
            SECTION, markdown_section(config, storms, results, server_version)
        )
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)} and docs/{CHART}")


if __name__ == "__main__":
    main()
