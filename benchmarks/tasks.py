"""Enqueueing Django tasks with djredis.tasks.CeleryBackend vs Celery's own ``delay()``.

Both send to the same Redis broker (a redis-server this script starts), to the same queue,
with no worker draining it during the enqueue timings (the lists are emptied between
rounds). Contenders:

- ``CeleryBackend.enqueue`` / ``aenqueue``: one MULTI pipeline (result record + message);
- ``delay()`` with no result backend (nothing stored but the message);
- ``delay()`` with the Redis result backend the guide configures (``CELERY_RESULT_BACKEND``
  on the same server): what a project needing ``AsyncResult`` runs;
- async: ``sync_to_async(delay)``, the way an async view calls Celery.

End to end: enqueue, then wait for a running worker (threads pool) to finish the task;
``TaskResult.refresh()`` polled every millisecond vs ``delay().get()`` (pub/sub).

Run from the project root: ``python -m benchmarks.tasks [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests._servers import RedisServer  # needs the project root on sys.path

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 50


def median_us(samples: list[float]) -> str:
    return f"{statistics.median(samples):8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--e2e", type=int, default=200)
    options = parser.parse_args()

    server = RedisServer().start()
    os.environ["DJREDIS_TASKS_BROKER_URL"] = server.url(3)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.site.tasks_project.settings"
    import django

    django.setup()
    from asgiref.sync import sync_to_async

    from tests.site.tasks_project import jobs
    from tests.site.tasks_project.celery_app import app

    def plain_add(a: int, b: int) -> int:
        return a + b

    plain_delay = app.task(name="bench.plain_add")(plain_add)
    os.environ["DJREDIS_TASKS_RESULT_URL"] = server.url(4)
    from benchmarks._tasks_celery import add as results_delay

    def flush() -> None:
        server.client(3).flushdb()
        server.client(4).flushdb()

    sync_ops: dict[str, Callable[[], Any]] = {
        "CeleryBackend.enqueue": lambda: jobs.add.enqueue(1, 2),
        "delay() (no result backend)": lambda: plain_delay.delay(1, 2),
        "delay() (Redis result backend)": lambda: results_delay.delay(1, 2),
    }

    async def aenqueue_op() -> Any:
        return await jobs.add.aenqueue(1, 2)

    delay_in_thread = sync_to_async(plain_delay.delay)
    results_delay_in_thread = sync_to_async(results_delay.delay)
    async_ops: dict[str, Callable[[], Any]] = {
        "CeleryBackend.aenqueue": aenqueue_op,
        "sync_to_async(delay) (no result backend)": lambda: delay_in_thread(1, 2),
        "sync_to_async(delay) (Redis result backend)": lambda: results_delay_in_thread(1, 2),
    }

    samples: dict[str, list[float]] = {}
    for round_index in range(options.rounds):
        names = list(sync_ops)
        names = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in names:
            op = sync_ops[name]
            flush()
            start = time.perf_counter()
            for _ in range(options.batch):
                op()
            samples.setdefault(f"sync, 1 caller: {name}", []).append(
                (time.perf_counter() - start) / options.batch * 1e6
            )
            flush()
            per_thread = options.batch // CONCURRENCY

            def thread_batch(_: int, op: Callable[[], Any] = op, count: int = per_thread) -> None:
                for _ in range(count):
                    op()

            with ThreadPoolExecutor(CONCURRENCY) as pool:
                start = time.perf_counter()
                list(pool.map(thread_batch, range(CONCURRENCY)))
                elapsed = time.perf_counter() - start
            samples.setdefault(f"sync, {CONCURRENCY} threads: {name}", []).append(
                elapsed / (per_thread * CONCURRENCY) * 1e6
            )
        for name in list(async_ops):
            aop = async_ops[name]

            async def serial(aop: Callable[[], Any] = aop) -> float:
                start = time.perf_counter()
                for _ in range(options.batch // 4):
                    await aop()
                return (time.perf_counter() - start) / (options.batch // 4) * 1e6

            async def concurrent(aop: Callable[[], Any] = aop) -> float:
                per_task = options.batch // CONCURRENCY

                async def one() -> None:
                    for _ in range(per_task):
                        await aop()

                start = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
                return (time.perf_counter() - start) / (per_task * CONCURRENCY) * 1e6

            flush()
            samples.setdefault(f"async, 1 coroutine: {name}", []).append(asyncio.run(serial()))
            flush()
            samples.setdefault(f"async, {CONCURRENCY} coroutines: {name}", []).append(
                asyncio.run(concurrent())
            )
    flush()

    # End to end, with a worker of the tasks project (threads pool) running.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    (ROOT / ".ci" / "work").mkdir(parents=True, exist_ok=True)
    log = (ROOT / ".ci" / "work" / "bench-tasks-worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.site.tasks_project.celery_app", "worker",
         "--pool=threads", "--concurrency=4", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-Q", "celery", "--loglevel=warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    results_worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "benchmarks._tasks_celery", "worker",
         "--pool=threads", "--concurrency=4", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-Q", "results", "--loglevel=warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(3)  # both workers up
        for _ in range(20):  # warm both paths
            jobs.add.enqueue(1, 2)
            results_delay.delay(1, 2).get(timeout=30)
        e2e: dict[str, list[float]] = {"CeleryBackend: enqueue + refresh() until done": []}
        e2e["delay() + AsyncResult.get() (Redis result backend)"] = []
        for _ in range(options.e2e):
            start = time.perf_counter()
            result = jobs.add.enqueue(1, 2)
            while not result.is_finished:
                time.sleep(0.001)
                result.refresh()
            e2e["CeleryBackend: enqueue + refresh() until done"].append(
                (time.perf_counter() - start) * 1e6
            )
            start = time.perf_counter()
            results_delay.delay(1, 2).get(timeout=30)
            e2e["delay() + AsyncResult.get() (Redis result backend)"].append(
                (time.perf_counter() - start) * 1e6
            )
    finally:
        for process in (worker, results_worker):
            process.terminate()
            process.wait(timeout=30)
        server.stop()

    print(f"Enqueue, µs per task (median of {options.rounds} rounds; lower is better)")
    for name, values in samples.items():
        print(f"  {median_us(values)}  {name}")
    print(f"End to end to a running worker, µs (median of {options.e2e})")
    for name, values in e2e.items():
        print(f"  {median_us(values)}  {name}")


if __name__ == "__main__":
    main()
