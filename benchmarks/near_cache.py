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
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _report
from ._asgi import WrkResult, serve, wrk
from ._charts import PALETTE, grouped_bars
from ._harness import Contender, Results, run_rounds, warm_up

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path

MODULE = "benchmarks.near_cache"
SECTION = "near-cache"
CHART = _report.DOCS_DIR / "benchmarks-near-cache.png"
NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC = (
    "djredis + near-cache",
    "djredis",
    "Django locmem",
    "redis-py client-side cache",
)
GET, AGET = "get (sync)", "aget (async)"
VIEW = "ASGI request, 5 hot aget (in process)"
IN_PROCESS_CEILING = "no cache (ceiling)"
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}
SITE_MODES = {NEAR: "near", DJREDIS: "plain", "no cache (ceiling)": "none"}
CONCURRENCY = 50


@dataclass(frozen=True)
class Config:
    rounds: int
    calls: int
    writes: int
    asgi_rounds: int
    asgi_seconds: int
    write_docs: bool


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


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- 3. ASGI ---------------------------------------------------------------------------------


def run_asgi(url: str, config: Config) -> dict[str, list[WrkResult]]:
    samples: dict[str, list[WrkResult]] = {}
    names = list(SITE_MODES)
    for number in range(config.asgi_rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            env = {"DJREDIS_BENCH_NEAR": SITE_MODES[name], "DJREDIS_BENCH_REDIS": url}
            path = "/plain/" if SITE_MODES[name] == "none" else "/five/"
            with serve("benchmarks._near_site:application", free_port(), env) as base:
                wrk(base + path, CONCURRENCY, 1)  # warm-up (the near-cache fills)
                result = wrk(base + path, CONCURRENCY, config.asgi_seconds)
            samples.setdefault(name, []).append(result)
        print(f"  ASGI round {number + 1}/{config.asgi_rounds} done", file=sys.stderr)
    return samples


# -- report ----------------------------------------------------------------------------------


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def micro_rows(results: Results) -> list[list[str]]:
    rows = []
    for op in (GET, AGET, VIEW):
        for name in (NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC, IN_PROCESS_CEILING):
            if results.has(op, name):
                low, high = results.spread(op, name)
                rows.append([op, name, f"{results.median(op, name):.2f}",
                             f"{low:.2f}-{high:.2f}"])  # fmt: skip
    return rows


def staleness_rows(staleness: dict[str, list[float]]) -> list[list[str]]:
    return [
        [
            name,
            str(len(v)),
            f"{percentile(v, 0.5):.2f}",
            f"{percentile(v, 0.99):.2f}",
            f"{max(v):.2f}",
        ]
        for name, v in staleness.items()
    ]


def asgi_rows(samples: dict[str, list[WrkResult]]) -> list[list[str]]:
    return [
        [
            name,
            f"{_med([r.requests_per_second for r in s]):.0f}",
            f"{_med([r.p50_ms for r in s]):.2f}",
            f"{_med([r.p99_ms for r in s]):.2f}",
        ]
        for name, s in samples.items()
    ]


def target_rows(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]]
) -> list[list[str]]:
    def status(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    sync_locmem = results.ratio(GET, NEAR, LOCMEM)
    async_locmem = results.median(AGET, NEAR) / results.median(GET, LOCMEM)
    sync_faster = results.ratio(GET, DJREDIS, NEAR)
    async_faster = results.ratio(AGET, DJREDIS, NEAR)
    paired_sync = results.paired_ratio(GET, DJREDIS, NEAR)
    paired_async = results.paired_ratio(AGET, DJREDIS, NEAR)
    rows = [
        ["hot get: near-cache / locmem get (sync)", f"{sync_locmem:.2f}x", "≤ 2x",
         status(sync_locmem <= 2)],
        ["hot aget: near-cache aget / locmem get (sync; locmem has no native aget)",
         f"{async_locmem:.2f}x", "≤ 2x", status(async_locmem <= 2)],
        ["hot get: djredis without / with near-cache (sync; paired rounds: "
         f"{paired_sync:.1f}x)", f"{sync_faster:.1f}x", "≥ 10x", status(sync_faster >= 10)],
        ["hot aget: djredis without / with near-cache (async; paired rounds: "
         f"{paired_async:.1f}x)", f"{async_faster:.1f}x", "≥ 10x", status(async_faster >= 10)],
    ]  # fmt: skip
    view_gain = results.ratio(VIEW, DJREDIS, NEAR)
    view_paired = results.paired_ratio(VIEW, DJREDIS, NEAR)
    rows.append(
        [
            "ASGI request in process: µs without / with near-cache (paired rounds: "
            f"{view_paired:.2f}x)",
            f"{view_gain:.2f}x",
            "> 1x",
            status(view_gain > 1),
        ]
    )
    for name, values in staleness.items():
        p99 = percentile(values, 0.99)
        rows.append([f"staleness p99, {name}", f"{p99:.2f} ms", "≤ 5 ms", status(p99 <= 5)])
    if samples:
        near = _med([r.requests_per_second for r in samples[NEAR]])
        plain = _med([r.requests_per_second for r in samples[DJREDIS]])
        paired = _med(
            [
                a.requests_per_second / b.requests_per_second
                for a, b in zip(samples[NEAR], samples[DJREDIS], strict=True)
            ]
        )
        rows.append(
            [
                f"ASGI 5 hot keys: req/s with / without near-cache (paired rounds: {paired:.2f}x)",
                f"{near / plain:.2f}x",
                "> 1x",
                status(near > plain),
            ]
        )
        ceiling = _med([r.requests_per_second for r in samples["no cache (ceiling)"]])
        rows.append(["ASGI 5 hot keys: req/s with near-cache / no-cache ceiling",
                     f"{near / ceiling:.2f}x", "(reported)", "-"])  # fmt: skip
    return rows


def draw_chart(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]],
    path: Path,
) -> Path:  # fmt: skip
    import matplotlib.pyplot as plt

    colors = dict(
        zip((NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC, *SITE_MODES), PALETTE[2:], strict=False)
    )
    colors["no cache (ceiling)"] = PALETTE[1]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 5), constrained_layout=True)

    def us(op: str, name: str) -> float | None:
        return results.median(op, name) if results.has(op, name) else None

    grouped_bars(left, [GET, AGET], [NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC], us, colors,
                 lambda v: f"{v:.1f}")  # fmt: skip
    left.set_yscale("log")
    left.set_ylabel("µs per hot-key read (median, log scale)")
    left.set_title("Hot-key read: lower is better")
    left.legend(fontsize=8)
    names = list(staleness)
    middle.bar(range(len(names)), [percentile(staleness[n], 0.99) for n in names],
               color=PALETTE[2], label="p99")  # fmt: skip
    middle.bar(range(len(names)), [percentile(staleness[n], 0.5) for n in names],
               color=PALETTE[3], label="p50")  # fmt: skip
    middle.axhline(5, color="#D55E00", linestyle="dashed", linewidth=1.5, label="target p99")
    middle.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=8)
    middle.set_ylabel("ms from write completed to first local read of it")
    middle.set_title("Staleness after another process writes")
    middle.legend(fontsize=8)
    if samples:
        modes = list(samples)
        right.bar(range(len(modes)),
                  [_med([r.requests_per_second for r in samples[m]]) for m in modes],
                  color=[colors[m] for m in modes])  # fmt: skip
        right.set_xticks(range(len(modes)), [m.replace(" + ", "\n+ ") for m in modes], fontsize=8)
        right.set_ylabel("requests/s (median)")
        right.set_title("ASGI view awaiting 5 hot keys (uvicorn, wrk)")
    for ax in (left, middle, right):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]],
    config: Config, version: str,
) -> str:  # fmt: skip
    csc = (
        "measured above"
        if results.has(GET, REDIS_PY_CSC)
        else f"**not measured**: it needs Redis ≥ 7.4 and this machine runs {version} (Debian "
        "12's package; no newer server was available through apt or pip)"
    )
    parts = [
        _report.section_head("Near-cache", MODULE, version),
        "",
        "The machine was shared: 2 CPUs, with other work running during the run.",
        "",
        "### Method",
        "",
        f"- Hot-key read: one key holding a small dict, read {config.calls} times per batch, "
        f"{config.rounds} interleaved rounds with the order rotated, GC off during a batch; "
        "medians. The near-cache is warmed up and healthy first. `aget` runs on one event "
        "loop; Django's locmem has no native `aget` (it runs `get` in a thread), so the async "
        "target compares with locmem's sync `get`.",
        f"- redis-py's client-side cache: {csc}.",
        f"- Staleness: a second process writes a key {config.writes} times at random 2-12 ms "
        "gaps with redis-py and reports when each `SET` returned; this process reads the key "
        "through the near-cache and notes when it first sees each value. Reads every 0.2 ms "
        "(`polling reader`) or back to back (`busy reader`: the reading thread holds the GIL, "
        "so the invalidation thread waits for Python's switch interval, 5 ms).",
        f"- ASGI: uvicorn (1 worker), wrk with {CONCURRENCY} connections for "
        f"{config.asgi_seconds} s after a 1 s warm-up, {config.asgi_rounds} rounds rotated; "
        "medians. The view awaits five `cache.aget` of hot keys; the ceiling serves the same "
        "response without touching a cache.",
        "",
        "### Hot-key read (µs)",
        "",
        _report.markdown_table(
            ("operation", "contender", "median µs", "range over rounds"),
            micro_rows(results),
            "llrr",
        ),
        "",
        "### Staleness after another process writes (ms)",
        "",
        _report.markdown_table(
            ("reader", "writes seen", "p50", "p99", "max"), staleness_rows(staleness), "lrrrr"
        ),
    ]
    if samples:
        parts += ["", "### ASGI view reading 5 hot keys", "",
                  _report.markdown_table(("contender", "req/s", "p50 ms", "p99 ms"),
                                         asgi_rows(samples), "lrrr")]  # fmt: skip
    parts += [
        "",
        "### Targets",
        "",
        _report.markdown_table(
            ("target", "measured", "required", "status"),
            target_rows(results, staleness, samples),
            "lrrl",
        ),
        "",
        f"![near-cache benchmark]({CHART.name})",
    ]
    return "\n".join(parts) + "\n"


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
        samples = run_asgi(url, config) if config.asgi_rounds else {}
    finally:
        server.stop()
    print(_report.text_table(("operation", "contender", "median µs", "range"),
                             micro_rows(results), "llrr"))  # fmt: skip
    print(_report.text_table(("reader", "writes seen", "p50", "p99", "max"),
                             staleness_rows(staleness), "lrrrr"))  # fmt: skip
    if samples:
        print(_report.text_table(("contender", "req/s", "p50 ms", "p99 ms"),
                                 asgi_rows(samples), "lrrr"))  # fmt: skip
    print(_report.text_table(("target", "measured", "required", "status"),
                             target_rows(results, staleness, samples), "lrrl"))  # fmt: skip
    if config.write_docs:
        chart = draw_chart(results, staleness, samples, CHART)
        path = _report.write_section(
            SECTION, markdown(results, staleness, samples, config, version)
        )
        print(f"wrote {path} and {chart}")


if __name__ == "__main__":
    main()
