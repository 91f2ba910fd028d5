"""The one Celery task that runs every Django task: ``djredis.tasks.run``.

Its message carries the task's import path, its JSON arguments and the backend alias; the
runner imports the ``@task`` object by path, marks the result record RUNNING, calls it
(``async def`` functions too, with ``TaskContext`` when ``takes_context``) and writes the
outcome, sending Django's ``task_started`` and ``task_finished`` signals in the worker.
Failures are recorded, not raised, unless the task's ``autoretry_for`` asks for a Celery
retry: Celery then sends the same message again (same id) after the retry delay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from traceback import format_exception
from typing import Any

from celery import Task as CeleryTaskType
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.utils import timezone

import djredis.tasks.records as records

from .api import (
    TaskContext,
    normalize_json,
    task_backends,
    task_finished,
    task_started,
)
from .backend import CeleryBackend, CeleryTask
from .broker import RUNNER_NAME

__all__ = ["run"]

logger = logging.getLogger("djredis.tasks")


@shared_task(name=RUNNER_NAME, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def run(self: CeleryTaskType, payload: Mapping[str, Any]) -> None:
    """Run the Django task ``payload`` describes (sent by CeleryBackend.enqueue)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("task"), str):
        logger.error("djredis.tasks: dropping message %s: not a task payload", self.request.id)
        return
    backend = task_backends[str(payload.get("backend", "default"))]
    if not isinstance(backend, CeleryBackend):
        logger.error(
            "djredis.tasks: dropping task %s: TASKS[%r] is not a CeleryBackend in this worker",
            self.request.id,
            payload.get("backend"),
        )
        return
    execute(backend, self, payload)


def execute(
    backend: CeleryBackend, celery_task: CeleryTaskType, payload: Mapping[str, Any]
) -> None:
    """Run one attempt of a Django task and record it (the body of ``run``)."""
    result_id = str(celery_task.request.id)
    task = records.resolve_task(payload["task"])
    if task is None:
        logger.error(
            "djredis.tasks: task %s names %r, which is not a @task", result_id, payload["task"]
        )
        return
    client = backend.broker.client()
    key = backend.broker.record_key(result_id)
    record = records.decode(client.get(key), result_id)
    if record is None:  # expired or unreadable: rebuild it from the message
        record = {**payload, "status": records.READY, "worker_ids": [], "errors": []}
    now = timezone.now()
    record.update(
        status=records.RUNNING,
        started_at=now.isoformat(),
        last_attempted_at=now.isoformat(),
        finished_at=None,
        worker_ids=[*record.get("worker_ids", []), str(celery_task.request.hostname or "celery")],
    )
    client.set(key, records.encode(record), keepttl=True)
    task_result = records.to_result(record, result_id, backend.alias)
    if task_result is None:
        return
    sender = type(backend)
    task_started.send(sender, task_result=task_result)
    try:
        if task.takes_context:
            context: TaskContext = TaskContext(task_result=task_result)  # type: ignore[type-arg]
            value = task.call(context, *record["args"], **record["kwargs"])
        else:
            value = task.call(*record["args"], **record["kwargs"])
        record["return_value"] = normalize_json(value)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        cls = type(exc)
        record["errors"] = [
            *record.get("errors", []),
            {
                "exception_class_path": f"{cls.__module__}.{cls.__qualname__}",
                "traceback": "".join(format_exception(exc)),
            },
        ]
        retries = int(celery_task.request.retries or 0)
        if isinstance(task, CeleryTask) and _retryable(task, exc, retries):
            record.update(status=records.READY)
            client.set(key, records.encode(record), keepttl=True)
            # retry() sends the message again with the same id and raises celery's Retry.
            raise celery_task.retry(
                exc=exc if isinstance(exc, Exception) else None,
                countdown=_retry_delay(task, retries),
                max_retries=task.max_retries,
            ) from exc
        _finish(backend, key, record, records.FAILED)
        result = records.to_result(record, result_id, backend.alias)
        if result is not None:
            # Sent inside the except block: Django's logging receiver logs exc_info.
            task_finished.send(sender, task_result=result)
        return
    _finish(backend, key, record, records.SUCCESSFUL)
    result = records.to_result(record, result_id, backend.alias)
    if result is not None:
        task_finished.send(sender, task_result=result)


def _retryable(task: CeleryTask, exc: BaseException, retries: int) -> bool:
    if not task.autoretry_for or not isinstance(exc, task.autoretry_for):
        return False
    return task.max_retries is None or retries < task.max_retries


def _retry_delay(task: CeleryTask, retries: int) -> float:
    """Celery's autoretry delay: exponential with ``retry_backoff``, else the fixed delay."""
    if task.retry_backoff:
        return float(
            get_exponential_backoff_interval(
                factor=int(task.retry_backoff),
                retries=retries,
                maximum=task.retry_backoff_max,
                full_jitter=task.retry_jitter,
            )
        )
    return float(task.default_retry_delay)


def _finish(backend: CeleryBackend, key: str, record: dict[str, Any], status: str) -> None:
    record.update(status=status, finished_at=timezone.now().isoformat())
    backend.broker.client().set(key, records.encode(record), ex=backend.result_expires)
