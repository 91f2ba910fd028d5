"""Prometheus metrics of djredis, under django-prometheus's names where it has them.

    import djredis.metrics
    djredis.metrics.install()                 # or settings.DJREDIS_PROMETHEUS = True

    # urls.py: the scrape endpoint (bearer token or staff user; see metrics_view)
    path("metrics", djredis.metrics.metrics_view)

django-prometheus's cache counters, label ``backend`` = the cache alias (its dashboards
work unchanged; when django-prometheus is installed its own counter objects are reused):
``django_cache_get_total``, ``django_cache_get_hits_total``,
``django_cache_get_misses_total``, ``django_cache_get_fail_total``. Each key a read looks up
(``get``, ``get_or_set``'s read, each key of ``get_many``, near-cache reads included) counts
one get and one hit or miss; a read that met a connection error counts one get and one fail.

djredis's own:

- ``djredis_command_duration_seconds`` (histogram; ``alias``, ``command``): every command
  sent to Redis, by the alias whose operation sent it and the command's name (``GET``,
  ``BATCH SET``, ``EVALSHA incr``; each node's share of a Cluster command counts once);
- ``djredis_command_errors_total`` (``alias``, ``command``, ``error``): connection errors,
  timeouts and server errors (``ConnectionError`` and ``TimeoutError`` rising together is a
  reconnect storm);
- ``djredis_operations_total`` / ``djredis_operation_errors_total`` (``component``,
  ``alias``, ``operation``[, ``error``]): operations of the cache, sessions (``save``,
  ``load``, ``revoke_session``...), rate limiting (``check``) and the channel layer
  (``send``, ``group_send``);
- ``djredis_topology_changes_total`` (``topology``): a Sentinel failover or a Cluster slot
  map whose primaries changed;
- ``djredis_ratelimit_decisions_total`` (``rule``, ``outcome``),
  ``djredis_channel_messages_total`` (``event``), ``djredis_channel_full_total``,
  ``djredis_session_logins_total``, ``djredis_session_revocations_total``: told by the
  components (``djredis._core.observe``);
- near-cache, pool, async connection and reconnect figures, read from the objects when
  sampled (``djredis.metrics_state``).

With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, docs/operations.md) before the workers start: ``metrics_view`` then
serves the sum over every worker, so the hit ratio is the whole site's.
"""

from __future__ import annotations

import atexit
import hmac
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "djredis.metrics needs prometheus_client: pip install 'djredis[prometheus]'"
    ) from exc

from djredis._core import observe
from djredis._core.commands import Batch, Call, Eval
from djredis._core.observe import Observer, OperationInfo
from djredis.metrics_state import SAMPLE_SECONDS, StateMetrics

__all__ = [
    "LATENCY_BUCKETS",
    "AliasSummary",
    "MetricsObserver",
    "collecting_registry",
    "install",
    "metrics_view",
    "summary",
    "uninstall",
]

# Seconds: a loopback round trip is ~0.1 ms, a cross-zone one ~1 ms, a timeout 1 s.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    float("inf"),
)
_GETS = frozenset({"get", "get_many", "get_or_set"})


def _django_prometheus_counters() -> tuple[Any, ...] | None:
    """Return django-prometheus's own cache counters when it is installed (one set of
    time series in the default registry, whoever counts)."""
    try:
        from django_prometheus.cache import metrics as theirs  # type: ignore[import-not-found]
    except ImportError:
        return None
    return (
        theirs.django_cache_get_total,
        theirs.django_cache_hits_total,
        theirs.django_cache_misses_total,
        theirs.django_cache_get_fail_total,
    )


class MetricsObserver(Observer):
    """Count djredis's operations and time its commands (``djredis._core.observe``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        namespace = (
            getattr(settings, "PROMETHEUS_METRIC_NAMESPACE", "") if settings.configured else ""
        )
        theirs = _django_prometheus_counters() if registry is None else None
        target = registry if registry is not None else prometheus_client.REGISTRY
        self._children: dict[tuple[Any, ...], Any] = {}
        # Near-cache, pools and connections: read from the objects when sampled.
        self.state = StateMetrics(target, self._child)
        if theirs is None:

            def counter(name: str, doc: str) -> Counter:
                return Counter(name, doc, ["backend"], namespace=namespace, registry=target)

            theirs = (
                counter("django_cache_get_total", "Total get requests on cache"),
                counter("django_cache_get_hits_total", "Total hits on cache"),
                counter("django_cache_get_misses_total", "Total misses on cache"),
                counter("django_cache_get_fail_total", "Total get request failures by cache"),
            )
        self.gets, self.hits, self.misses, self.fails = theirs
        self.command_seconds = Histogram(
            "djredis_command_duration_seconds",
            "Time from sending a Redis command to its reply, per alias and command",
            ["alias", "command"],
            buckets=LATENCY_BUCKETS,
            registry=target,
        )
        self.command_errors = Counter(
            "djredis_command_errors_total",
            "Redis commands that failed: connection, timeout or server errors",
            ["alias", "command", "error"],
            registry=target,
        )
        self.operations = Counter(
            "djredis_operations_total",
            "djredis operations run (cache, sessions, rate limiting, channel layer)",
            ["component", "alias", "operation"],
            registry=target,
        )
        self.operation_errors = Counter(
            "djredis_operation_errors_total",
            "djredis operations that ended in an error (or a miss under IGNORE_EXCEPTIONS)",
            ["component", "alias", "operation", "error"],
            registry=target,
        )
        self.topology_changes = Counter(
            "djredis_topology_changes_total",
            "Read servers changed: a Sentinel failover, a Cluster primary moved",
            ["topology"],
            registry=target,
        )
        self.rate_limit_decisions = Counter(
            "djredis_ratelimit_decisions_total",
            "Rate-limit decisions by rule (group) and outcome: allowed, limited, "
            "failed_open, failed_closed (Redis gave no decision)",
            ["rule", "outcome"],
            registry=target,
        )
        self.channel_messages_total = Counter(
            "djredis_channel_messages_total",
            "Channel layer messages: sent (send), group_sent (group_send deliveries), received",
            ["event"],
            registry=target,
        )
        self.channel_full = Counter(
            "djredis_channel_full_total",
            "send() calls refused with ChannelFull (the channel held its capacity)",
            registry=target,
        )
        self.session_logins = Counter(
            "djredis_session_logins_total",
            "Sessions saved under a user they were not read with (a login)",
            registry=target,
        )
        self.session_revocations = Counter(
            "djredis_session_revocations_total",
            "Sessions deleted by revoke_session / revoke_all_sessions",
            registry=target,
        )
        self.registry = target
        self._reads: dict[str, tuple[Any, Any, Any]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        # .labels() takes a lock and builds a tuple every call: keep the children.
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def cache_reads(self, alias: str, hits: int, misses: int) -> None:
        found = self._reads.get(alias)
        if found is None:
            found = self._reads[alias] = (
                self.gets.labels(alias),
                self.hits.labels(alias),
                self.misses.labels(alias),
            )
        gets, hit, miss = found
        gets.inc(hits + misses)
        if hits:
            hit.inc(hits)
        if misses:
            miss.inc(misses)

    def operation_failed(self, op: OperationInfo, exc: BaseException) -> None:
        if op.component == "cache" and op.name in _GETS:
            self._child(self.gets, op.alias).inc()
            self._child(self.fails, op.alias).inc()

    def operation_finished(
        self, op: OperationInfo, token: Any, error: BaseException | None
    ) -> None:
        self._child(self.operations, op.component, op.alias, op.name).inc()
        failure = error if error is not None else op.error
        if failure is not None:
            labels = (op.component, op.alias, op.name, type(failure).__name__)
            self._child(self.operation_errors, *labels).inc()

    def command_finished(
        self,
        token: Any,
        server: Any,
        command: Call | Batch | Eval,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        op = observe.current()
        alias = op.alias if op is not None else ""
        name = observe.command_name(command)
        self._child(self.command_seconds, alias, name).observe(seconds)
        if error is not None:
            self._child(self.command_errors, alias, name, type(error).__name__).inc()

    def topology_changed(self, topology: str) -> None:
        self._child(self.topology_changes, topology).inc()

    def rate_limit_decided(self, rule: str, outcome: str) -> None:
        self._child(self.rate_limit_decisions, rule, outcome).inc()

    def channel_messages(self, event: str, count: int) -> None:
        if event == "full":
            self.channel_full.inc(count)
        elif count:
            self._child(self.channel_messages_total, event).inc(count)

    def session_event(self, event: str, count: int) -> None:
        if event == "login":
            self.session_logins.inc(count)
        elif event == "revoked":
            self.session_revocations.inc(count)


_installed: MetricsObserver | None = None
_by_registry: dict[int, MetricsObserver] = {}


def install(registry: CollectorRegistry | None = None) -> MetricsObserver:
    """Start counting into ``registry`` (default: prometheus_client's ``REGISTRY``).

    Metrics are registered once per registry; installing again reuses them.
    """
    global _installed
    uninstall()
    key = id(registry if registry is not None else prometheus_client.REGISTRY)
    found = _by_registry.get(key)
    if found is None or (registry is not None and found.registry is not registry):
        found = _by_registry[key] = MetricsObserver(registry)
    _installed = found
    observe.install(found)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _start_sampling()
    return found


def uninstall() -> None:
    """Stop counting (the metrics keep their values)."""
    global _installed
    if _installed is not None:
        observe.uninstall(_installed)
        _installed = None


# In multiprocess mode the scrape reads every worker's files, never a worker's registry:
# each worker writes its sampled figures itself, every SAMPLE_SECONDS.
_sampler: threading.Thread | None = None


def _start_sampling() -> None:
    global _sampler
    if _sampler is not None and _sampler.is_alive():
        return
    _sampler = threading.Thread(target=_sample_forever, name="djredis-metrics", daemon=True)
    _sampler.start()


def _sample_forever() -> None:
    stop = threading.Event()
    while not stop.wait(SAMPLE_SECONDS):
        found = _installed
        if found is None:
            return
        try:
            found.state.sample()
        except Exception:  # never let a bug end the sampling silently in every worker
            observe.logger.exception("djredis: sampling the metrics failed")


@atexit.register
def _sample_at_exit() -> None:
    # A worker that exits (a recycled gunicorn worker, a management command) leaves its
    # last figures in its files: the counters of the site keep what it counted.
    if _installed is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            _installed.state.sample()
        except Exception:
            observe.logger.exception("djredis: sampling the metrics at exit failed")


def _after_fork_in_child() -> None:
    # The parent's sampling thread does not exist in a forked worker: start one there.
    global _sampler
    _sampler = None
    if _installed is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _start_sampling()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def configure(value: Any) -> None:
    """Apply ``settings.DJREDIS_PROMETHEUS`` (True or False)."""
    if value is None or value is False:
        return
    if value is not True:
        raise ImproperlyConfigured("DJREDIS_PROMETHEUS must be True or False.")
    install()


def collecting_registry() -> Any:
    """Return what to scrape: every worker's metrics in multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR``), else this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        if _installed is not None:  # this worker's own figures, fresh
            _installed.state.sample()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    if _installed is not None:
        return _installed.registry
    return prometheus_client.REGISTRY


def _allowed(request: HttpRequest) -> bool:
    token = getattr(settings, "DJREDIS_METRICS_TOKEN", None)
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics in Prometheus's text format to a scraper sending
    ``Authorization: Bearer <settings.DJREDIS_METRICS_TOKEN>``, or to a staff user; anyone
    else gets 403 (metrics describe the site's traffic)."""
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    body = prometheus_client.generate_latest(collecting_registry())
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class AliasSummary:
    """What the metrics say of one cache alias (every worker's, in multiprocess mode)."""

    alias: str
    gets: float
    hits: float
    misses: float
    fails: float
    commands: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def hit_ratio(self) -> float | None:
        reads = self.hits + self.misses
        return self.hits / reads if reads else None


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate a quantile from cumulative (upper bound, count) buckets, as PromQL's
    histogram_quantile does (linear within the bucket)."""
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below or 1))
        lower, below = bound, count
    return lower


def summary(registry: Any = None) -> dict[str, AliasSummary]:
    """Return per-alias figures read back from the metrics (``collecting_registry()``)."""
    source = registry if registry is not None else collecting_registry()
    counts: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    names = {
        "django_cache_get_total": "gets",
        "django_cache_get_hits_total": "hits",
        "django_cache_get_misses_total": "misses",
        "django_cache_get_fail_total": "fails",
        "djredis_command_duration_seconds_count": "commands",
    }
    for sample in _samples(source.collect()):
        name, labels, value = sample.name, sample.labels, sample.value
        for full, field in names.items():
            if name.endswith(full):
                alias = labels.get("backend", labels.get("alias", ""))
                counts.setdefault(alias, {}).setdefault(field, 0.0)
                counts[alias][field] += value
        if name == "djredis_command_duration_seconds_bucket":
            per = buckets.setdefault(labels["alias"], {})
            bound = float(labels["le"])
            per[bound] = per.get(bound, 0.0) + value
    result = {}
    for alias, found in counts.items():
        if not alias:
            continue
        cumulative = list(buckets.get(alias, {}).items())

        def ms(q: float, cumulative: list[tuple[float, float]] = cumulative) -> float | None:
            value = _quantile(q, list(cumulative))
            return None if value is None else round(value * 1000, 3)

        result[alias] = AliasSummary(
            alias,
            found.get("gets", 0.0),
            found.get("hits", 0.0),
            found.get("misses", 0.0),
            found.get("fails", 0.0),
            found.get("commands", 0.0),
            ms(0.5),
            ms(0.95),
            ms(0.99),
        )
    return result


def _samples(families: Iterable[Any]) -> Iterable[Any]:
    for family in families:
        yield from family.samples
