"""Measure rate limit decisions: djredis.ratelimit against django-ratelimit on django-redis.

Run from the project root::

    python -m benchmarks.ratelimit            # full run; rewrites the "ratelimit" section
    python -m benchmarks.ratelimit --quick    # a short smoke run; leaves docs/ alone

Measured against one redis-server started for the run:

1. decisions per second in process, each djredis algorithm (``Rule.check`` /
   ``await Rule.acheck``: one EVALSHA) against django-ratelimit 4.1's
   ``is_ratelimited(..., increment=True)`` on django-redis (``cache.add`` + ``cache.incr``),
   sync, async serial and async with 50 concurrent coroutines (django-ratelimit has no
   async API: it runs through ``sync_to_async``, as an async view would call it);
2. an ``async def`` view behind ``@ratelimit`` under uvicorn + wrk, against the same view
   without it.

In-process contenders are timed in interleaved rounds (order rotated each round) and
summarised by their median (``benchmarks/_harness.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _report
from ._asgi import WrkResult, serve, wrk
from ._charts import PALETTE, grouped_bars
from ._harness import Results
from .async_cache import CONCURRENCY, concurrent, serial

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path

MODULE = "benchmarks.ratelimit"
SECTION = "ratelimit"
CHART = _report.DOCS_DIR / "benchmarks-ratelimit.png"
SYNC, ASYNC, CONCURRENT = "sync", "async serial", "async, 50 concurrent"
MODES = (SYNC, ASYNC, CONCURRENT)
ALGORITHMS = ("sliding", "fixed", "gcra")
PEER = "django-ratelimit 4.1 (django-redis)"
ORDER = (*(f"djredis {a}" for a in ALGORITHMS), PEER)
COLORS = dict(zip(ORDER, (PALETTE[2], PALETTE[4], PALETTE[6], PALETTE[1]), strict=True))
# High enough that no run reaches it: every request is decided and allowed.
RATE = (10**9, 3600)
TARGET = 3.0


@dataclass(frozen=True)
class Config:
    rounds: int
    calls: int
    asgi_rounds: int
    asgi_seconds: int
    write_docs: bool


def configure_django(url: str) -> None:
    """Configure Django: a djredis cache and a django-redis cache on the benchmark server."""
    import django
    from django.conf import settings

    settings.configure(
        CACHES={
            "djredis": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": url},
            "django-redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url},
        },
        # django-ratelimit reads this; djredis rules name their cache explicitly.
        RATELIMIT_USE_CACHE="django-redis",
        USE_TZ=True,
    )
    django.setup()


SyncCall = Callable[[], Any]
AsyncCall = Callable[[], Awaitable[Any]]


def contenders() -> tuple[dict[str, SyncCall], dict[str, AsyncCall]]:
    """Return one decision per contender, sync and async."""
    from asgiref.sync import sync_to_async
    from django.test import RequestFactory
    from django_ratelimit.core import is_ratelimited

    from djredis.ratelimit import Rule

    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9")
    sync: dict[str, SyncCall] = {}
    asynchronous: dict[str, AsyncCall] = {}
    for algorithm in ALGORITHMS:
        rule = Rule(key="ip", rate=RATE, algorithm=algorithm, group="bench", cache="djredis")
        sync[f"djredis {algorithm}"] = lambda rule=rule: rule.check(request)
        asynchronous[f"djredis {algorithm}"] = lambda rule=rule: rule.acheck(request)

    def peer() -> bool:
        return is_ratelimited(request, group="bench", key="ip", rate="1000000000/h",
                              increment=True)  # fmt: skip

    sync[PEER] = peer
    asynchronous[PEER] = sync_to_async(peer)
    return sync, asynchronous


def _sync_batch(call: SyncCall, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n / 1000


def run_in_process(config: Config) -> Results:
    """Time every (mode, contender) once per round, contenders rotated; µs per decision."""
    sync, asynchronous = contenders()
    loop = asyncio.new_event_loop()
    names = list(ORDER)

    def timed(mode: str, name: str, n: int) -> float:
        if mode == SYNC:
            return _sync_batch(sync[name], n)
        runner = serial if mode == ASYNC else concurrent
        return loop.run_until_complete(runner(asynchronous[name], n))

    for mode in MODES:  # warm up: connections, scripts, thread pools
        for name in names:
            timed(mode, name, 200)
    results = Results()
    for number in range(config.rounds):
        for mode in MODES:
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                gc.collect()
                gc.disable()
                try:
                    results.add(mode, name, timed(mode, name, config.calls))
                finally:
                    gc.enable()
        print(f"  round {number + 1}/{config.rounds} done", file=sys.stderr)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    return results


# -- under uvicorn ---------------------------------------------------------------------------

VIEWS = {"@ratelimit (gcra)": ("/limited/", "gcra"), "@ratelimit (sliding)":
         ("/limited/", "sliding"), "no decorator": ("/plain/", "gcra")}  # fmt: skip


def run_asgi(url: str, config: Config) -> dict[str, list[WrkResult]]:
    """Serve each view once per round (order rotated); wrk with 50 connections."""
    samples: dict[str, list[WrkResult]] = {}
    names = list(VIEWS)
    for number in range(config.asgi_rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            path, algorithm = VIEWS[name]
            env = {"DJREDIS_BENCH_REDIS": url, "DJREDIS_BENCH_ALGORITHM": algorithm}
            with serve("benchmarks._ratelimit_site:application", free_port(), env) as base:
                wrk(base + path, CONCURRENCY, 1)
                samples.setdefault(name, []).append(
                    wrk(base + path, CONCURRENCY, config.asgi_seconds)
                )
        print(f"  ASGI round {number + 1}/{config.asgi_rounds} done", file=sys.stderr)
    return samples


# -- reporting -------------------------------------------------------------------------------

MICRO_HEADERS = ("mode", "contender", "median µs/decision", "decisions/s", "range µs",
                 "x django-ratelimit (throughput)")  # fmt: skip
ASGI_HEADERS = ("view", "requests/s", "p50 ms", "p99 ms", "x no decorator")


def micro_rows(results: Results) -> list[list[str]]:
    rows = []
    for mode in MODES:
        for name in ORDER:
            low, high = results.spread(mode, name)
            median = results.median(mode, name)
            rows.append([
                mode, name, f"{median:.1f}", f"{1e6 / median:,.0f}", f"{low:.1f}-{high:.1f}",
                f"{results.paired_ratio(mode, PEER, name):.2f}x",
            ])  # fmt: skip
    return rows


def asgi_rows(samples: dict[str, list[WrkResult]]) -> list[list[str]]:
    ceiling = statistics.median(s.requests_per_second for s in samples["no decorator"])
    rows = []
    for name, runs in samples.items():
        rps = statistics.median(s.requests_per_second for s in runs)
        rows.append([
            name, f"{rps:.0f}", f"{statistics.median(s.p50_ms for s in runs):.1f}",
            f"{statistics.median(s.p99_ms for s in runs):.1f}", f"{rps / ceiling:.2f}x",
        ])  # fmt: skip
    return rows


def target_rows(results: Results) -> list[list[str]]:
    rows = []
    for mode in MODES:
        for algorithm in ALGORITHMS:
            ratio = results.paired_ratio(mode, PEER, f"djredis {algorithm}")
            rows.append([f"{mode}: djredis {algorithm} vs django-ratelimit", f"{ratio:.2f}x",
                         f"≥ {TARGET:.0f}x", "MET" if ratio >= TARGET else "NOT MET"])  # fmt: skip
    return rows


def draw_chart(results: Results, path: Any = CHART) -> Any:
    """Draw decisions/s per mode and contender."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)

    def rate(mode: str, name: str) -> float | None:
        return 1e6 / results.median(mode, name) if results.has(mode, name) else None

    grouped_bars(ax, MODES, ORDER, rate, COLORS, lambda v: f"{v:,.0f}")
    ax.set_ylabel("decisions per second (median; higher is better)")
    ax.set_title("Rate limit decisions: djredis.ratelimit vs django-ratelimit on django-redis")
    ax.margins(y=0.25)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=9, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(results: Results, samples: dict[str, list[WrkResult]] | None, config: Config,
             version: str) -> str:  # fmt: skip
    parts = [
        _report.section_head("Rate limiting", MODULE, version),
        "",
        "The machine is shared: 2 cores, with other work running during the measurement.",
        "",
        "### Method",
        "",
        "- One `redis-server` for the run on 127.0.0.1. Every decision is allowed (a rate "
        "no run reaches), so each contender does its full work every time.",
        "- djredis: `Rule(key='ip', rate=...).check(request)` / `await .acheck(request)`, "
        "one EVALSHA on the server's clock. django-ratelimit 4.1: `is_ratelimited(request, "
        "group, key='ip', rate, increment=True)` on django-redis 7.0 (`cache.add` then "
        "`cache.incr`: two round trips); in async code through `sync_to_async`, since it has "
        "no async API.",
        f"- {config.rounds} interleaved rounds of {config.calls} decisions per (mode, "
        "contender), order rotated each round, GC off in a batch; medians reported. "
        f"`async, 50 concurrent` spreads the decisions over {CONCURRENCY} coroutines. "
        "Ratios are paired: the median over rounds of django-ratelimit's time / djredis's "
        "time in the same round, which cancels the load changes of a shared machine.",
        "",
        "### Decisions in process",
        "",
        f"![decisions per second]({CHART.name})",
        "",
        _report.markdown_table(MICRO_HEADERS, micro_rows(results), "llrrrr"),
    ]
    if samples:
        parts += [
            "",
            "### An async view under uvicorn + wrk",
            "",
            f"One uvicorn worker, wrk with {CONCURRENCY} connections for "
            f"{config.asgi_seconds} s after a 1 s warm-up, {config.asgi_rounds} rounds "
            "(views rotated), medians. Every request is decided (and allowed).",
            "",
            _report.markdown_table(ASGI_HEADERS, asgi_rows(samples), "lrrrr"),
        ]
    parts += ["", "### Targets", "",
              _report.markdown_table(("target", "measured", "required", "status"),
                                     target_rows(results), "lrrl")]  # fmt: skip
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, no docs")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--asgi-rounds", type=int, default=3)
    parser.add_argument("--asgi-seconds", type=int, default=5)
    parser.add_argument("--no-asgi", action="store_true", help="skip the uvicorn part")
    args = parser.parse_args(argv)
    if args.quick:
        return Config(3, 200, 0 if args.no_asgi else 1, 2, False)
    return Config(args.rounds, args.calls, 0 if args.no_asgi else args.asgi_rounds,
                  args.asgi_seconds, True)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print (and, unless --quick, write) the results."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        url = server.url()
        version = server.client().info("server")["redis_version"]
        configure_django(url)
        results = run_in_process(config)
        samples = run_asgi(url, config) if config.asgi_rounds else None
    finally:
        server.stop()
    print(_report.text_table(MICRO_HEADERS, micro_rows(results), "llrrrr"))
    if samples:
        print(_report.text_table(ASGI_HEADERS, asgi_rows(samples), "lrrrr"))
    print(_report.text_table(("target", "measured", "required", "status"),
                             target_rows(results), "lrrl"))  # fmt: skip
    if config.write_docs:
        draw_chart(results)
        path = _report.write_section(SECTION, markdown(results, samples, config, version))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
