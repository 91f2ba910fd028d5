"""A failing computation under stampede protection: how long do the waiters wait?

Run from the project root::

    python -m benchmarks.stampede_failure

50 threads (and 50 asyncio tasks) call a memoized function, and ``get_or_set(stampede=True)``,
on a missing key; the function raises after 0.2 s on every run. Prints, per case, how many
times the function ran and each caller's wall time (median and max). The target: every
caller returns within about 2x the function's own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

CALLERS = 50
SECONDS = 0.2


def main() -> None:
    import django

    django.setup()
    from djredis.cache import RedisCache, memoize
    from tests._servers import RedisServer

    server = RedisServer().start()
    try:
        cache = RedisCache(
            server.url(0), {"OPTIONS": {"CONNECTION_POOL_KWARGS": {"max_connections": 200}}}
        )
        runs = [0]
        lock = threading.Lock()

        def failing() -> str:
            with lock:
                runs[0] += 1
            time.sleep(SECONDS)
            raise RuntimeError("the database is down")

        async def afailing() -> str:
            runs[0] += 1
            await asyncio.sleep(SECONDS)
            raise RuntimeError("the database is down")

        def threads(call: Any) -> list[float]:
            barrier = threading.Barrier(CALLERS)
            waits = [0.0] * CALLERS

            def worker(i: int) -> None:
                barrier.wait()
                started = time.perf_counter()
                with contextlib.suppress(Exception):
                    call()
                waits[i] = time.perf_counter() - started

            pool = [threading.Thread(target=worker, args=(i,)) for i in range(CALLERS)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            return waits

        def tasks(call: Any) -> list[float]:
            async def one() -> float:
                started = time.perf_counter()
                with contextlib.suppress(Exception):
                    await call()
                return time.perf_counter() - started

            async def run() -> list[float]:
                return list(await asyncio.gather(*(one() for _ in range(CALLERS))))

            return asyncio.run(run())

        cases = {
            "memoize, threads": lambda: threads(memoize(60, cache=cache)(failing)),
            "memoize, tasks": lambda: tasks(memoize(60, cache=cache)(afailing)),
            "get_or_set(stampede=True), threads": lambda: threads(
                lambda: cache.get_or_set("gos", failing, 60, stampede=True)
            ),
            "aget_or_set(stampede=True), tasks": lambda: tasks(
                lambda: cache.aget_or_set("agos", afailing, 60, stampede=True)
            ),
        }
        print(f"{CALLERS} callers, a function that raises after {SECONDS} s")
        for name, case in cases.items():
            cache.clear()
            runs[0] = 0
            waits = case()
            print(
                f"{name:38} runs {runs[0]:3}  median {statistics.median(waits):6.3f} s"
                f"  max {max(waits):6.3f} s"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
