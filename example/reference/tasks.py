"""The guide's Celery tasks, run by a real worker on the Redis broker (reference/celery.py)."""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import F
from django.utils import timezone

from djredis import get_redis_connection

CLEANUP_RUNS_KEY = "example:tasks:cleanup-runs"


class OrderFailed(Exception):
    """Processing an order failed this time (the demo's stand-in for a payment error)."""


@shared_task
def send_welcome_email(user_id: int) -> str:
    """Email a user a welcome message (rate-limited by CELERY_TASK_ANNOTATIONS)."""
    user = get_user_model().objects.get(id=user_id)
    send_mail(
        "Welcome!",
        f"Hello {user.get_username()}, welcome to our site!",
        "noreply@example.com",
        [user.email],
    )
    return f"Email sent to {user.email}"


@shared_task(bind=True, max_retries=3)
def process_order(self: Task, order_id: int) -> str:
    """Process an order; on failure retry up to three times, ORDER_RETRY_SECONDS apart."""
    from .models import Order

    Order.objects.filter(id=order_id).update(attempts=F("attempts") + 1, status="processing")
    order = Order.objects.get(id=order_id)
    try:
        if order.attempts <= order.fail_times:
            raise OrderFailed(f"attempt {order.attempts} of order {order_id} failed")
    except OrderFailed as exc:
        if self.request.retries >= self.max_retries:
            Order.objects.filter(id=order_id).update(status="failed")
        # retry() raises Retry (or, after max_retries, this exception): the task stops here.
        raise self.retry(exc=exc, countdown=settings.ORDER_RETRY_SECONDS) from exc
    Order.objects.filter(id=order_id).update(status="processed", processed_at=timezone.now())
    return f"Order {order_id} processed"


def _prune_session_indexes() -> int:
    """Remove expired sessions from every user's session index; return how many."""
    redis_conn = get_redis_connection("sessions")
    prefix = settings.SESSION_REDIS["prefix"]
    now_ms = time.time_ns() // 1_000_000
    removed = 0
    for key in redis_conn.scan_iter(match=f"{prefix}:user=*", count=500):
        removed += int(redis_conn.zremrangebyscore(key, "-inf", now_ms))
    return removed


# Idempotent (deleting what is expired twice is harmless), so it may be redelivered when
# its worker dies mid-task: acks_late + reject_on_worker_lost, for this task only.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def cleanup_expired_sessions() -> dict[str, Any]:
    """Clear expired sessions (the engine's clear_expired) and prune the per-user indexes.

    Celery beat runs it every CLEANUP_SECONDS. With djredis.sessions Redis expires the
    sessions themselves; the indexes are pruned lazily, and here for users who never return.
    """
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
    pruned = _prune_session_indexes()
    runs = get_redis_connection("default").incr(CLEANUP_RUNS_KEY)
    return {"pruned": pruned, "runs": runs}
