"""Celery messages for the Redis broker, written by djredis itself.

Enqueueing a Django task is one round trip to the broker's Redis: the result record (SET)
and the Celery message (LPUSH onto the queue's list) go in one MULTI/EXEC, run by djredis's
own connections to the broker (``Broker.topology``: the blocking pool, or the running loop's
multiplexed connection, where concurrent enqueues share one socket). The message is the
one Celery's ``apply_async`` would send (protocol 2 headers built by Celery's own
``app.amqp.as_task_v2``, kombu's Redis envelope around it), so a plain ``celery worker``
consumes it; kombu itself is not used to publish, because its producer is synchronous
(``aenqueue`` would need a thread) and makes more round trips.
"""

from __future__ import annotations

import base64
import json
import uuid
from bisect import bisect
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.utils.nodenames import anon_nodename
from django.core.exceptions import ImproperlyConfigured
from redis import Redis

from djredis._config.options import parse_connection_settings
from djredis._routing.base import Topology
from djredis._routing.connect import connect

__all__ = ["RUNNER_NAME", "Broker", "celery_priority"]

# The single Celery task that runs every Django task (djredis.tasks.runner).
RUNNER_NAME = "djredis.tasks.run"
REDIS_SCHEMES = ("redis", "rediss")
# kombu's Redis transport defaults (kombu.transport.redis.Channel).
KOMBU_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def celery_priority(priority: int) -> int:
    """Map Django's priority (-100..100, higher first) to the Redis transport's 0..9.

    kombu's Redis transport serves 0 first and 9 last, so 100 -> 0, 0 -> 4, -100 -> 9.
    """
    return round((100 - priority) * 9 / 200)


class Broker:
    """Where and how one Celery app's messages are written on its Redis broker."""

    def __init__(self, app: Celery) -> None:
        conf = app.conf
        url = conf.broker_write_url or conf.broker_url
        if not url:
            raise ImproperlyConfigured(
                "djredis.tasks.CeleryBackend: the Celery app has no broker_url "
                "(CELERY_BROKER_URL = 'redis://host:6379/3')"
            )
        first = str(url).split(";")[0].strip()
        scheme = urlsplit(first).scheme
        if scheme not in REDIS_SCHEMES:
            raise ImproperlyConfigured(
                f"djredis.tasks.CeleryBackend needs a Redis broker (redis:// or rediss://); "
                f"the Celery app's broker_url is {scheme}://..."
            )
        self.app = app
        self.url = first
        options: Mapping[str, Any] = conf.broker_transport_options or {}
        self.key_prefix = str(options.get("global_keyprefix", ""))
        self.sep = str(options.get("sep", KOMBU_SEP))
        self.steps = sorted(options.get("priority_steps", KOMBU_PRIORITY_STEPS))
        self.origin = anon_nodename()
        # Built now (no I/O yet), so that a URL djredis cannot use fails the system check.
        self.topology: Topology = connect(
            parse_connection_settings(first, {}, setting="the Celery app's broker_url")
        )
        self._client: Redis | None = None

    # -- connections ---------------------------------------------------------------------------
    def client(self) -> Redis:
        """The process-wide redis-py client of the broker (thread-safe pool): the worker's
        record updates (djredis.tasks.runner)."""
        if self._client is None:
            self._client = Redis.from_url(self.url)
        return self._client

    # -- keys ----------------------------------------------------------------------------------
    def queue_key(self, queue: str, priority: int) -> str:
        """The list kombu's Redis transport keeps ``queue``'s messages of ``priority`` in."""
        step = self.steps[bisect(self.steps, priority) - 1]
        name = f"{queue}{self.sep}{step}" if step else queue
        return self.key_prefix + name

    def record_key(self, result_id: str) -> str:
        """The key of a task's result record (djredis.tasks.records)."""
        return f"{self.key_prefix}djredis:task:{result_id}"

    # -- messages ------------------------------------------------------------------------------
    def message(
        self,
        task_id: str,
        payload: Mapping[str, Any],
        *,
        queue: str,
        priority: int,
        eta: datetime | None,
    ) -> bytes:
        """Return the kombu Redis envelope of a Celery protocol-2 message for the runner."""
        args: Sequence[Any] = (dict(payload),)
        task_message = self.app.amqp.as_task_v2(
            task_id,
            RUNNER_NAME,
            args=args,
            kwargs={},
            eta=eta,
            ignore_result=True,
            origin=self.origin,
            argsrepr=f"({payload.get('task')!r})",
            kwargsrepr="{}",
        )
        body = json.dumps(
            [list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
        ).encode()
        properties = {
            **task_message.properties,
            "delivery_mode": 2,
            "priority": priority,
            "body_encoding": "base64",
            # The anonymous exchange: the routing key is the queue (Celery's retry() sends
            # the retried message back to the same queue from this).
            "delivery_info": {"exchange": "", "routing_key": queue},
            "delivery_tag": str(uuid.uuid4()),
        }
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": task_message.headers,
            "properties": properties,
        }
        return json.dumps(envelope).encode()
