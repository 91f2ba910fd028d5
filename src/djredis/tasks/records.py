"""The result record of one Django task, kept in the broker's Redis as one JSON string.

Celery's own result backend cannot answer Django's ``get_result()``: it has no enqueued or
started time, no worker list, and answers PENDING for an id it never saw. So the backend
writes a record in the same round trip as the message (the record exists before any worker
can see the task) and the runner rewrites it at each change of status.

The bytes come back from Redis, so they are untrusted: anything that does not decode to a
record of a Django task is a miss with a log line, never an exception and never a call.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.utils.module_loading import import_string

from .api import InvalidTask, Task, TaskError, TaskResult, TaskResultStatus

__all__ = [
    "FAILED",
    "READY",
    "RUNNING",
    "SUCCESSFUL",
    "Record",
    "decode",
    "encode",
    "resolve_task",
    "to_result",
]

logger = logging.getLogger("djredis.tasks")

Record = dict[str, Any]
# TaskResultStatus's values, as stored in a record.
READY, RUNNING, FAILED, SUCCESSFUL = "READY", "RUNNING", "FAILED", "SUCCESSFUL"
_STATUSES = frozenset({READY, RUNNING, FAILED, SUCCESSFUL})
_DATES = ("enqueued_at", "started_at", "finished_at", "last_attempted_at")


def encode(record: Record) -> bytes:
    """Serialize ``record`` (its values are JSON already: the task framework requires it)."""
    return json.dumps(record, separators=(",", ":")).encode()


def decode(raw: bytes | str | None, result_id: str) -> Record | None:
    """Return the record in ``raw``, or None (with a log line) when it is not one."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        if not (
            isinstance(record, dict)
            and isinstance(record.get("task"), str)
            and record.get("status") in _STATUSES
            and isinstance(record.get("args"), list)
            and isinstance(record.get("kwargs"), dict)
            and isinstance(record.get("worker_ids", []), list)
            and isinstance(record.get("errors", []), list)
        ):
            raise ValueError("not a task record")
        for name in _DATES:
            _date(record.get(name))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        logger.warning(
            "djredis.tasks: ignoring the unreadable record of task %s (%s)", result_id, exc
        )
        return None
    result: Record = record
    return result


def _date(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"not a date: {value!r}")
    return datetime.fromisoformat(value)


def resolve_task(path: str) -> Task | None:  # type: ignore[type-arg]
    """Return the Task object at ``path`` (a module attribute made by ``@task``), or None."""
    try:
        found = import_string(path)
    except ImportError:
        return None
    return found if isinstance(found, Task) else None


def to_result(record: Record, result_id: str, backend: str) -> TaskResult | None:  # type: ignore[type-arg]
    """Build the TaskResult a record describes, or None (with a log line) if it cannot be."""
    task = resolve_task(record["task"])
    if task is None:
        logger.warning(
            "djredis.tasks: task %s names %r, which is not a task", result_id, record["task"]
        )
        return None
    try:
        task = replace(
            task,
            priority=int(record.get("priority", task.priority)),
            queue_name=str(record.get("queue_name", task.queue_name)),
            run_after=_date(record.get("run_after")),
            backend=backend,
        )
        errors = [
            TaskError(
                exception_class_path=str(error["exception_class_path"]),
                traceback=str(error["traceback"]),
            )
            for error in record.get("errors", [])
        ]
        result: TaskResult = TaskResult(  # type: ignore[type-arg]
            task=task,
            id=result_id,
            status=TaskResultStatus(record["status"]),
            enqueued_at=_date(record.get("enqueued_at")),
            started_at=_date(record.get("started_at")),
            finished_at=_date(record.get("finished_at")),
            last_attempted_at=_date(record.get("last_attempted_at")),
            args=record["args"],
            kwargs=record["kwargs"],
            backend=backend,
            errors=errors,
            worker_ids=[str(worker) for worker in record.get("worker_ids", [])],
        )
    except (ValueError, TypeError, KeyError, InvalidTask) as exc:
        logger.warning(
            "djredis.tasks: ignoring the unusable record of task %s (%s)", result_id, exc
        )
        return None
    object.__setattr__(result, "_return_value", record.get("return_value"))
    return result
