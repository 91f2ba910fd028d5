"""djredis.tasks.CeleryBackend end to end: Django's task API in this process, a real Celery
worker process (tests/site/tasks_project) on a real Redis broker the suite starts.

Never eager mode: every task crosses Redis to a ``celery worker`` and its result comes back
through the record the worker writes.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from types import ModuleType
from typing import Any

import django
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from djredis.tasks import CeleryBackend
from djredis.tasks.api import (
    InvalidTask,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
)
from tests._servers import RedisServer

from ._example import celery_broker_problem
from ._tasks import TasksWorkers

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tasks_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tasks_redis: RedisServer) -> Iterator[ModuleType]:
    """This process configured as the worker's project is (same TASKS, same broker); the
    task functions are imported once TASKS names CeleryBackend (@task asks the backend)."""
    problem = celery_broker_problem(tasks_redis.url(3))
    if problem:
        pytest.skip(f"Celery cannot use a Redis broker here: {problem}")
    os.environ["DJREDIS_TASKS_BROKER_URL"] = tasks_redis.url(3)
    settings_module = importlib.import_module("tests.site.tasks_project.settings")
    settings_module = importlib.reload(settings_module)  # read the broker URL just set
    names = [n for n in dir(settings_module) if n.startswith("CELERY_") or n == "TASKS"]
    override = override_settings(**{name: getattr(settings_module, name) for name in names})
    override.enable()
    try:
        yield importlib.import_module("tests.site.tasks_project.jobs")
    finally:
        override.disable()


@pytest.fixture(scope="module")
def workers(
    tasks_redis: RedisServer, project: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TasksWorkers]:
    """A worker on the default queue for the module; tests start others as they need."""
    found = TasksWorkers(tasks_redis, tmp_path_factory.mktemp("tasks-workers"))
    found.start("main", "celery")
    yield found
    found.stop_all()


@pytest.fixture
def jobs(workers: TasksWorkers, project: ModuleType) -> ModuleType:
    return project


def finished(result: TaskResult, timeout: float = 20.0) -> TaskResult:
    """Refresh ``result`` until the worker has finished it; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not result.is_finished:
        if time.monotonic() > deadline:
            raise AssertionError(f"task {result.id} still {result.status} after {timeout}s")
        time.sleep(0.05)
        result.refresh()
    return result


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def enqueue(task: Any, mode: str, *args: Any, **kwargs: Any) -> TaskResult:
    if mode == "async":
        result: TaskResult = asyncio.run(task.aenqueue(*args, **kwargs))
        return result
    return task.enqueue(*args, **kwargs)


def test_backend_declares_every_capability(jobs: ModuleType) -> None:
    backend = task_backends["default"]
    assert isinstance(backend, CeleryBackend)
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_enqueued_task_runs_on_the_worker_and_its_result_is_read_back(
    jobs: ModuleType, mode: str
) -> None:
    result = enqueue(jobs.add, mode, 2, b=3)
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs) == ([2], {"b": 3})
    assert result.enqueued_at is not None
    finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1
    assert result.worker_ids[0].startswith("main@")
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert result.errors == []
    again = jobs.add.get_result(result.id)
    assert again == result
    assert asyncio.run(jobs.add.aget_result(result.id)) == result


def test_async_task_function_runs(jobs: ModuleType) -> None:
    result = finished(jobs.async_add.enqueue(20, 22))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42


def test_failure_is_recorded_with_its_traceback(jobs: ModuleType) -> None:
    result = finished(jobs.fail.enqueue("the payment failed"))
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert len(result.errors) == 1
    assert result.errors[0].exception_class is ValueError
    assert result.errors[0].traceback.startswith("Traceback (most recent call last):")
    assert result.errors[0].traceback.endswith("ValueError: the payment failed\n")
    assert "jobs.py" in result.errors[0].traceback


def test_unserializable_return_value_fails_the_task(jobs: ModuleType) -> None:
    result = finished(jobs.unserializable_return.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_takes_context_receives_its_own_result(jobs: ModuleType) -> None:
    result = finished(jobs.context_info.enqueue("ctx"))
    assert result.return_value == {"id": result.id, "attempt": 1, "label": "ctx"}


def test_signals_fire_in_the_caller_and_in_the_worker(
    jobs: ModuleType, workers: TasksWorkers
) -> None:
    seen: list[tuple[type, str]] = []

    def on_enqueued(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
        seen.append((sender, task_result.id))

    task_enqueued.connect(on_enqueued)
    try:
        result = jobs.add.enqueue(1, 1)
        assert seen == [(CeleryBackend, result.id)]
        asynchronous = asyncio.run(jobs.add.aenqueue(1, 2))
        assert seen[-1] == (CeleryBackend, asynchronous.id)
    finally:
        task_enqueued.disconnect(on_enqueued)
    finished(result)
    signals_key = jobs.SIGNALS_KEY.format(result.id)
    logged = wait_for(lambda: workers.client().lrange(signals_key, 0, -1), 10, "signals")
    assert logged == [b"RUNNING", b"SUCCESSFUL"]


def test_concurrent_aenqueue_shares_one_connection_and_writes_every_task(
    jobs: ModuleType, workers: TasksWorkers
) -> None:
    """50 coroutines enqueue at once over the loop's one multiplexed connection; each task
    has its record and its message (the backlog queue has no worker here)."""
    client = workers.client()
    backend = task_backends["default"]
    assert isinstance(backend, CeleryBackend)
    queue_key = backend.broker.queue_key("djredis-backlog", 4)  # Django priority 0
    client.delete(queue_key)
    backlog = jobs.add.using(queue_name="backlog")

    async def enqueue_all() -> list[TaskResult]:
        return list(await asyncio.gather(*(backlog.aenqueue(i, 1) for i in range(50))))

    connections_before = int(client.info("stats")["total_connections_received"])
    results = asyncio.run(enqueue_all())
    connections = int(client.info("stats")["total_connections_received"]) - connections_before
    try:
        assert connections == 1
        assert client.llen(queue_key) == 50
        for i, result in enumerate(results):
            again = jobs.add.get_result(result.id)
            assert (again.status, again.args) == (TaskResultStatus.READY, [i, 1])
    finally:
        client.delete(queue_key)


def test_aenqueue_runs_djangos_logging_receiver_on_the_loop(
    jobs: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """Django's own task_enqueued receiver (a debug log line) runs in the loop's thread: no
    hop to a thread per enqueue, as Signal.asend would make."""
    caplog.set_level(logging.DEBUG, logger="django.tasks")
    caplog.set_level(logging.DEBUG, logger="django_tasks")

    async def enqueue_one() -> tuple[TaskResult, int]:
        return await jobs.add.aenqueue(1, 2), threading.get_ident()

    result, loop_thread = asyncio.run(enqueue_one())
    logged = [r for r in caplog.records if f"id={result.id}" in r.getMessage()]
    assert [r.thread for r in logged] == [loop_thread]


@pytest.mark.django_db(transaction=True)
def test_aenqueue_runs_other_receivers_as_asend_does(jobs: ModuleType) -> None:
    """A project's sync receiver still runs in a thread (it may query the database, which
    Django forbids on the loop); an async receiver is awaited on the loop."""
    seen: list[tuple[str, str, int]] = []

    def sync_receiver(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
        from django.contrib.auth.models import User

        seen.append(("sync", task_result.id, User.objects.count()))

    async def async_receiver(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
        seen.append(("async", task_result.id, threading.get_ident()))

    async def enqueue_one() -> tuple[TaskResult, int]:
        return await jobs.add.aenqueue(1, 2), threading.get_ident()

    task_enqueued.connect(sync_receiver)
    task_enqueued.connect(async_receiver)
    try:
        result, loop_thread = asyncio.run(enqueue_one())
    finally:
        task_enqueued.disconnect(sync_receiver)
        task_enqueued.disconnect(async_receiver)
    assert sorted(seen) == [("async", result.id, loop_thread), ("sync", result.id, 0)]


def test_arguments_must_be_json(jobs: ModuleType, workers: TasksWorkers) -> None:
    """A refused enqueue writes nothing: no key appears, no queue grows (earlier tests' keys
    may expire and the worker drain queues meanwhile, so the database's size is no measure)."""
    client = workers.client()
    queues = [key for key in client.scan_iter() if client.type(key) == b"list"]
    before_keys = set(client.scan_iter())
    before_lengths = {queue: client.llen(queue) for queue in queues}
    with pytest.raises(TypeError, match="Unsupported type"):
        jobs.add.enqueue(timezone.now(), 1)
    assert set(client.scan_iter()) - before_keys == set()
    grown = [queue for queue in queues if client.llen(queue) > before_lengths[queue]]
    assert grown == []  # a worker may drain them meanwhile; nothing may be added


def test_unknown_queue_is_refused(jobs: ModuleType) -> None:
    with pytest.raises(InvalidTask, match="Queue 'nowhere' is not valid for backend"):
        jobs.add.using(queue_name="nowhere")


def test_unknown_and_garbage_results_do_not_exist(
    jobs: ModuleType, workers: TasksWorkers, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        jobs.add.get_result("no-such-id")
    workers.client().set("djredis:task:garbage", b"\x80\x04not json")
    with pytest.raises(TaskResultDoesNotExist):
        jobs.add.get_result("garbage")
    assert "unreadable record of task garbage" in caplog.text
    evil = b'{"task":"os.system","status":"READY","args":["true"],"kwargs":{}}'
    workers.client().set("djredis:task:evil", evil)
    with pytest.raises(TaskResultDoesNotExist):
        jobs.add.get_result("evil")
    assert "which is not a task" in caplog.text


def test_run_after_is_honoured_within_a_second(jobs: ModuleType) -> None:
    run_after = timezone.now() + timedelta(seconds=2)
    result = jobs.add.using(run_after=run_after).enqueue(1, 2)
    time.sleep(1)
    result.refresh()
    assert result.status == TaskResultStatus.READY
    finished(result)
    assert result.started_at >= run_after
    assert result.started_at - run_after < timedelta(seconds=1)
    assert result.task.run_after == run_after


def test_priority_order_is_observed_under_a_backlog(
    jobs: ModuleType, workers: TasksWorkers
) -> None:
    priorities = [-100, -60, -20, 0, 25, 60, 100]
    random.Random(7).shuffle(priorities)
    client = workers.client()
    client.delete(jobs.ORDER_KEY)
    results = [
        jobs.record_order.using(queue_name="backlog", priority=p).enqueue(str(p))
        for p in priorities
    ]
    worker = workers.start("backlog", "djredis-backlog", concurrency=1)
    try:
        for result in results:
            finished(result)
    finally:
        workers.stop(worker)
    order = [int(x) for x in client.lrange(jobs.ORDER_KEY, 0, -1)]
    assert order == sorted(priorities, reverse=True)


def test_autoretry_is_reflected_in_attempts_and_errors(jobs: ModuleType) -> None:
    key = f"tests:flaky:{random.random()}"
    result = finished(jobs.flaky.enqueue(key, 2))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == [
        "tests.site.tasks_project.jobs.FlakyError"
    ] * 2


def test_retries_stop_after_max_retries(jobs: ModuleType) -> None:
    key = f"tests:flaky:{random.random()}"
    result = finished(jobs.flaky.enqueue(key, 100))
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 4  # the first attempt and max_retries=3 retries
    assert len(result.errors) == 4


def test_results_survive_worker_restarts(jobs: ModuleType, workers: TasksWorkers) -> None:
    waiting = jobs.add.using(queue_name="restart").enqueue(3, 4)
    worker = workers.start("restart", "djredis-restart", concurrency=1)
    finished(waiting)
    workers.stop(worker)
    # The worker is gone: the result is still read, and a task enqueued now waits for the
    # next worker, which runs it.
    assert jobs.add.get_result(waiting.id).return_value == 7
    later = jobs.add.using(queue_name="restart").enqueue(5, 6)
    time.sleep(0.5)
    later.refresh()
    assert later.status == TaskResultStatus.READY
    worker = workers.start("restart", "djredis-restart", concurrency=1)
    try:
        assert finished(later).return_value == 11
    finally:
        workers.stop(worker)
    assert jobs.add.get_result(waiting.id).return_value == 7


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_on_commit_is_sent_only_after_commit(
    jobs: ModuleType, workers: TasksWorkers
) -> None:
    sent: list[TaskResult] = []
    records_before = set(workers.client().scan_iter("djredis:task:*"))
    with transaction.atomic():
        transaction.on_commit(lambda: sent.append(jobs.add.enqueue(8, 9)))
        assert sent == []
        assert set(workers.client().scan_iter("djredis:task:*")) == records_before
    assert len(sent) == 1
    assert finished(sent[0]).return_value == 17


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_on_commit_is_not_sent_on_rollback(
    jobs: ModuleType, workers: TasksWorkers
) -> None:
    sent: list[TaskResult] = []
    records_before = set(workers.client().scan_iter("djredis:task:*"))

    class Abort(Exception):
        pass

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            transaction.on_commit(partial(lambda: sent.append(jobs.add.enqueue(1, 1))))
            raise Abort

    with pytest.raises(Abort):
        enqueue_then_fail()
    assert sent == []
    assert set(workers.client().scan_iter("djredis:task:*")) == records_before


# -- Django's own tasks suite (tests/tasks/ of Django 6), the cases that exercise a backend --
# Written again here against a real worker; docs/tasks.md lists those that do not apply.


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", ["noop", "noop_async"])
def test_django_suite_enqueue_task(jobs: ModuleType, mode: str, name: str) -> None:
    task = getattr(jobs, name)
    result = enqueue(task, mode, 1, two=3)
    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (None,) * 3
    with pytest.raises(ValueError, match="Task has not finished yet"):
        _ = result.return_value
    assert result.task == task
    assert (result.args, result.kwargs, result.attempts) == ([1], {"two": 3}, 0)
    finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value is None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.attempts == 1


@pytest.mark.parametrize(
    ("name", "exception", "message"),
    [
        ("fail", ValueError, "This Task failed due to ValueError"),
        ("exit_with_system_exit", SystemExit, "This Task failed due to SystemExit"),
    ],
)
def test_django_suite_catches_exception(
    jobs: ModuleType, name: str, exception: type[BaseException], message: str
) -> None:
    args = [message] if name == "fail" else []
    result = finished(getattr(jobs, name).enqueue(*args))
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert result.enqueued_at <= result.started_at <= result.finished_at


def test_django_suite_complex_exception(jobs: ModuleType) -> None:
    result = finished(jobs.nested_exception.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_django_suite_context_attempt(jobs: ModuleType) -> None:
    assert finished(jobs.check_attempt.enqueue(1)).return_value is True


def test_django_suite_get_result_of_another_task_mismatches(jobs: ModuleType) -> None:
    from djredis.tasks.api import task_backends as backends

    result = backends["default"].enqueue(jobs.noop_async, (), {})
    with pytest.raises(Exception, match="Task does not match") as caught:
        jobs.noop.get_result(result.id)
    assert type(caught.value).__name__ == "TaskResultMismatch"
    with pytest.raises(Exception, match="Task does not match"):
        asyncio.run(jobs.noop.aget_result(result.id))


def test_django_suite_refresh_keeps_an_unchanged_result(jobs: ModuleType) -> None:
    import dataclasses

    result = jobs.noop.using(queue_name="backlog").enqueue()  # no worker: stays READY
    original = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == original
    asyncio.run(result.arefresh())
    assert dataclasses.asdict(result) == original


@pytest.mark.skipif(
    django.VERSION < (6,), reason="the django-tasks backport's Task does not pickle"
)
def test_django_suite_pickled_result_equals(jobs: ModuleType) -> None:
    import pickle

    result = jobs.noop.using(queue_name="backlog").enqueue()
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.parametrize("priority", [-101, 101, 3.1])
def test_django_suite_invalid_priority(jobs: ModuleType, priority: float) -> None:
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        jobs.noop.using(priority=priority)


def test_django_suite_naive_run_after(jobs: ModuleType) -> None:
    from datetime import datetime

    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        jobs.noop.using(run_after=datetime.now())


@pytest.mark.django_db(transaction=True)
def test_django_suite_does_not_wait_for_commit_by_default(jobs: ModuleType) -> None:
    with transaction.atomic():
        result = jobs.noop.enqueue()
        assert result.enqueued_at is not None
        finished(result)  # sent at once: the worker runs it before the block ends
    assert result.status == TaskResultStatus.SUCCESSFUL
