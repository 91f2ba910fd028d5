"""OpenTelemetry traces of djredis: a CLIENT span per Redis command, a span per operation.

    import djredis.otel
    djredis.otel.instrument()                 # or settings.DJREDIS_OPENTELEMETRY = True

Every command djredis sends on its pooled or multiplexed connections (cache, sessions, rate
limits, the channel layer's sends, near-cache fills, Lua scripts; each node's share of a
Redis Cluster command) becomes a ``CLIENT`` span following OpenTelemetry's semantic
conventions for database clients: ``db.system.name`` = ``redis``, ``db.operation.name``
(``GET``; ``BATCH GET`` or ``BATCH`` for a pipeline, with ``db.operation.batch.size``;
``EVALSHA`` with ``db.stored_procedure.name`` for a script), ``db.namespace`` (the database
index), ``server.address``/``server.port``. ``db.query.text`` (command and keys, every other
argument as ``?``; never a value) only with ``query_text=True``. A failed command's span has
status ERROR, ``error.type`` and the exception recorded.

Each operation (``cache.get``, ``cache.get_many``, ``sessions.load``, ``channels.send``,
``ratelimit.check``) is an ``INTERNAL`` span holding its command spans; a cache read's span
says ``cache.hit`` (one key) and ``cache.hits``/``cache.misses``. Spans are children of the
current span: the request's in a sync or async view (contextvars follow the caller's task
to the multiplexed connection), the task's in Celery.

Without a tracer provider configured tracing costs nothing on the command path: a daemon
thread looks for one once a second and djredis starts making spans with it; pass
``tracer_provider`` to use one directly.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "djredis.otel needs OpenTelemetry: pip install 'djredis[otel]' (opentelemetry-api)"
    ) from exc

from redis.exceptions import ResponseError

from djredis._core import observe
from djredis._core.commands import Batch, Call, Eval
from djredis._core.observe import MULTI_KEY, Observer, OperationInfo

__all__ = ["TracingObserver", "describe", "instrument", "is_instrumented", "uninstrument"]

# How often, without a tracer provider, djredis looks again for one.
PROVIDER_CHECK_SECONDS = 1.0
QUERY_TEXT_LIMIT = 2000
_SETTING_KEYS = frozenset({"query_text", "operation_spans"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("djredis")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


class TracingObserver(Observer):
    """Turn djredis's operations and commands into spans (``djredis._core.observe``)."""

    def __init__(
        self,
        tracer_provider: Any,
        *,
        query_text: bool = False,
        operation_spans: bool = True,
    ) -> None:
        self.query_text = query_text
        self.operation_spans = operation_spans
        self._servers: dict[Any, dict[str, Any]] = {}
        self._tracer = tracer_provider.get_tracer("djredis", _version())

    def tracer(self) -> Any:
        """Return the tracer spans are made with."""
        return self._tracer

    # -- operations ---------------------------------------------------------------------------

    def operation_started(self, op: OperationInfo) -> Any:
        if not self.operation_spans:
            return None
        span = self._tracer.start_span(
            f"{op.component}.{op.name}",
            kind=SpanKind.INTERNAL,
            attributes={"djredis.component": op.component, "djredis.alias": op.alias},
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    def operation_finished(
        self, op: OperationInfo, token: Any, error: BaseException | None
    ) -> None:
        if token is None:
            return
        span, attached = token
        if op.hits or op.misses:
            if op.hits + op.misses == 1:
                span.set_attribute("cache.hit", bool(op.hits))
            span.set_attribute("cache.hits", op.hits)
            span.set_attribute("cache.misses", op.misses)
        failure = error if error is not None else op.error
        if failure is not None:
            _record(span, failure)
        otel_context.detach(attached)
        span.end()

    # -- commands -----------------------------------------------------------------------------

    def command_started(self, server: Any, command: Call | Batch | Eval) -> Any:
        name, attributes = describe(command, self.query_text)
        attributes.update(self._server_attributes(server))
        return self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def command_finished(
        self,
        token: Any,
        server: Any,
        command: Call | Batch | Eval,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        if token is None:
            return
        if error is not None:
            _record(token, error)
        token.end()

    def _server_attributes(self, server: Any) -> dict[str, Any]:
        found = self._servers.get(server)
        if found is None:
            kw = dict(server.connection_kwargs)
            found = {"db.system.name": "redis", "db.namespace": str(kw.get("db", 0))}
            if kw.get("path"):
                found["server.address"] = str(kw["path"])
            else:
                found["server.address"] = str(kw.get("host", "localhost"))
                found["server.port"] = int(kw.get("port", 6379))
            self._servers[server] = found
        return found


def _record(span: Any, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.set_attribute("error.type", f"{type(error).__module__}.{type(error).__qualname__}")
    if isinstance(error, ResponseError) and str(error):
        span.set_attribute("db.response.status_code", str(error).split()[0])


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return str(value)


def _call_text(args: tuple[Any, ...]) -> str:
    """Return ``args`` with every argument but the keys replaced by ``?``."""
    name = _text(args[0]).upper()
    shown = [name]
    for position, value in enumerate(args[1:]):
        is_key = (
            name in MULTI_KEY
            or (name == "MSET" and position % 2 == 0)
            or (position == 0 and observe.key_count(Call(args)) > 0)
        )
        shown.append(_text(value) if is_key else "?")
    return " ".join(shown)


def describe(command: Call | Batch | Eval, query_text: bool = False) -> tuple[str, dict[str, Any]]:
    """Return the span name and the attributes of ``command`` (keys at most, never values)."""
    attributes: dict[str, Any] = {}
    span_name = observe.command_name(command)
    if type(command) is Eval:
        name = "EVALSHA"
        attributes["db.stored_procedure.name"] = command.script.name
        if query_text:
            keys = " ".join(_text(key) for key in command.keys)
            rest = " ?" * (len(command.args) + len(command.per_key))
            attributes["db.query.text"] = f"EVALSHA {command.script.name} {keys}{rest}"
    elif type(command) is Batch:
        name = span_name
        attributes["db.operation.batch.size"] = len(command.calls)
        if command.transaction:
            attributes["djredis.transaction"] = True
        if query_text:
            attributes["db.query.text"] = "\n".join(_call_text(a) for a in command.calls)
    else:
        name = span_name
        if query_text:
            attributes["db.query.text"] = _call_text(command.args)
    attributes["db.operation.name"] = name
    if "db.query.text" in attributes:
        attributes["db.query.text"] = attributes["db.query.text"][:QUERY_TEXT_LIMIT]
    return span_name, attributes


class _AwaitingProvider:
    """Stands in for the ``TracingObserver`` while no tracer provider is configured: a
    daemon thread looks for one once a second and installs the observer when it appears.
    Meanwhile no observer is installed, so the command path costs what it does untraced.
    (``trace.get_tracer_provider()`` itself costs microseconds: it reads os.environ.)"""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="djredis-otel", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        while not self._stop.wait(PROVIDER_CHECK_SECONDS):
            provider = trace.get_tracer_provider()
            if not isinstance(provider, ProxyTracerProvider):
                _replace(self, TracingObserver(provider, **self.options))
                return

    def stop(self) -> None:
        self._stop.set()


_installed: TracingObserver | _AwaitingProvider | None = None
_lock = threading.Lock()


def _replace(
    old: TracingObserver | _AwaitingProvider | None, new: TracingObserver | _AwaitingProvider | None
) -> None:
    global _installed
    with _lock:
        if _installed is not old:  # another thread got there first
            if isinstance(new, _AwaitingProvider):
                new.stop()
            return
        if isinstance(old, _AwaitingProvider):
            old.stop()
        elif old is not None:
            observe.uninstall(old)
        if isinstance(new, TracingObserver):
            observe.install(new)
        _installed = new


def _after_fork_in_child() -> None:
    # The parent's waiting thread does not exist in a forked worker: wait again there.
    global _installed, _lock
    _lock = threading.Lock()
    if isinstance(_installed, _AwaitingProvider):
        _installed = _AwaitingProvider(_installed.options)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def instrument(
    tracer_provider: Any = None, *, query_text: bool = False, operation_spans: bool = True
) -> None:
    """Start tracing djredis (again, with these options, if it already was).

    ``tracer_provider``: the provider to use (default: the global one; while none is
    configured djredis looks again at most once a second, and spans begin with it).
    ``query_text``: add ``db.query.text`` (command and keys; values always ``?``).
    ``operation_spans``: also a span per operation (``cache.get``) around its commands.
    """
    options = {"query_text": query_text, "operation_spans": operation_spans}
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    observer: TracingObserver | _AwaitingProvider
    if isinstance(provider, ProxyTracerProvider):
        observer = _AwaitingProvider(options)
    else:
        observer = TracingObserver(provider, **options)
    _replace(_installed, observer)


def uninstrument() -> None:
    """Stop tracing djredis."""
    _replace(_installed, None)


def is_instrumented() -> bool:
    """Return whether djredis is being traced."""
    return _installed is not None


def configure(value: Any) -> None:
    """Apply ``settings.DJREDIS_OPENTELEMETRY``: True, False/None, or a dict of options."""
    if value is None or value is False:
        return
    if value is True:
        instrument()
        return
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            "DJREDIS_OPENTELEMETRY must be True, False or a dict of options "
            f"({', '.join(sorted(_SETTING_KEYS))})."
        )
    unknown = sorted(set(value) - _SETTING_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"DJREDIS_OPENTELEMETRY has unknown option(s) {', '.join(map(repr, unknown))}; "
            f"the options are {', '.join(sorted(_SETTING_KEYS))}."
        )
    instrument(**value)
