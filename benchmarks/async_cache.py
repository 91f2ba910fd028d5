"""Measure the async cache API: djredis's native a* methods against the peers.

Run from the project root::

    python -m benchmarks.async_cache            # full run; rewrites the "async" section
    python -m benchmarks.async_cache --quick    # a short smoke run; leaves docs/ alone

Three measurements, all against one redis-server started for the run:

1. serial ``aget`` (one coroutine, one hit at a time), µs per call;
2. 50 coroutines doing ``aget`` concurrently on one event loop, µs per call (the inverse of
   throughput);
3. whole requests under uvicorn (1 and 2 workers) loaded by wrk with 50 connections: an
   ``async def`` view awaiting three ``cache.aget`` and one awaiting ``cache.aget_many`` of
   20 keys, against the same view without any cache. Requests/s, p50/p99, and the peak
   number of Redis connections and new connections per request in steady state.

The in-process contenders are timed in interleaved rounds (order rotated each round) and
summarised by their median, like every djredis benchmark (``benchmarks/_harness.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import pickle
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _report
from ._asgi import WrkResult, serve, wrk
from ._harness import Results

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path

MODULE = "benchmarks.async_cache"
SECTION = "async"
SERIAL, CONCURRENT = "serial aget", "50 concurrent aget"
DJREDIS, RAW = "djredis", "redis.asyncio (raw)"
DJANGO_REDIS, BUILTIN = "django-redis", "Django builtin"
NO_CACHE = "Django, no cache"
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}
CONCURRENCY = 50


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: int
    asgi_rounds: int
    asgi_seconds: int
    write_docs: bool


# -- in process ------------------------------------------------------------------------------

AsyncCall = Callable[[], Awaitable[Any]]


def configure_django(url: str) -> None:
    """Configure Django once with the three cache backends on the benchmark server."""
    import django
    from django.conf import settings

    settings.configure(
        CACHES={
            DJREDIS: {
                "BACKEND": "djredis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "a-djredis",
            },
            DJANGO_REDIS: {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "a-django-redis",
            },
            BUILTIN: {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "a-builtin",
            },
        },
        USE_TZ=True,
    )
    django.setup()


def contenders(url: str) -> dict[str, AsyncCall]:
    """Return one ``aget`` hit per contender, as a no-argument coroutine function."""
    import redis.asyncio
    from django.core.cache import caches

    calls: dict[str, AsyncCall] = {}
    for name in (DJREDIS, DJANGO_REDIS, BUILTIN):
        cache = caches[name]
        cache.set("hit", VALUE, None)
        calls[name] = lambda cache=cache: cache.aget("hit")
    raw = redis.asyncio.Redis.from_url(url, max_connections=CONCURRENCY)

    async def raw_get() -> Any:
        return pickle.loads(await raw.get("raw-hit"))

    calls[RAW] = raw_get
    return calls


async def serial(call: AsyncCall, n: int) -> float:
    """Await ``call`` ``n`` times in a row; return µs per call."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await call()
    return (time.perf_counter_ns() - start) / n / 1000


async def concurrent(call: AsyncCall, n: int) -> float:
    """Run ``n`` calls spread over 50 coroutines; return µs per call."""
    per_worker = max(1, n // CONCURRENCY)

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    start = time.perf_counter_ns()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return (time.perf_counter_ns() - start) / (per_worker * CONCURRENCY) / 1000


def run_in_process(url: str, config: Config) -> Results:
    """Time serial and concurrent aget hits per contender, interleaved, on one loop."""
    import redis

    redis.Redis.from_url(url).set("raw-hit", pickle.dumps(VALUE))
    loop = asyncio.new_event_loop()
    calls = contenders(url)
    names = list(calls)
    results = Results()
    modes: dict[str, Callable[[AsyncCall, int], Awaitable[float]]] = {
        SERIAL: serial, CONCURRENT: concurrent,
    }  # fmt: skip
    for name in names:  # warm up: connections open, thread pools started
        for mode in modes.values():
            loop.run_until_complete(mode(calls[name], 200))
    for number in range(config.rounds):
        for op, mode in modes.items():
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                gc.collect()
                gc.disable()
                try:
                    results.add(op, name, loop.run_until_complete(mode(calls[name], config.calls)))
                finally:
                    gc.enable()
        print(f"  round {number + 1}/{config.rounds} done", file=sys.stderr)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    return results


# -- under uvicorn ---------------------------------------------------------------------------

SITE_BACKENDS = {DJREDIS: "djredis", DJANGO_REDIS: "django-redis", BUILTIN: "builtin",
                 NO_CACHE: "none"}  # fmt: skip
VIEWS = {"three aget": "/three/", "aget_many(20)": "/many/"}


@dataclass
class Served:
    """One wrk run against one contender's view, plus what Redis saw meanwhile."""

    result: WrkResult
    peak_connections: int
    new_connections_per_request: float


def _count_connections(client: Any) -> int:
    me = client.client_id()
    return sum(1 for c in client.client_list() if int(c["id"]) != me)


def _watch_connections(client: Any, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _count_connections(client))
        time.sleep(0.05)


def serve_once(name: str, view: str, url: str, workers: int, seconds: int) -> Served:
    """Start uvicorn for ``name``, warm it up, then load ``view`` with wrk."""
    import redis

    client = redis.Redis.from_url(url)
    baseline = _count_connections(client)  # whatever is open before this server starts
    path = "/plain/" if name == NO_CACHE else VIEWS[view]
    env = {"DJREDIS_BENCH_BACKEND": SITE_BACKENDS[name], "DJREDIS_BENCH_REDIS": url}
    with serve("benchmarks._async_site:application", free_port(), env, workers) as base:
        wrk(base + path, CONCURRENCY, 1)  # warm-up: steady state before measuring
        before = int(client.info("stats")["total_connections_received"])
        stop, peak = threading.Event(), [0]
        watcher = threading.Thread(target=_watch_connections, args=(client, stop, peak))
        watcher.start()
        try:
            result = wrk(base + path, CONCURRENCY, seconds)
        finally:
            stop.set()
            watcher.join()
        after = int(client.info("stats")["total_connections_received"])
    # The watcher's own polling client is not counted; its one connection predates `before`.
    client.close()
    return Served(result, max(0, peak[0] - baseline), (after - before) / max(1, result.requests))


def run_asgi(url: str, config: Config) -> dict[tuple[int, str, str], list[Served]]:
    """Serve every (workers, view, contender) once per round, contenders rotated."""
    samples: dict[tuple[int, str, str], list[Served]] = {}
    names = list(SITE_BACKENDS)
    for number in range(config.asgi_rounds):
        for workers in (1, 2):
            for view in VIEWS:
                for name in names[number % len(names) :] + names[: number % len(names)]:
                    served = serve_once(name, view, url, workers, config.asgi_seconds)
                    samples.setdefault((workers, view, name), []).append(served)
        print(f"  ASGI round {number + 1}/{config.asgi_rounds} done", file=sys.stderr)
    return samples


# -- reporting -------------------------------------------------------------------------------


def micro_rows(results: Results) -> list[list[str]]:
    rows = []
    for op in (SERIAL, CONCURRENT):
        for name in (RAW, DJREDIS, DJANGO_REDIS, BUILTIN):
            low, high = results.spread(op, name)
            rows.append([
                op, name, f"{results.median(op, name):.1f}", f"{low:.1f}-{high:.1f}",
                f"{results.ratio(op, name, RAW):.2f}x",
                f"{results.ratio(op, DJANGO_REDIS, name):.2f}x",
            ])  # fmt: skip
    return rows


MICRO_HEADERS = ("operation", "contender", "median µs/call", "range over rounds", "x raw",
                 "throughput x django-redis")  # fmt: skip


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def asgi_rows(samples: dict[tuple[int, str, str], list[Served]]) -> list[list[str]]:
    rows = []
    for (workers, view, name), served in sorted(samples.items()):
        rows.append([
            str(workers), view, name,
            f"{_med([s.result.requests_per_second for s in served]):.0f}",
            f"{_med([s.result.p50_ms for s in served]):.1f}",
            f"{_med([s.result.p99_ms for s in served]):.1f}",
            str(max(s.peak_connections for s in served)),
            f"{_med([s.new_connections_per_request for s in served]):.3f}",
        ])  # fmt: skip
    return rows


ASGI_HEADERS = ("workers", "view", "contender", "requests/s", "p50 ms", "p99 ms",
                "peak Redis connections", "new connections / request")  # fmt: skip


Samples = dict[tuple[int, str, str], list[Served]]


def _rps(samples: Samples, workers: int, view: str, name: str) -> float:
    return _med([s.result.requests_per_second for s in samples[(workers, view, name)]])


def target_rows(results: Results, samples: Samples | None) -> list[list[str]]:
    """Return (target, measured, required, status) rows for the issue's targets."""

    def status(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    serial_ratio = results.ratio(SERIAL, DJREDIS, RAW)
    throughput = results.ratio(CONCURRENT, DJANGO_REDIS, DJREDIS)
    rows = [
        ["serial `aget` vs raw redis.asyncio GET + unpickle", f"{serial_ratio:.2f}x",
         "≤ 1.1x", status(serial_ratio <= 1.1)],
        ["50 concurrent `aget`: throughput vs django-redis", f"{throughput:.2f}x", "≥ 5x",
         status(throughput >= 5)],
    ]  # fmt: skip
    if samples:
        for workers in (1, 2):
            three = _rps(samples, workers, "three aget", DJREDIS)
            vs_builtin = three / _rps(samples, workers, "three aget", BUILTIN)
            vs_ceiling = three / _rps(samples, workers, "three aget", NO_CACHE)
            many = _rps(samples, workers, "aget_many(20)", DJREDIS) / _rps(
                samples, workers, "aget_many(20)", DJANGO_REDIS
            )
            peak = max(
                s.peak_connections for view in VIEWS for s in samples[(workers, view, DJREDIS)]
            )
            fresh = max(
                _med([s.new_connections_per_request for s in samples[(workers, view, DJREDIS)]])
                for view in VIEWS
            )
            rows += [
                [f"{workers} worker(s): three-`aget` view vs Django builtin", f"{vs_builtin:.2f}x",
                 "≥ 3x", status(vs_builtin >= 3)],
                [f"{workers} worker(s): three-`aget` view vs no-cache ceiling",
                 f"{vs_ceiling:.2f}x", "≥ 0.75x", status(vs_ceiling >= 0.75)],
                [f"{workers} worker(s): `aget_many` view vs django-redis", f"{many:.2f}x",
                 "≥ 4x", status(many >= 4)],
                [f"{workers} worker(s): peak Redis connections (djredis)", str(peak),
                 f"≤ {4 * workers}", status(peak <= 4 * workers)],
                [f"{workers} worker(s): new Redis connections per request (djredis)",
                 f"{fresh:.4f}", "0 in steady state", status(fresh < 0.001)],
            ]  # fmt: skip
    return rows


def markdown(
    results: Results,
    samples: dict[tuple[int, str, str], list[Served]] | None,
    config: Config,
    server_version: str,
) -> str:
    """Return the "async" section of docs/benchmarks.md."""
    machine = "\n".join(f"- {k}: {v}" for k, v in _report.machine_info(server_version))
    parts = [
        "## Async cache API (`benchmarks.async_cache`)",
        "",
        f"Generated {_report.now_utc()} by:",
        "",
        "```sh",
        _report.command_line(MODULE),
        "```",
        "",
        "### Machine",
        "",
        machine,
        "",
        "### Method",
        "",
        "- One `redis-server` for the run on 127.0.0.1; persistence off.",
        f"- In process, on one event loop: `serial aget` awaits one hit at a time; "
        f"`50 concurrent aget` spreads the same number of hits over {CONCURRENCY} coroutines. "
        f"{config.rounds} interleaved rounds of {config.calls} calls, contender order "
        "rotated each round, GC off during a batch; medians reported.",
        "- Contenders: djredis's native `aget` (one multiplexed connection per loop); "
        "django-redis and Django's builtin backend (their `aget` is `sync_to_async`); raw "
        f"`redis.asyncio` GET + `pickle.loads` with a {CONCURRENCY}-connection pool.",
        f"- Under uvicorn (1 and 2 workers, no middleware), wrk with {CONCURRENCY} "
        f"connections for {config.asgi_seconds} s after a 1 s warm-up, "
        f"{config.asgi_rounds} rounds, contenders rotated; medians reported. Peak Redis "
        "connections are sampled from `CLIENT LIST` every 50 ms; new connections per "
        "request come from `total_connections_received`.",
        "",
        "### In process",
        "",
        _report.markdown_table(MICRO_HEADERS, micro_rows(results), "llrrrr"),
    ]
    if samples:
        parts += ["", "### Under uvicorn + wrk", "",
                  _report.markdown_table(ASGI_HEADERS, asgi_rows(samples), "rllrrrrr")]  # fmt: skip
    parts += ["", "### Targets", "",
              _report.markdown_table(("target", "measured", "required", "status"),
                                     target_rows(results, samples), "lrrl")]  # fmt: skip
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, no docs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--asgi-rounds", type=int, default=3)
    parser.add_argument("--asgi-seconds", type=int, default=5)
    parser.add_argument("--no-asgi", action="store_true", help="skip the uvicorn part")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    if args.quick:
        return Config(3, 300, 1 if not args.no_asgi else 0, 2, False)
    return Config(args.rounds, args.calls, 0 if args.no_asgi else args.asgi_rounds,
                  args.asgi_seconds, not args.no_docs)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print (and, unless --quick, write) the results."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        url = server.url()
        version = server.client().info("server")["redis_version"]
        configure_django(url)
        results = run_in_process(url, config)
        samples = run_asgi(url, config) if config.asgi_rounds else None
    finally:
        server.stop()
    print(_report.text_table(MICRO_HEADERS, micro_rows(results), "llrrrr"))
    if samples:
        print(_report.text_table(ASGI_HEADERS, asgi_rows(samples), "rllrrrrr"))
    print(_report.text_table(("target", "measured", "required", "status"),
                             target_rows(results, samples), "lrrl"))  # fmt: skip
    if config.write_docs:
        path = _report.write_section(SECTION, markdown(results, samples, config, version))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
