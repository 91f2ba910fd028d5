"""Celery on Redis: start the guide's tasks, follow them by id, and check the broker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from celery.result import AsyncResult
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from djredis import get_redis_connection

from ..celery import app, broker_problem
from ..models import Order
from ..tasks import CLEANUP_RUNS_KEY, process_order, send_welcome_email
from ._common import render_demo

GUIDE_CELERY = "How to Use Redis with Django > Celery Integration"
RECENT_TASKS = "recent_tasks"
QUEUE = "celery"  # the default queue: a Redis list named after it on the broker database
BROKER_SETTINGS = [
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_TASK_ANNOTATIONS",
    "CELERY_BROKER_TRANSPORT_OPTIONS",
    "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP",
    "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT",
    "CELERY_TASK_REJECT_ON_WORKER_LOST",
    "CELERY_BEAT_SCHEDULE",
]


def _start(action: str, user: Any) -> tuple[str, str]:
    """Start the task the button ``action`` names; return (description, task id)."""
    user_id = user.pk if user.is_authenticated else _demo_user_id()
    if action == "email":
        return "send_welcome_email.delay(user.id)", send_welcome_email.delay(user_id).id
    if action == "email-countdown":
        result = send_welcome_email.apply_async(args=[user_id], countdown=10)
        return "send_welcome_email.apply_async(args=[user.id], countdown=10)", result.id
    if action == "email-eta":
        eta = datetime.now(timezone.utc) + timedelta(seconds=30)
        result = send_welcome_email.apply_async(args=[user_id], eta=eta)
        return "send_welcome_email.apply_async(args=[user.id], eta=now + 30 s)", result.id
    fail_times = {"order": 0, "order-retry": 2, "order-fail": 5}.get(action)
    if fail_times is None:
        raise Http404(f"no task {action!r}")
    order = Order.objects.create(item="book", fail_times=fail_times)
    label = f"process_order.delay({order.pk})  # fails {fail_times} time(s) first"
    return label, process_order.delay(order.pk).id


def _demo_user_id() -> int:
    """Return the demo user's id (anonymous visitors send the demo user their email)."""
    pk: int = get_user_model().objects.get(username=settings.DEMO_USERNAME).pk
    return pk


def _broker_checks() -> list[tuple[str, bool, str]]:
    """Check the broker's server against the Redis-broker traps; return (name, ok, detail)."""
    with app.connection_for_read() as connection:
        client = connection.default_channel.client
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "?")
        queued = client.llen(QUEUE)
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    return [
        (
            "maxmemory-policy on the broker's server",
            policy == "noeviction",
            f"{policy} (must be noeviction, or Redis may evict queued tasks)",
        ),
        (
            "visibility_timeout > longest ETA",
            visibility > settings.LONGEST_ETA_SECONDS,
            f"{visibility} s > {settings.LONGEST_ETA_SECONDS} s",
        ),
        ("tasks waiting in the queue", True, str(queued)),
    ]


def tasks_demo(request: HttpRequest) -> HttpResponse:
    """Start a task (POST) or list the ones this visitor started, with the broker's checks."""
    problem = broker_problem()
    if problem:
        context = {"problem": problem}
        return render_demo(
            request, "reference/tasks.html", context, guide=GUIDE_CELERY, code=[_start]
        )
    if request.method == "POST":
        label, task_id = _start(request.POST.get("action", ""), request.user)
        recent = [[label, task_id], *request.session.get(RECENT_TASKS, [])][:10]
        request.session[RECENT_TASKS] = recent
        return redirect("task-status", task_id=task_id)
    redis_conn = app.backend.client  # the result backend's redis-py client
    context = {
        "recent": request.session.get(RECENT_TASKS, []),
        "checks": _broker_checks(),
        "cleanup_runs": int(_cleanup_runs() or 0),
        "result_db": redis_conn.connection_pool.connection_kwargs.get("db"),
    }
    return render_demo(
        request,
        "reference/tasks.html",
        context,
        guide=GUIDE_CELERY,
        code=[_start],
        settings_names=BROKER_SETTINGS,
    )


def _cleanup_runs() -> Any:
    return get_redis_connection("default").get(CLEANUP_RUNS_KEY)


def _status(task_id: str) -> dict[str, Any]:
    """Return a task's state, result and date done, from the Redis result backend."""
    result = AsyncResult(task_id, app=app)
    value = result.result
    return {
        "id": task_id,
        "state": result.state,
        "result": value
        if isinstance(value, (str, int, float, dict, list, type(None)))
        else repr(value),
        "date_done": result.date_done.isoformat() if result.date_done else None,
    }


def task_status(request: HttpRequest, task_id: str) -> HttpResponse:
    """Show one task's state and result; the page polls the JSON twin until it is done."""
    if request.GET.get("format") == "json":
        return JsonResponse(_status(task_id))
    context = {
        **_status(task_id),
        "json_url": reverse("task-status", args=[task_id]) + "?format=json",
    }
    return render_demo(
        request,
        "reference/task_status.html",
        context,
        guide=GUIDE_CELERY + " (AsyncResult)",
        code=[_status],
    )
