"""Django's task framework on Celery: enqueue the guide's ``@task`` and follow its TaskResult.

``TASKS`` (settings.py) sets ``djredis.tasks.CeleryBackend``: ``enqueue()`` writes the
result record and the Celery message to the broker's Redis in one round trip; the site's
Celery worker runs the task and records its outcome; ``aget_result()`` reads it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone

from ..celery import broker_problem
from ._common import render_demo

try:
    from ..mail import email_users

    try:  # Django >= 6.0
        from django.tasks.exceptions import TaskResultDoesNotExist
    except ImportError:  # the django-tasks backport
        from django_tasks.exceptions import TaskResultDoesNotExist
    FRAMEWORK_PROBLEM = None
except ImportError as exc:  # neither Django 6's django.tasks nor the backport
    FRAMEWORK_PROBLEM = f"Django's task framework cannot be imported ({exc})"

GUIDE_TASKS = "Django's Tasks framework > Defining and enqueueing tasks"
RECENT_RESULTS = "recent_django_tasks"
DEFER_SECONDS = 5
TASK_SETTINGS = ["TASKS", "CELERY_BROKER_URL"]


def _enqueue(action: str, email: str) -> tuple[str, Any]:
    """Enqueue the guide's email task now or deferred by DEFER_SECONDS; return (label, result)."""
    arguments = {"emails": [email], "subject": "You have a message", "message": "Hello there!"}
    if action == "deferred":
        run_after = timezone.now() + timedelta(seconds=DEFER_SECONDS)
        result = email_users.using(run_after=run_after).enqueue(**arguments)
        return f"email_users.using(run_after=now + {DEFER_SECONDS} s).enqueue(...)", result
    return "email_users.enqueue(...)", email_users.enqueue(**arguments)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _as_json(result: Any) -> dict[str, Any]:
    """Return what a TaskResult says, as JSON (return_value only once it succeeded)."""
    return {
        "id": result.id,
        "task": result.task.module_path,
        "status": str(result.status),
        "return_value": result.return_value if result.status == "SUCCESSFUL" else None,
        "errors": [error.exception_class_path for error in result.errors],
        "attempts": result.attempts,
        "run_after": _iso(result.task.run_after),
        "enqueued_at": _iso(result.enqueued_at),
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "worker_ids": result.worker_ids,
        "is_finished": result.is_finished,
    }


def django_tasks_demo(request: HttpRequest) -> HttpResponse:
    """Enqueue the email task (POST), or list this visitor's results, polled live."""
    problem = broker_problem() or FRAMEWORK_PROBLEM
    if problem:
        context: dict[str, Any] = {"problem": problem}
        return render_demo(
            request, "reference/django_tasks.html", context, guide=GUIDE_TASKS, code=[_enqueue]
        )
    if request.method == "POST":
        email = getattr(request.user, "email", "") or "user@example.com"
        label, result = _enqueue(request.POST.get("action", ""), email)
        recent = [[label, result.id], *request.session.get(RECENT_RESULTS, [])][:5]
        request.session[RECENT_RESULTS] = recent
        return redirect("django-tasks")
    results = []
    for label, result_id in request.session.get(RECENT_RESULTS, []):
        try:
            results.append({"label": label, **_as_json(email_users.get_result(result_id))})
        except TaskResultDoesNotExist:  # expired (RESULT_EXPIRES) or never written
            continue
    return render_demo(
        request,
        "reference/django_tasks.html",
        {"results": results, "defer_seconds": DEFER_SECONDS},
        guide=GUIDE_TASKS,
        code=[email_users.func, _enqueue, django_task_result],
        settings_names=TASK_SETTINGS,
    )


async def django_task_result(request: HttpRequest, result_id: str) -> JsonResponse:
    """Return one TaskResult as JSON, read with aget_result() on the event loop."""
    if FRAMEWORK_PROBLEM:
        return JsonResponse({"error": FRAMEWORK_PROBLEM}, status=503)
    try:
        result = await email_users.aget_result(result_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"error": f"no task result {result_id}"}, status=404)
    return JsonResponse(_as_json(result))
