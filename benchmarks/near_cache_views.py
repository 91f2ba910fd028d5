"""ASGI views with and without the near-cache: requests/s and Redis commands per request.

Run from the project root (wrk must be installed)::

    python -m benchmarks.near_cache_views [--seconds 5] [--rounds 3]

For each view (``/many/``: one ``aget_many`` of 20 keys; ``/three/``: three ``aget``) and
each contender (djredis with ``NEAR_CACHE``, djredis without), uvicorn (1 worker) serves
``benchmarks._async_site`` and wrk loads it with 50 connections after a warm-up; Redis's
``INFO commandstats`` before and after give the commands each request cost. Medians over
rounds, contenders alternated. ``--rewrite N``: another client writes one of the keys
again every N seconds while wrk runs (Redis invalidates it in the near-cache). The
djredis code measured is whatever ``PYTHONPATH`` puts first (so the same script measures
an older checkout).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from typing import Any

from . import _report
from ._asgi import serve, wrk

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path

CONNECTIONS = 50
VIEWS = {"aget_many(20)": "/many/", "three aget": "/three/"}
CONTENDERS = {"near-cache": "djredis-near", "plain": "djredis"}  # site backends


def _commands(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _rewrite(client: Any, stop: threading.Event, every: float, key: str) -> None:
    """Write one of the view's keys again (same bytes) every ``every`` seconds, as another
    process updating a hot key would: Redis invalidates it in the near-cache."""
    raw = client.get(key)
    while not stop.wait(every):
        client.set(key, raw)


def run_once(
    url: str, client: Any, backend: str, view: str, seconds: int, rewrite: float
) -> tuple[float, dict[str, float]]:
    env = {"DJREDIS_BENCH_BACKEND": backend, "DJREDIS_BENCH_REDIS": url}
    with serve("benchmarks._async_site:application", free_port(), env) as base:
        wrk(base + view, CONNECTIONS, 1)  # warm-up
        stop = threading.Event()
        key = f"bench-{backend}:1:bench:0"
        writer = threading.Thread(target=_rewrite, args=(client, stop, rewrite, key))
        if rewrite:
            writer.start()
        before = _commands(client)
        try:
            result = wrk(base + view, CONNECTIONS, seconds)
        finally:
            stop.set()
            if rewrite:
                writer.join()
        after = _commands(client)
    per_request = {
        name: (after.get(name, 0) - before.get(name, 0)) / max(1, result.requests)
        for name in after
        if after.get(name, 0) != before.get(name, 0) and name not in {"info", "set"}
    }
    return result.requests_per_second, per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rewrite", type=float, default=0, help="write bench:0 again every N s (0: never)"
    )
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        client = server.client()
        url = server.url(0)
        samples: dict[tuple[str, str], list[tuple[float, dict[str, float]]]] = {}
        for number in range(args.rounds):
            for view_name, view in VIEWS.items():
                names = list(CONTENDERS)
                if number % 2:
                    names.reverse()
                for name in names:
                    got = run_once(url, client, CONTENDERS[name], view, args.seconds, args.rewrite)
                    samples.setdefault((view_name, name), []).append(got)
            print(f"  round {number + 1}/{args.rounds} done", file=sys.stderr)
        print(f"{'view':15} {'contender':11} {'req/s':>8}  commands per request (median)")
        for (view_name, name), runs in samples.items():
            rps = statistics.median(r for r, _ in runs)
            names = sorted({c for _, per in runs for c in per})
            per = {c: statistics.median(p.get(c, 0.0) for _, p in runs) for c in names}
            shown = ", ".join(f"{c} {v:.2f}" for c, v in per.items()) or "none"
            print(f"{view_name:15} {name:11} {rps:8.0f}  {shown}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
