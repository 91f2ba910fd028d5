"""djredis's spans nest under a Celery task's span: a real ``celery worker`` process
(solo pool) on a real Redis broker, instrumented with opentelemetry-instrumentation-celery
and djredis.otel, writes its finished spans (the OpenTelemetry SDK's own console exporter,
one JSON object a line) to a file this test reads. The task is sent from here inside a
``request`` span, so the trace crosses the broker: request -> apply_async -> run -> cache
operation -> Redis command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests._observed import Traced
from tests._servers import RedisServer
from tests.site._example import celery_broker_problem

celery_instrumentation = pytest.importorskip("opentelemetry.instrumentation.celery")

PROJECT = Path(__file__).resolve().parents[2]

WORKER_APP = """
import sys
sys.path[:0] = [{src!r}, {root!r}]
import django
from django.conf import settings
settings.configure(
    CACHES={{"default": {{"BACKEND": "djredis.cache.RedisCache", "LOCATION": {cache!r}}}}},
    INSTALLED_APPS=["djredis"],
)
django.setup()
from celery import Celery
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
import djredis.otel

provider = TracerProvider()
provider.add_span_processor(
    SimpleSpanProcessor(
        ConsoleSpanExporter(
            out=open({spans!r}, "a", buffering=1),
            formatter=lambda span: span.to_json(indent=None) + "\\n",
        )
    )
)
trace.set_tracer_provider(provider)
CeleryInstrumentor().instrument(tracer_provider=provider)
djredis.otel.instrument(provider)

app = Celery("obs", broker={broker!r}, backend={backend!r})
app.conf.broker_connection_retry_on_startup = True


@app.task(name="obs.lookup")
def lookup(key):
    from django.core.cache import cache

    value = cache.get(key)
    if value is None:
        value = "computed"
        cache.set(key, value, 30)
    return value
"""


@pytest.fixture
def worker(tmp_path: Path, redis_server: RedisServer) -> Iterator[dict[str, Any]]:
    """A celery worker process of the app above, on its own queue; its spans' file."""
    problem = celery_broker_problem(redis_server.url(11))
    if problem is not None:  # e.g. kombu's Redis transport refusing redis-py 5
        pytest.skip(problem)
    queue = f"obs-{uuid.uuid4().hex[:8]}"
    spans = tmp_path / "spans.jsonl"
    spans.touch()
    app_file = tmp_path / "obs_worker.py"
    app_file.write_text(
        WORKER_APP.format(
            src=str(PROJECT / "src"),
            root=str(PROJECT),
            cache=redis_server.url(10),
            spans=str(spans),
            broker=redis_server.url(11),
            backend=redis_server.url(12),
        )
    )
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "obs_worker",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield {"queue": queue, "spans": spans, "log": tmp_path / "worker.log"}
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _read_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_cache_spans_nest_under_the_celery_task_span_across_the_broker(
    worker: dict[str, Any], redis_server: RedisServer
) -> None:
    traced = Traced()
    instrumentor = celery_instrumentation.CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=traced.provider)
    sender = Celery("sender", broker=redis_server.url(11), backend=redis_server.url(12))
    sender.conf.broker_connection_retry_on_startup = True
    try:
        with traced.tracer.start_as_current_span("request") as request:
            result = sender.send_task(
                "obs.lookup", [f"k-{uuid.uuid4().hex}"], queue=worker["queue"]
            )
        assert result.get(timeout=60) == "computed", worker["log"].read_text()[-3000:]
    finally:
        instrumentor.uninstrument()
        sender.close()
    (published,) = traced.named("apply_async/obs.lookup")

    deadline = time.monotonic() + 20
    while True:  # the run span ends after the task returns: poll the worker's file
        spans = _read_spans(worker["spans"])
        if any(s["name"] == "run/obs.lookup" for s in spans) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    (run,) = by_name["run/obs.lookup"]
    (get_op,) = by_name["cache.get"]
    (set_op,) = by_name["cache.set"]
    (get_cmd,) = by_name["GET"]
    (set_cmd,) = by_name["SET"]

    trace_id = f"0x{request.get_span_context().trace_id:032x}"
    assert {s["context"]["trace_id"] for s in (run, get_op, set_op, get_cmd, set_cmd)} == {trace_id}
    assert run["parent_id"] == f"0x{published.context.span_id:016x}"
    assert get_op["parent_id"] == run["context"]["span_id"]
    assert set_op["parent_id"] == run["context"]["span_id"]
    assert get_op["attributes"]["cache.hit"] is False
    assert get_cmd["parent_id"] == get_op["context"]["span_id"]
    assert set_cmd["parent_id"] == set_op["context"]["span_id"]
    assert get_cmd["kind"] == "SpanKind.CLIENT"
    assert get_cmd["attributes"]["db.namespace"] == "10"
