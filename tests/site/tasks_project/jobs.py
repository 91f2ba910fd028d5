"""Django @task functions the tests enqueue and the worker runs."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis

from djredis.tasks.api import TaskContext, task, task_finished, task_started

SIGNALS_KEY = "tests:signals:{}"
ORDER_KEY = "tests:order"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["DJREDIS_TASKS_BROKER_URL"])


class FlakyError(Exception):
    """The failure flaky() raises on its first attempts."""


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def context_info(context: TaskContext, label: str) -> dict[str, Any]:
    return {"id": context.task_result.id, "attempt": context.attempt, "label": label}


@task
def record_order(label: str) -> str:
    _redis().rpush(ORDER_KEY, label)
    return label


@task(autoretry_for=(FlakyError,), max_retries=3, default_retry_delay=0.1)
def flaky(key: str, fail_times: int) -> int:
    attempt = int(_redis().incr(key))
    if attempt <= fail_times:
        raise FlakyError(f"attempt {attempt} failed")
    return attempt


@task
def unserializable_return() -> object:
    return object()


def _record_signal(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _redis().rpush(SIGNALS_KEY.format(task_result.id), str(task_result.status))


task_started.connect(_record_signal, dispatch_uid="tests.tasks_project.started")
task_finished.connect(_record_signal, dispatch_uid="tests.tasks_project.finished")


# The shapes of Django's own tests/tasks/tasks.py, for the cases of its suite that apply.
@task
def noop(*args: Any, **kwargs: Any) -> None:
    return None


@task
async def noop_async(*args: Any, **kwargs: Any) -> None:
    return None


@task
def exit_with_system_exit() -> None:
    raise SystemExit("This Task failed due to SystemExit")


@task
def nested_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task(takes_context=True)
def check_attempt(context: TaskContext, attempt: int) -> bool:
    if context.attempt != attempt:
        raise AssertionError(f"attempt {context.attempt} != {attempt}")
    return True
