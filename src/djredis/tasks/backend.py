"""``djredis.tasks.CeleryBackend``: Django's task framework, run by Celery workers.

::

    TASKS = {
        "default": {
            "BACKEND": "djredis.tasks.CeleryBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {
                "APP": "myproject.celery.app",      # default: Celery's current app
                "QUEUE_MAP": {"emails": "mail"},    # Django queue -> Celery queue
                "RESULT_EXPIRES": 86400,            # seconds; default: Celery's result_expires
            },
        }
    }

Every Django task runs in the one Celery task ``djredis.tasks.run`` (djredis.tasks.runner),
which a worker of the project's Celery app finds with ``app.autodiscover_tasks()`` when
``"djredis"`` is in INSTALLED_APPS.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

import djredis.tasks.dispatch as dispatch
import djredis.tasks.records as records
from djredis._core.commands import Batch, Call, Operation
from djredis._core.errors import ErrorPolicy
from djredis._routing.base import run_async, run_sync

from .api import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)
from .broker import Broker, celery_priority

__all__ = ["CeleryBackend", "CeleryTask"]

OPTION_NAMES = frozenset({"APP", "QUEUE_MAP", "RESULT_EXPIRES"})

logger = logging.getLogger("djredis.tasks")


@dataclass(frozen=True, slots=True, kw_only=True)
class CeleryTask(Task):  # type: ignore[type-arg]
    """A Django Task with Celery's retry options (``@task(autoretry_for=(IOError,))``).

    The names and defaults are those of Celery's ``@shared_task`` options: a failure whose
    exception is an instance of ``autoretry_for`` is retried by Celery (same result id,
    one more entry in ``worker_ids``) until ``max_retries`` retries have been made.
    """

    autoretry_for: tuple[type[BaseException], ...] = ()
    max_retries: int | None = 3
    retry_backoff: bool | int = False
    retry_backoff_max: int = 600
    retry_jitter: bool = True
    default_retry_delay: float = 180

    def __post_init__(self) -> None:
        # A list is accepted as Celery accepts it; the frozen dataclass must stay hashable.
        object.__setattr__(self, "autoretry_for", tuple(self.autoretry_for))
        Task.__post_init__(self)


@dataclass(frozen=True)
class _Prepared:
    result: TaskResult  # type: ignore[type-arg]
    record_key: str
    record: bytes
    expires: int | None
    queue_key: str
    message: bytes


def _write(prepared: _Prepared) -> Operation[None]:
    """Write the result record and push the Celery message, as one transaction."""
    set_record: tuple[Any, ...] = ("SET", prepared.record_key, prepared.record)
    if prepared.expires is not None:
        set_record += ("EX", prepared.expires)
    yield Batch((set_record, ("LPUSH", prepared.queue_key, prepared.message)), transaction=True)


def _read(key: str) -> Operation[Any]:
    """Return the raw result record at ``key`` (None when there is none)."""
    raw = yield Call(("GET", key))
    return raw


class CeleryBackend(BaseTaskBackend):
    """Send Django tasks to Celery workers through the Redis broker."""

    task_class = CeleryTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        options: Mapping[str, Any] = self.options
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(OPTION_NAMES))})"
            )
        queue_map = options.get("QUEUE_MAP", {})
        if not isinstance(queue_map, Mapping):
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']['QUEUE_MAP'] must map Django queue names to "
                "Celery queue names"
            )
        self.queue_map: dict[str, str] = {str(k): str(v) for k, v in queue_map.items()}
        self._app_path: str | None = options.get("APP")
        self._app: Celery | None = None
        self._broker: Broker | None = None
        # Connection and timeout errors always reach the caller (no IGNORE_EXCEPTIONS here).
        self._policy = ErrorPolicy(ignore=False, logger=logger, where=f"TASKS[{alias!r}]")

    # -- configuration -------------------------------------------------------------------------
    @property
    def app(self) -> Celery:
        """The Celery app: OPTIONS["APP"] (a dotted path) or Celery's current app."""
        if self._app is None:
            if self._app_path:
                app = import_string(self._app_path)
                if not isinstance(app, Celery):
                    raise ImproperlyConfigured(
                        f"TASKS[{self.alias!r}]['OPTIONS']['APP'] = {self._app_path!r} is "
                        "not a Celery app"
                    )
            else:
                from celery import current_app

                app = current_app._get_current_object()
            self._app = app
        return self._app

    @property
    def broker(self) -> Broker:
        """Where messages and result records are written (the app's Redis broker)."""
        if self._broker is None:
            self._broker = Broker(self.app)
        return self._broker

    @property
    def result_expires(self) -> int | None:
        """Seconds a finished task's record is kept (None: kept until deleted)."""
        if "RESULT_EXPIRES" in self.options:
            value = self.options["RESULT_EXPIRES"]
        else:
            value = self.app.conf.result_expires
        if value is None:
            return None
        if isinstance(value, timedelta):
            value = value.total_seconds()
        seconds = int(value)
        return seconds if seconds > 0 else None

    def celery_queue(self, queue_name: str) -> str:
        """The Celery queue a Django queue's tasks go to."""
        if queue_name in self.queue_map:
            return self.queue_map[queue_name]
        if queue_name == DEFAULT_TASK_QUEUE_NAME:
            return str(self.app.conf.task_default_queue)
        return queue_name

    # -- enqueueing ----------------------------------------------------------------------------
    def _prepare(self, task: Task, args: Any, kwargs: Any) -> _Prepared:  # type: ignore[type-arg]
        self.validate_task(task)
        result_id = str(uuid.uuid4())
        now = timezone.now()
        # TaskResult normalizes the arguments to JSON types (TypeError for anything else),
        # as Django's own backends do: what the worker receives equals what was enqueued.
        result: TaskResult = TaskResult(  # type: ignore[type-arg]
            task=task,
            id=result_id,
            status=TaskResultStatus(records.READY),
            enqueued_at=now,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        run_after: datetime | None = task.run_after
        payload = {
            "task": task.module_path,
            "backend": self.alias,
            "queue_name": task.queue_name,
            "priority": task.priority,
            "run_after": run_after.isoformat() if run_after is not None else None,
            "args": result.args,
            "kwargs": result.kwargs,
        }
        record = {
            **payload,
            "status": records.READY,
            "enqueued_at": now.isoformat(),
            "started_at": None,
            "finished_at": None,
            "last_attempted_at": None,
            "worker_ids": [],
            "errors": [],
        }
        expires = self.result_expires
        if expires is not None and run_after is not None:
            expires += max(0, int((run_after - now).total_seconds()) + 1)
        broker = self.broker
        queue = self.celery_queue(task.queue_name)
        priority = celery_priority(task.priority)
        return _Prepared(
            result=result,
            record_key=broker.record_key(result_id),
            record=records.encode(record),
            expires=expires,
            queue_key=broker.queue_key(queue, priority),
            message=broker.message(
                result_id, payload, queue=queue, priority=priority, eta=run_after
            ),
        )

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:  # type: ignore[type-arg]
        """Write the result record and the Celery message in one round trip (MULTI)."""
        prepared = self._prepare(task, args, kwargs)
        run_sync(self.broker.topology, _write(prepared), self._policy, "enqueue", None)
        task_enqueued.send(type(self), task_result=prepared.result)
        return prepared.result

    async def aenqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:  # type: ignore[type-arg]
        """``enqueue`` on the running loop's multiplexed connection (no thread)."""
        prepared = self._prepare(task, args, kwargs)
        await run_async(self.broker.topology, _write(prepared), self._policy, "aenqueue", None)
        await dispatch.asend(task_enqueued, type(self), task_result=prepared.result)
        return prepared.result

    # -- results -------------------------------------------------------------------------------
    def _result(self, raw: bytes | str | None, result_id: str) -> TaskResult:  # type: ignore[type-arg]
        record = records.decode(raw, result_id)
        result = records.to_result(record, result_id, self.alias) if record else None
        if result is None:
            raise TaskResultDoesNotExist(result_id)
        return result

    def get_result(self, result_id: str) -> TaskResult:  # type: ignore[type-arg]
        """Read the task's record from Redis (TaskResultDoesNotExist if there is none)."""
        key = self.broker.record_key(str(result_id))
        raw = run_sync(self.broker.topology, _read(key), self._policy, "get_result", None)
        return self._result(raw, str(result_id))

    async def aget_result(self, result_id: str) -> TaskResult:  # type: ignore[type-arg]
        """``get_result`` on the running loop's multiplexed connection."""
        key = self.broker.record_key(str(result_id))
        raw = await run_async(self.broker.topology, _read(key), self._policy, "aget_result", None)
        return self._result(raw, str(result_id))

    # -- checks --------------------------------------------------------------------------------
    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """System checks: a Redis broker, queues Celery knows, the runner discoverable."""
        messages: list[checks.CheckMessage] = list(super().check(**kwargs))
        where = f"TASKS[{self.alias!r}]"
        try:
            app = self.app
            self.broker  # noqa: B018  (building it validates the broker URL)
        except (ImportError, ImproperlyConfigured) as exc:
            return [*messages, checks.Error(str(exc), obj=where, id="djredis.tasks.E001")]
        for name in sorted(set(self.queue_map) - self.queues) if self.queues else ():
            messages.append(
                checks.Error(
                    f"{where}['OPTIONS']['QUEUE_MAP'] maps {name!r}, which is not in QUEUES",
                    obj=where,
                    id="djredis.tasks.E002",
                )
            )
        known = {queue.name for queue in app.conf.task_queues or ()}
        default = str(app.conf.task_default_queue)
        for name in sorted(self.queues):
            queue = self.celery_queue(name)
            if known and queue not in known:
                problem = f"is not in the Celery app's task_queues ({', '.join(sorted(known))})"
            elif not known and queue != default and not app.conf.task_create_missing_queues:
                problem = "is unknown to Celery (task_create_missing_queues is off)"
            else:
                continue
            messages.append(
                checks.Error(
                    f"{where}: Django queue {name!r} goes to the Celery queue {queue!r}, which "
                    f"{problem}",
                    hint="Declare it in CELERY_TASK_QUEUES or map it with OPTIONS['QUEUE_MAP'].",
                    obj=where,
                    id="djredis.tasks.E003",
                )
            )
        if "djredis" not in settings.INSTALLED_APPS:
            messages.append(
                checks.Warning(
                    "Celery workers find djredis's task runner (djredis.tasks.run) through "
                    "app.autodiscover_tasks(), which looks in INSTALLED_APPS",
                    hint="Add 'djredis' to INSTALLED_APPS (or import djredis.tasks in the "
                    "module that creates the Celery app).",
                    obj=where,
                    id="djredis.tasks.W001",
                )
            )
        return messages
