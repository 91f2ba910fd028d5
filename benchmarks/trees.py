"""Paired before/after: the same figures for two copies of djredis's source, interleaved.

    git archive 68d16c3 src | tar -x -C /tmp/before      # the code before a change
    python -m benchmarks.trees --before /tmp/before/src  # against ./src, 9 rounds

Each round runs one fresh process per tree (in an order that alternates each round), all
against one redis-server started here; each process imports djredis from its tree and
times the transport's figures of issue 19: serial ``get`` and ``aget``, 50 concurrent
``aget``, ``set_many(100)`` with a timeout (and a raw ``MSET`` of the same values, timed in
the same process), and, with the pure-Python reply reader (``PARSER_CLASS`` = redis-py's
``_RESP2Parser``, what an install without hiredis uses), ``get`` of one 10 MB value and
``get_many`` of 1,000 x 10 KB. The report gives each figure's median per tree and the
paired ratio after/before (the median of the per-round ratios: the rounds share the
machine's state, so the pair is what the comparison rests on).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _report  # noqa: E402
from tests._servers import RedisServer  # noqa: E402  (needs the project root on sys.path)

# name -> (unit, lower is better)
FIGURES = {
    "get": "µs",
    "aget": "µs",
    "aget x50": "µs/op",
    "set_many(100)": "µs",
    "mset(100) raw": "µs",
    "get 10 MB (python reader)": "ms",
    "get_many 1000x10 KB (python reader)": "ms",
}

_PROBE = r"""
import asyncio, json, statistics, sys, time
import django
from django.conf import settings
url, reps = sys.argv[1], int(sys.argv[2])
python_reader = {"PARSER_CLASS": "redis._parsers.resp2._RESP2Parser"}
settings.configure(CACHES={
    "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "t"},
    "py": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "p",
           "OPTIONS": python_reader},
}, USE_TZ=True)
django.setup()
import djredis, redis
from django.core.cache import caches
assert djredis.__file__.startswith(sys.argv[3]), djredis.__file__
cache, py = caches["default"], caches["py"]
raw = redis.Redis.from_url(url)
out = {}

def timed(fn, n, scale):
    samples = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - start) / n / scale)
    return statistics.median(samples)

cache.set("hit", "x" * 100, None)
for _ in range(300): cache.get("hit")
out["get"] = timed(lambda: cache.get("hit"), reps, 1000)
values = {f"k{i}": "v" * 100 for i in range(100)}
cache.set_many(values, 300)
out["set_many(100)"] = timed(lambda: cache.set_many(values, 300), max(50, reps // 20), 1000)
encoded = {f"r{i}": b"v" * 100 for i in range(100)}
out["mset(100) raw"] = timed(lambda: raw.mset(encoded), max(50, reps // 20), 1000)
big = "b" * (10 * 1024 * 1024)
py.set("big", big, None)
py.get("big")
out["get 10 MB (python reader)"] = timed(lambda: py.get("big"), 3, 1_000_000)
many = {f"m{i}": "m" * 10240 for i in range(1000)}
py.set_many(many, None)
keys = list(many)
py.get_many(keys)
out["get_many 1000x10 KB (python reader)"] = timed(lambda: py.get_many(keys), 3, 1_000_000)

async def main():
    for _ in range(300): await cache.aget("hit")
    async def serial(n):
        start = time.perf_counter_ns()
        for _ in range(n):
            await cache.aget("hit")
        return (time.perf_counter_ns() - start) / n / 1000
    async def concurrent(n):
        per = n // 50
        async def worker():
            for _ in range(per):
                await cache.aget("hit")
        start = time.perf_counter_ns()
        await asyncio.gather(*(worker() for _ in range(50)))
        return (time.perf_counter_ns() - start) / (per * 50) / 1000
    out["aget"] = statistics.median([await serial(reps) for _ in range(5)])
    out["aget x50"] = statistics.median([await concurrent(reps * 5) for _ in range(5)])
asyncio.run(main())
print(json.dumps(out))
"""


def probe(tree: Path, url: str, reps: int) -> dict[str, float]:
    """Run the probe in a fresh process importing djredis from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, url, str(reps), str(tree)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if done.returncode:
        raise SystemExit(f"probe on {tree} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(samples: dict[str, list[dict[str, float]]]) -> str:
    """Return the markdown table: medians per tree and the paired ratio after/before."""
    before, after = samples["before"], samples["after"]
    lines = [
        "| figure | before (median) | after (median) | after/before, paired (min-max) |",
        "|---|---|---|---|",
    ]
    for name, unit in FIGURES.items():
        b = statistics.median(r[name] for r in before)
        a = statistics.median(r[name] for r in after)
        ratios = [x[name] / y[name] for x, y in zip(after, before, strict=True)]
        lines.append(
            f"| {name} | {b:.2f} {unit} | {a:.2f} {unit} | {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    sm = [r["set_many(100)"] / r["mset(100) raw"] for r in after]
    lines.append(
        f"\nset_many(100) with a timeout / raw MSET, after: median {statistics.median(sm):.2f}x "
        f"({min(sm):.2f}-{max(sm):.2f}); before: "
        f"{statistics.median(r['set_many(100)'] / r['mset(100) raw'] for r in before):.2f}x"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the interleaved rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="src dir of the old code")
    parser.add_argument("--after", type=Path, default=ROOT / "src", help="src dir (./src)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--reps", type=int, default=2000, help="calls per timed batch")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--label", default="", help="what the two trees are, for the docs")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    server = RedisServer()
    server.start()
    version = str(server.client().info("server")["redis_version"])
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                samples[name].append(probe(trees[name], url, args.reps))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(samples, indent=1))
    table = report(samples)
    print(table)
    if not args.no_docs:
        head = _report.section_head("Transport, paired before/after", "benchmarks.trees", version)
        method = (
            f"{args.rounds} rounds; each round runs one fresh process per tree, in an order that "
            "alternates by round, against one redis-server; each figure is the median of 5 "
            f"batches of {args.reps} calls (3 calls for the 10 MB get and get_many). "
            "after/before is the median of the per-round ratios."
        )
        label = f"\n\nTrees: {args.label}" if args.label else ""
        body = f"{head}\n\n### Method\n\n{method}{label}\n\n### Results\n\n{table}\n"
        _report.write_section("trees", body)


if __name__ == "__main__":
    main()
