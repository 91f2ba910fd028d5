"""Tracing, metrics and the slow-command log on real Redis, read back with the real libraries.

Spans come from the OpenTelemetry SDK's in-memory exporter, metrics from prometheus_client
registries (and its multiprocess files, written by real worker processes); nothing of
either library is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import RequestFactory
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from redis.exceptions import TimeoutError as RedisTimeoutError

import djredis.metrics
import djredis.otel
import djredis.slowlog
from djredis._core import observe
from djredis.cache import RedisCache
from tests._api import run_api
from tests._observed import Traced, scrape
from tests._servers import RedisServer

PROJECT = Path(__file__).resolve().parents[2]
SECRET_VALUE = "s3cret-value-never-in-telemetry"


# -- spans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_each_command_is_a_client_span_inside_its_cache_operation_span(
    api: str, traced: Traced, django_caches: Any, redis_server: RedisServer
) -> None:
    cache = django_caches["default"]

    def sync() -> None:
        with traced.tracer.start_as_current_span("request"):
            cache.set("k", SECRET_VALUE, 30)
            assert cache.get("k") == SECRET_VALUE
            assert cache.get("absent") is None

    async def coroutine() -> None:
        with traced.tracer.start_as_current_span("request"):
            await cache.aset("k", SECRET_VALUE, 30)
            assert await cache.aget("k") == SECRET_VALUE
            assert await cache.aget("absent") is None

    run_api(api, sync, coroutine)
    (request,) = traced.named("request")
    (set_op,) = traced.named("cache.set")
    hit_op, miss_op = traced.named("cache.get")
    assert traced.parent_of(set_op) == request
    assert traced.parent_of(hit_op) == request
    assert (hit_op.attributes["cache.hit"], miss_op.attributes["cache.hit"]) == (True, False)
    assert hit_op.attributes["djredis.alias"] == "default"
    assert hit_op.kind == SpanKind.INTERNAL
    (set_cmd,) = traced.named("SET")
    get_hit, get_miss = traced.named("GET")
    assert traced.parent_of(set_cmd) == set_op
    assert (traced.parent_of(get_hit), traced.parent_of(get_miss)) == (hit_op, miss_op)
    assert get_hit.kind == SpanKind.CLIENT
    assert dict(get_hit.attributes) == {
        "db.system.name": "redis",
        "db.operation.name": "GET",
        "db.namespace": "0",
        "server.address": "127.0.0.1",
        "server.port": redis_server.port,
    }
    for span in traced.spans():  # no value, and no command text unless asked for
        assert "db.query.text" not in span.attributes
        assert SECRET_VALUE not in repr(dict(span.attributes))


def test_concurrent_tasks_on_one_multiplexed_connection_keep_their_own_parents(
    traced: Traced, django_caches: Any
) -> None:
    cache = django_caches["default"]

    async def request(name: str) -> None:
        with traced.tracer.start_as_current_span(name):
            await cache.aget(name)
            await asyncio.sleep(0)
            await cache.aset(name, 1, 30)

    async def main() -> None:
        await asyncio.gather(*(request(f"request-{n}") for n in range(5)))

    asyncio.run(main())
    for n in range(5):
        (root,) = traced.named(f"request-{n}")
        operations = [s for s in traced.spans() if traced.parent_of(s) == root]
        assert sorted(s.name for s in operations) == ["cache.get", "cache.set"]
        commands = [s for s in traced.spans() if traced.parent_of(s) in operations]
        assert sorted(s.name for s in commands) == ["GET", "SET"]


def test_pipelines_scripts_and_batches_are_named_by_semantic_conventions(
    traced: Traced, django_caches: Any
) -> None:
    cache = django_caches["other"]
    assert cache.get_or_set("fresh", lambda: 5, 30) == 5  # a miss: GET, then add+GET batch
    cache.incr("fresh")  # a Lua script
    (batch,) = traced.named("BATCH")
    assert batch.attributes["db.operation.batch.size"] == 2
    assert batch.attributes["db.operation.name"] == "BATCH"
    assert batch.attributes["db.namespace"] == "1"
    (script,) = traced.named("EVALSHA incr")
    assert script.attributes["db.operation.name"] == "EVALSHA"
    assert script.attributes["db.stored_procedure.name"] == "incr"
    assert [s.name for s in traced.named("cache.get_or_set")] == ["cache.get_or_set"] * 2


def test_query_text_only_when_asked_and_never_with_values(django_caches: Any) -> None:
    traced = Traced()
    djredis.otel.instrument(traced.provider, query_text=True)
    try:
        cache = django_caches["default"]
        cache.set("k", SECRET_VALUE, 30)
        cache.get_many(["k", "j"])
    finally:
        djredis.otel.uninstrument()
    (set_cmd,) = traced.named("SET")
    assert set_cmd.attributes["db.query.text"] == "SET :1:k ? ? ?"
    (mget,) = traced.named("MGET")
    assert mget.attributes["db.query.text"] == "MGET :1:k :1:j"


def test_nothing_is_observed_after_uninstrument(django_caches: Any) -> None:
    traced = Traced()
    djredis.otel.instrument(traced.provider)
    djredis.otel.uninstrument()
    django_caches["default"].get("k")
    assert traced.spans() == []
    assert observe.hooks is None


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore", [False, True])
def test_a_timeout_is_an_error_span_with_the_exception_and_a_failed_get(
    ignore: bool,
    traced: Traced,
    registry: CollectorRegistry,
    settings: Any,
    own_server: RedisServer,
) -> None:
    settings.CACHES = {
        "slow": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": own_server.url(0),
            "OPTIONS": {"socket_timeout": 0.2, "IGNORE_EXCEPTIONS": ignore},
        }
    }
    cache = caches["slow"]
    cache.set("k", 1, 30)  # connected
    os.kill(own_server.process.pid, signal.SIGSTOP)
    if ignore:
        assert cache.get("k", "fallback") == "fallback"
    else:
        with pytest.raises(RedisTimeoutError):
            cache.get("k")
    (get_cmd,) = traced.named("GET")
    assert get_cmd.status.status_code == StatusCode.ERROR
    assert get_cmd.attributes["error.type"] == "redis.exceptions.TimeoutError"
    (event,) = [e for e in get_cmd.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith("TimeoutError")
    (get_op,) = traced.named("cache.get")
    assert get_op.status.status_code == StatusCode.ERROR
    assert scrape(registry, "django_cache_get_total", backend="slow") == 1
    assert scrape(registry, "django_cache_get_fail_total", backend="slow") == 1
    assert scrape(registry, "django_cache_get_misses_total", backend="slow") == 0
    errors = "djredis_command_errors_total"
    assert scrape(registry, errors, alias="slow", command="GET", error="TimeoutError") == 1


# -- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_django_prometheus_cache_counters_per_alias(
    api: str, registry: CollectorRegistry, django_caches: Any
) -> None:
    default, other = django_caches["default"], django_caches["other"]

    def sync() -> None:
        default.set("a", 1, 30)
        default.get("a")
        default.get("b")
        default.get_many(["a", "b", "c"])
        other.get("a")

    async def coroutine() -> None:
        await default.aset("a", 1, 30)
        await default.aget("a")
        await default.aget("b")
        await default.aget_many(["a", "b", "c"])
        await other.aget("a")

    run_api(api, sync, coroutine)
    assert scrape(registry, "django_cache_get_total", backend="default") == 5
    assert scrape(registry, "django_cache_get_hits_total", backend="default") == 2
    assert scrape(registry, "django_cache_get_misses_total", backend="default") == 3
    assert scrape(registry, "django_cache_get_misses_total", backend="other") == 1
    assert scrape(registry, "django_cache_get_fail_total", backend="default") == 0
    count = "djredis_command_duration_seconds_count"
    assert scrape(registry, count, alias="default", command="GET") == 2
    assert scrape(registry, count, alias="default", command="MGET") == 1
    assert scrape(registry, count, alias="default", command="SET") == 1
    ops = "djredis_operations_total"
    assert scrape(registry, ops, component="cache", alias="default", operation="get") == 2


def test_metrics_view_needs_the_token_or_a_staff_user(
    registry: CollectorRegistry, django_caches: Any, settings: Any
) -> None:
    django_caches["default"].get("a")
    settings.DJREDIS_METRICS_TOKEN = "scrape-me"
    factory = RequestFactory()
    anonymous = djredis.metrics.metrics_view(factory.get("/metrics"))
    wrong = djredis.metrics.metrics_view(factory.get("/metrics", HTTP_AUTHORIZATION="Bearer guess"))
    scraper = djredis.metrics.metrics_view(
        factory.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    )
    assert (anonymous.status_code, wrong.status_code, scraper.status_code) == (403, 403, 200)
    body = scraper.content.decode()
    assert 'django_cache_get_misses_total{backend="default"} 1.0' in body


def test_observer_settings_are_validated(settings: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="'qeury_text'"):
        djredis.otel.configure({"qeury_text": True})
    with pytest.raises(ImproperlyConfigured, match="DJREDIS_SLOW_COMMAND_MS"):
        djredis.slowlog.configure("50")
    with pytest.raises(ImproperlyConfigured, match="DJREDIS_PROMETHEUS"):
        djredis.metrics.configure("yes")


WORKER = """
import os, sys
sys.path[:0] = [{src!r}, {root!r}]
import django
from django.conf import settings
settings.configure(
    CACHES={{"default": {{"BACKEND": "djredis.cache.RedisCache", "LOCATION": {url!r}}}}},
    DJREDIS_PROMETHEUS=True,
    INSTALLED_APPS=["djredis"],
)
django.setup()
from django.core.cache import cache
cache.set("present", 1, 60)
for key in {keys!r}:
    cache.get(key)
"""


def test_multiprocess_mode_sums_every_worker_into_one_hit_ratio(
    tmp_path: Path, redis_server: RedisServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_server.url(3)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    # Worker A: 3 hits, 1 miss. Worker B: 1 hit, 3 misses. The site: 4 of 8 = 50 %.
    for keys in (["present"] * 3 + ["absent"], ["present"] + ["absent"] * 3):
        script = WORKER.format(src=str(PROJECT / "src"), root=str(PROJECT), url=url, keys=keys)
        subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    site = djredis.metrics.summary()["default"]
    assert (site.gets, site.hits, site.misses) == (8, 4, 4)
    assert site.hit_ratio == 0.5
    assert site.p50_ms is not None
    assert site.p99_ms is not None
    assert site.p50_ms <= site.p99_ms
    settings.CACHES = {"default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": url}}
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "djredis"]
    out = StringIO()
    call_command("djredis_cache", "info", stdout=out)
    assert "hit ratio (djredis metrics, every worker): 50.0% (4 hits, 4 misses" in out.getvalue()


# -- slow-command log -------------------------------------------------------------------------


def test_slow_commands_are_logged_without_keys_or_values_and_rate_limited(
    django_caches: Any, caplog: pytest.LogCaptureFixture, redis_server: RedisServer
) -> None:
    djredis.slowlog.install(threshold_ms=0)  # every command is "slow"
    try:
        with caplog.at_level(logging.WARNING, logger="djredis.slow"):
            django_caches["default"].set("secret-key", SECRET_VALUE, 30)
            django_caches["default"].get_many(["secret-key", "b"])
    finally:
        djredis.slowlog.uninstall()
    (record,) = [r for r in caplog.records if r.name == "djredis.slow"]  # the burst: one line
    message = record.getMessage()
    assert message.startswith(
        f"djredis: slow command SET (1 keys) on 127.0.0.1:{redis_server.port}/0 for "
        "cache 'default' set: "
    )
    assert "secret-key" not in message
    assert SECRET_VALUE not in message


def test_a_command_under_the_threshold_is_not_logged(
    django_caches: Any, caplog: pytest.LogCaptureFixture
) -> None:
    djredis.slowlog.install(threshold_ms=60_000)
    try:
        with caplog.at_level(logging.WARNING, logger="djredis.slow"):
            django_caches["default"].get("k")
    finally:
        djredis.slowlog.uninstall()
    assert [r for r in caplog.records if r.name == "djredis.slow"] == []


# -- Redis Cluster ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["cluster"], indirect=True)
@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_split_get_many_is_one_span_per_cluster_node(
    api: str, traced: Traced, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache(KEY_PREFIX="spans")
    keys = [f"key-{n}" for n in range(30)]  # hash tags of 30 keys cover all three nodes
    cache.set_many(dict.fromkeys(keys, 1), 30)
    traced.exporter.clear()
    run_api(
        api,
        lambda: cache.get_many(keys),
        lambda: cache.aget_many(keys),
    )
    (operation,) = traced.named("cache.get_many")
    assert operation.attributes["cache.hits"] == 30
    nodes = traced.named("MGET") + traced.named("BATCH MGET")
    assert len(nodes) == 3
    assert len({span.attributes["server.port"] for span in nodes}) == 3
    assert all(traced.parent_of(span) == operation for span in nodes)


LATE_PROVIDER = """
import sys, time
sys.path[:0] = [{src!r}, {root!r}]
import django
from django.conf import settings
settings.configure(
    CACHES={{"default": {{"BACKEND": "djredis.cache.RedisCache", "LOCATION": {url!r}}}}},
    DJREDIS_OPENTELEMETRY=True,
    INSTALLED_APPS=["djredis"],
)
import djredis.otel
djredis.otel.PROVIDER_CHECK_SECONDS = 0.05
django.setup()  # DJREDIS_OPENTELEMETRY: instrumented, while no provider exists yet
from django.core.cache import cache
from djredis._core import observe
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
cache.get("before")
assert observe.hooks is None, "nothing observes the commands while there is no provider"
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
deadline = time.monotonic() + 10
while observe.hooks is None and time.monotonic() < deadline:
    time.sleep(0.01)
cache.get("after")
print(sorted(span.name for span in exporter.get_finished_spans()))
"""


def test_a_tracer_provider_configured_after_instrumenting_is_picked_up(
    redis_server: RedisServer,
) -> None:
    script = LATE_PROVIDER.format(
        src=str(PROJECT / "src"), root=str(PROJECT), url=redis_server.url(4)
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['GET', 'cache.get']"


def test_session_operations_are_spans_and_counted(
    traced: Traced, registry: CollectorRegistry, settings: Any, redis_server: RedisServer
) -> None:
    from importlib import import_module

    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_REDIS = {"url": redis_server.url(5), "prefix": "obs"}
    store = import_module("djredis.sessions").SessionStore()
    store["user"] = SECRET_VALUE
    store.save()
    loaded = import_module("djredis.sessions").SessionStore(store.session_key)
    assert loaded["user"] == SECRET_VALUE
    (save,) = traced.named("sessions.save")
    (load,) = traced.named("sessions.load")
    assert save.attributes["djredis.component"] == "sessions"
    for operation in (save, load):
        commands = [s for s in traced.spans() if traced.parent_of(s) == operation]
        assert commands
        assert all(s.kind == SpanKind.CLIENT for s in commands)
        assert all(s.attributes["db.namespace"] == "5" for s in commands)
    for span in traced.spans():
        assert SECRET_VALUE not in repr(dict(span.attributes))
    ops = "djredis_operations_total"
    assert scrape(registry, ops, component="sessions", alias="sessions", operation="save") == 1
    assert scrape(registry, ops, component="sessions", alias="sessions", operation="load") == 1
