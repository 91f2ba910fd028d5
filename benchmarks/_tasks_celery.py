"""A plain Celery app with the Redis result backend, for benchmarks/tasks.py's ``delay()``.

Broker and result backend come from DJREDIS_TASKS_BROKER_URL and DJREDIS_TASKS_RESULT_URL.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bench-results", set_as_current=False)
app.conf.update(
    broker_url=os.environ["DJREDIS_TASKS_BROKER_URL"],
    result_backend=os.environ["DJREDIS_TASKS_RESULT_URL"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"priority_steps": list(range(10))},
    task_default_queue="results",
)


@app.task(name="bench.add")
def add(a: int, b: int) -> int:
    return a + b
