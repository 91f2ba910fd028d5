"""The reference site's Celery tasks, run by a real worker process on the real Redis broker
(never eager mode), with Celery beat running the scheduled cleanup.

Tasks are started the way the site starts them (the tasks page's buttons, over HTTP) or,
for an exact ETA, sent to the broker by name from here; results are read back from the
Redis result backend and the site's database.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery

from ._example import ExampleSite, Visitor

DONE = {"SUCCESS", "FAILURE"}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def status(visitor: Visitor, task_id: str) -> dict[str, Any]:
    """Return the task status the site's status page reports, as JSON."""
    reply: dict[str, Any] = json.loads(visitor.get(f"/tasks/{task_id}/?format=json").text)
    return reply


def start(visitor: Visitor, action: str) -> str:
    """Press a button of the tasks page; return the id of the task it started."""
    reply = visitor.post("/tasks/", {"action": action}, follow=False)
    assert reply.status == 302, reply.text[-2000:]
    return reply.headers["location"].rstrip("/").rsplit("/", 1)[1]


def finished(visitor: Visitor, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the task is done; return its status."""
    done: dict[str, Any] = wait_for(
        lambda: (s := status(visitor, task_id))["state"] in DONE and s, timeout, task_id
    )
    return done


def order_row(site: ExampleSite, order_id: int) -> tuple[int, str]:
    """Return (attempts, status) of an order, from the site's SQLite database."""
    # sqlite3's own context manager commits but never closes (a ResourceWarning on 3.13).
    with contextlib.closing(sqlite3.connect(site.env["DJREDIS_EXAMPLE_DB"])) as db:
        row = db.execute(
            "SELECT attempts, status FROM reference_order WHERE id = ?", (order_id,)
        ).fetchone()
    return int(row[0]), str(row[1])


@pytest.fixture(scope="module")
def sender(example_celery: ExampleSite) -> Iterator[Celery]:
    """A Celery client of the site's broker and result backend (databases 3 and 4)."""
    redis_server = example_celery.redis_server
    app = Celery("tests", broker=redis_server.url(3), backend=redis_server.url(4))
    app.conf.broker_connection_retry_on_startup = True
    yield app
    app.close()


def test_welcome_email_is_sent_by_the_worker(example_celery: ExampleSite) -> None:
    """delay(): the worker sends the email (a file) and stores the result in Redis."""
    visitor = Visitor(example_celery.base)
    task_id = start(visitor, "email")

    result = finished(visitor, task_id)

    assert result == {**result, "state": "SUCCESS", "result": "Email sent to demo@example.com"}
    mails = wait_for(lambda: list((example_celery.scratch / "mail").glob("*.log")), 5, "mail")
    assert any("Hello demo, welcome to our site!" in m.read_text() for m in mails)


def test_process_order_retries_until_it_succeeds(example_celery: ExampleSite) -> None:
    """An order failing twice is retried (bind=True, self.retry) and done on attempt 3."""
    visitor = Visitor(example_celery.base)
    task_id = start(visitor, "order-retry")

    result = finished(visitor, task_id)

    assert result["state"] == "SUCCESS"
    order_id = int(result["result"].split()[1])
    assert order_row(example_celery, order_id) == (3, "processed")


def test_process_order_gives_up_after_max_retries(example_celery: ExampleSite) -> None:
    """An order that always fails runs 1 + max_retries (3) times, then FAILURE."""
    visitor = Visitor(example_celery.base)
    task_id = start(visitor, "order-fail")

    result = finished(visitor, task_id)

    assert result["state"] == "FAILURE"
    assert "attempt 4 of order" in result["result"]
    order_id = int(result["result"].split("order ")[1].split(" ")[0])
    assert order_row(example_celery, order_id) == (4, "failed")


def test_eta_task_runs_no_earlier_than_its_eta(example_celery: ExampleSite, sender: Celery) -> None:
    """apply_async(eta=...): pending until the ETA, then run by the worker."""
    eta = datetime.now(timezone.utc) + timedelta(seconds=3)
    result = sender.send_task("reference.tasks.send_welcome_email", args=[1], eta=eta)

    time.sleep(1.0)
    assert result.state == "PENDING"
    assert result.get(timeout=20) == "Email sent to demo@example.com"
    assert result.date_done >= eta


def test_countdown_task_waits_for_its_countdown(
    example_celery: ExampleSite, sender: Celery
) -> None:
    """apply_async(countdown=2) is done two seconds after it was sent, not before."""
    sent = datetime.now(timezone.utc)
    result = sender.send_task("reference.tasks.send_welcome_email", args=[1], countdown=2)

    assert result.get(timeout=20) == "Email sent to demo@example.com"
    assert result.date_done >= sent + timedelta(seconds=2)


def test_beat_runs_cleanup_which_prunes_expired_session_index_entries(
    example_celery: ExampleSite,
) -> None:
    """Beat schedules cleanup_expired_sessions; it drops index entries of expired sessions."""
    sessions_db = example_celery.redis_server.client(1)
    default_db = example_celery.redis_server.client(0)
    sessions_db.zadd("session:user=424242", {"expiredsessionkey": 1, "livekey": 2**50})
    runs_before = int(default_db.get("example:tasks:cleanup-runs") or 0)

    wait_for(
        lambda: int(default_db.get("example:tasks:cleanup-runs") or 0) >= runs_before + 2,
        20,
        "two runs of the beat-scheduled cleanup",
    )

    assert sessions_db.zrange("session:user=424242", 0, -1) == [b"livekey"]
    assert "cleanup-expired-sessions" in example_celery.celery_log("beat")


def test_tasks_page_reports_the_broker_checks(example_celery: ExampleSite) -> None:
    """The tasks page checks maxmemory-policy and visibility_timeout on the real broker."""
    page = Visitor(example_celery.base).get("/tasks/").text
    assert "noeviction (must be noeviction" in page
    assert "7200 s &gt; 3600 s" in page


def test_rate_limit_annotation_spaces_welcome_emails(
    example_celery: ExampleSite, sender: Celery
) -> None:
    """CELERY_TASK_ANNOTATIONS gives send_welcome_email 10/m: one per 6 s on a worker."""
    first = sender.send_task("reference.tasks.send_welcome_email", args=[1])
    second = sender.send_task("reference.tasks.send_welcome_email", args=[1])

    assert first.get(timeout=30) == second.get(timeout=30) == "Email sent to demo@example.com"
    done = sorted([first.date_done, second.date_done])
    assert done[1] - done[0] >= timedelta(seconds=5)  # 6 s apart, less scheduling slack
