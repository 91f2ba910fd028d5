"""Concurrent misses through the near-cache: Redis commands and local hits.

Run from the project root::

    python -m benchmarks.near_cache_concurrency

50 asyncio tasks each await 100 ``aget`` of one key that is in Redis but not yet local,
then 100 ``aget_many`` of 20 such keys. Prints the time taken, the commands Redis received
(``INFO commandstats``) and the local hits. The djredis code measured is whatever
``PYTHONPATH`` puts first (so the same script measures an older checkout).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import _report

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

TASKS = 50
CALLS = 100


def main() -> None:
    import django

    django.setup()
    from djredis.cache import RedisCache
    from tests._servers import RedisServer

    server = RedisServer().start()
    try:
        client = server.client()

        def commands() -> dict[str, int]:
            stats = client.info("commandstats")
            return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

        near = RedisCache(server.url(0), {"KEY_PREFIX": "n", "OPTIONS": {"NEAR_CACHE": True}})
        keys = [f"m{i}" for i in range(20)]
        near.set("cold", {"v": 1})
        near.set_many(dict.fromkeys(keys, 1))
        near.get("start the listener")
        while not near.near_stats()["healthy"]:
            time.sleep(0.01)

        async def cold() -> None:
            for _ in range(CALLS):
                await near.aget("cold")

        async def many() -> None:
            for _ in range(CALLS):
                await near.aget_many(keys)

        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            f"{TASKS} tasks x {CALLS} aget, one cold key": cold,
            f"{TASKS} tasks x {CALLS} aget_many(20), cold keys": many,
        }
        for name, reader in cases.items():

            async def run(reader: Callable[[], Awaitable[Any]] = reader) -> None:
                await asyncio.gather(*(reader() for _ in range(TASKS)))

            before, hits = commands(), near.near_stats()["hits"]
            started = time.perf_counter()
            asyncio.run(run())
            elapsed = time.perf_counter() - started
            after = commands()
            sent = {
                k: n - before.get(k, 0)
                for k, n in after.items()
                if k in {"get", "mget", "pttl"} and n != before.get(k, 0)
            }
            print(
                f"{name}: {elapsed:.2f} s, commands {sent}, "
                f"local hits {near.near_stats()['hits'] - hits}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
