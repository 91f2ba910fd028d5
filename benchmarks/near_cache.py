"""Measure the near-cache (``OPTIONS['NEAR_CACHE']``): hot-key reads, staleness, a view.

Run from the project root::

    python -m benchmarks.near_cache            # full run; rewrites the "near-cache" section
    python -m benchmarks.near_cache --quick    # a short smoke run; leaves docs/ alone

Three measurements, against one redis-server started for the run:

1. a hot-key ``get`` (sync) and ``aget`` (async, one event loop): djredis with the
   near-cache, djredis without it, Django's locmem backend; interleaved rounds, medians;
2. staleness: another process writes a key at random intervals and reports when each
   write completed; this process reads the key through the near-cache and notes when it
   first sees each value (reads every 0.2 ms, and in a busy loop); p50/p99/max;
3. an ASGI view awaiting 5 hot ``cache.aget`` under uvicorn + wrk: with and without the
   near-cache, against the same view without any cache (the ceiling).

redis-py's own client-side cache is measured only when the server is Redis >= 7.4 (it
needs RESP3 and Redis 7.4's tracking); otherwise the report says it was not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import random
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import _report
from ._asgi import WrkResult, serve, wrk
from ._harness import Contender, Results, run_rounds, warm_up
from ._near_report import (
    AGET,
    ASGI_HEADERS,
    CHART,
    CONCURRENCY,
    DJREDIS,
    GET,
    IN_PROCESS_CEILING,
    LOCMEM,
    NEAR,
    REDIS_PY_CSC,
    SECTION,
    SITE_MODES,
    VALUE,
    VIEW,
    Config,
    asgi_rows,
    draw_chart,
    markdown,
    micro_rows,
    staleness_rows,
    target_rows,
)

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path


def configure_django(url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        CACHES={
            NEAR: {
                "BACKEND": "djredis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "n-near",
                "OPTIONS": {"NEAR_CACHE": True},
            },
            DJREDIS: {"BACKEND": "djredis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "n"},
            LOCMEM: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        },
        USE_TZ=True,
        ROOT_URLCONF="benchmarks._near_views",
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
    )
    django.setup()


def _server_at_least(version: str, wanted: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= wanted


def _csc_get(url: str) -> Callable[[], Any] | None:
    """redis-py's client-side cache (RESP3), a GET + unpickle per call, or None."""
    import pickle

    import redis
    from redis.cache import CacheConfig

    client = redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig())
    client.set("csc:hot", pickle.dumps(VALUE))
    return lambda: pickle.loads(client.get("csc:hot"))


# -- 1. hot key, sync and async --------------------------------------------------------------


def wait_healthy(cache: Any) -> None:
    deadline = time.monotonic() + 10
    while not (cache.near_stats() or {}).get("healthy"):
        cache.get("hot")
        if time.monotonic() > deadline:
            raise RuntimeError("the near-cache did not become healthy")
        time.sleep(0.01)


def run_sync(url: str, version: str, config: Config) -> Results:
    from django.core.cache import caches

    contenders = []
    for name in (NEAR, DJREDIS, LOCMEM):
        cache = caches[name]
        cache.set("hot", VALUE, None)
        contenders.append(Contender(name, {GET: lambda cache=cache: cache.get("hot")}))
    wait_healthy(caches[NEAR])
    if _server_at_least(version, (7, 4)):
        csc = _csc_get(url)
        if csc is not None:
            contenders.append(Contender(REDIS_PY_CSC, {GET: csc}))
    warm_up(contenders, {GET: 1000})
    if caches[NEAR].get("hot") != VALUE:
        raise RuntimeError("the near-cache does not read the value")
    return run_rounds(contenders, [GET], {GET: config.calls}, config.rounds)


def run_async(config: Config, results: Results) -> None:
    from django.core.cache import caches

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        name: (lambda cache=caches[name]: cache.aget("hot")) for name in (NEAR, DJREDIS, LOCMEM)
    }

    async def batch(call: Callable[[], Awaitable[Any]], n: int) -> float:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(n):
                await call()
            return (time.perf_counter_ns() - start) / n / 1000
        finally:
            gc.enable()

    async def rounds() -> None:
        for call in calls.values():  # warm-up: this loop's connection, local entries
            for _ in range(500):
                await call()
        names = list(calls)
        for number in range(config.rounds):
            for name in names[number % len(names) :] + names[: number % len(names)]:
                # Django's locmem aget runs get() in a thread: fewer calls keep it short.
                n = config.calls // 10 if name == LOCMEM else config.calls
                results.add(AGET, name, await batch(calls[name], n))

    asyncio.run(rounds())


def run_asgi_in_process(config: Config, results: Results) -> None:
    """Call Django's ASGI application directly (no server, no sockets): µs per request."""
    from django.core.asgi import get_asgi_application
    from django.core.cache import caches

    from ._near_views import KEYS

    for alias in (NEAR, DJREDIS):
        caches[alias].set_many(dict.fromkeys(KEYS, VALUE), None)
    app = get_asgi_application()
    paths = {NEAR: "/near/", DJREDIS: "/plain/", IN_PROCESS_CEILING: "/none/"}

    def receiver() -> Callable[[], Awaitable[dict[str, Any]]]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect: Django cancels this when done
            raise AssertionError

        return receive

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")

    def scope(path: str) -> dict[str, Any]:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "root_path": "", "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
                "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}  # fmt: skip

    async def batch(path: str, n: int) -> float:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(n):
                await app(scope(path), receiver(), send)
            return (time.perf_counter_ns() - start) / n / 1000
        finally:
            gc.enable()

    async def rounds() -> None:
        for path in paths.values():
            await batch(path, 200)
        names = list(paths)
        for number in range(config.rounds):
            for name in names[number % len(names) :] + names[: number % len(names)]:
                results.add(VIEW, name, await batch(paths[name], max(config.calls // 20, 100)))

    asyncio.run(rounds())


# -- 2. staleness ----------------------------------------------------------------------------


def _writer(url: str, writes: int, pipe: Any) -> None:
    """Another process: write 1..writes at random 2-12 ms gaps; report each completion."""
    import redis

    from djredis.cache.codec import Codec
    from djredis.compressors import resolve_compressor
    from djredis.serializers import resolve_serializer

    codec = Codec(resolve_serializer(None, setting="x"), resolve_compressor(None, setting="y"))
    client = redis.Redis.from_url(url)
    pipe.recv()  # the reader is ready
    for seq in range(1, writes + 1):
        time.sleep(random.uniform(0.002, 0.012))
        client.set("n-near:1:stale", codec.encode(seq))
        pipe.send((seq, time.monotonic()))
    pipe.send(None)


def measure_staleness(url: str, writes: int, pause: float) -> list[float]:
    """Return, per write, ms from its completion to the first near-cache read seeing it."""
    from django.core.cache import caches

    cache = caches[NEAR]
    cache.set("stale", 0, None)
    wait_healthy(cache)
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    writer = multiprocessing.get_context("spawn").Process(
        target=_writer, args=(url, writes, theirs)
    )
    writer.start()
    seen: dict[int, float] = {}
    done: dict[int, float] = {}
    ours.send("go")
    last, finished = 0, False
    while not finished or (len(done) > len(seen) and time.monotonic() - max(done.values()) < 1):
        value = cache.get("stale")
        now = time.monotonic()
        if isinstance(value, int) and value > last:
            seen[value], last = now, value
        while ours.poll():
            message = ours.recv()
            if message is None:
                finished = True
            else:
                done[message[0]] = message[1]
        if pause:
            time.sleep(pause)
    writer.join()
    return [max(0.0, seen[seq] - done[seq]) * 1000 for seq in done if seq in seen]


# -- 3. ASGI ---------------------------------------------------------------------------------


def run_asgi(url: str, config: Config) -> tuple[dict[str, list[WrkResult]], dict[str, list[float]]]:
    """Serve each contender once per round; return wrk's results and, with the near-cache,
    the share of reads answered locally during the run."""
    samples: dict[str, list[WrkResult]] = {}
    local: dict[str, list[float]] = {}
    names = list(SITE_MODES)
    for number in range(config.asgi_rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            env = {"DJREDIS_BENCH_NEAR": SITE_MODES[name], "DJREDIS_BENCH_REDIS": url}
            path = "/plain/" if SITE_MODES[name] == "none" else "/five/"
            with serve("benchmarks._near_site:application", free_port(), env) as base:
                wrk(base + path, CONCURRENCY, 1)  # warm-up (the near-cache fills)
                before = _near_counts(base)
                result = wrk(base + path, CONCURRENCY, config.asgi_seconds)
                after = _near_counts(base)
            samples.setdefault(name, []).append(result)
            if before and after:
                hits, misses = after[0] - before[0], after[1] - before[1]
                local.setdefault(name, []).append(hits / max(hits + misses, 1))
        print(f"  ASGI round {number + 1}/{config.asgi_rounds} done", file=sys.stderr)
    return samples, local


def _near_counts(base: str) -> tuple[int, int] | None:
    """Return the site's near-cache (hits, misses), or None without a near-cache."""
    with urllib.request.urlopen(base + "/stats/", timeout=5) as response:
        stats = json.loads(response.read())
    return None if stats is None else (stats["hits"], stats["misses"])


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, no docs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--asgi-rounds", type=int, default=3)
    parser.add_argument("--asgi-seconds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        return Config(3, 2000, 100, 1, 2, False)
    return Config(args.rounds, args.calls, args.writes, args.asgi_rounds, args.asgi_seconds, True)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        url = server.url()
        version = server.client().info("server")["redis_version"]
        configure_django(url)
        results = run_sync(url, version, config)
        run_async(config, results)
        run_asgi_in_process(config, results)
        staleness = {
            "polling reader (0.2 ms)": measure_staleness(url, config.writes, 0.0002),
            "busy reader": measure_staleness(url, config.writes, 0.0),
        }
        samples, local = run_asgi(url, config) if config.asgi_rounds else ({}, {})
    finally:
        server.stop()
    print(_report.text_table(("operation", "contender", "median µs", "range"),
                             micro_rows(results), "llrr"))  # fmt: skip
    print(_report.text_table(("reader", "writes seen", "p50", "p99", "max"),
                             staleness_rows(staleness), "lrrrr"))  # fmt: skip
    if samples:
        print(_report.text_table(ASGI_HEADERS,
                                 asgi_rows(samples, local), "lrrrr"))  # fmt: skip
    print(_report.text_table(("target", "measured", "required", "status"),
                             target_rows(results, staleness, samples), "lrrl"))  # fmt: skip
    if config.write_docs:
        chart = draw_chart(results, staleness, samples, CHART)
        path = _report.write_section(
            SECTION, markdown(results, staleness, samples, local, config, version)
        )
        print(f"wrote {path} and {chart}")


if __name__ == "__main__":
    main()
