"""Who watches djredis's traffic: tracing, metrics and the slow-command log plug in here.

Two levels are observed. An *operation* is one run of a component's operation (``cache.get``,
a session ``save``, a channel ``send``): the routing layer's ``run_sync``/``run_async`` open
one with ``operation(where, name)``. A *command* is one ``Call``/``Batch``/``Eval`` sent to
one server (a Redis Cluster command split over nodes is one command per node): the routing
layer's ``send_sync``/``send_async`` and the Cluster's per-node sends wrap it in
``Sent(server, command)``. Cache reads report their hits and misses with ``cache_reads``.

Nothing here imports the transport or any observer's library. With no observer installed
``hooks`` is None, and that one test is the whole cost on the command path. Observers
(``djredis.otel``, ``djredis.metrics``, ``djredis.slowlog``) subclass ``Observer``; an
observer that raises is logged, never allowed to fail the command it watched.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from functools import lru_cache
from types import TracebackType
from typing import Any

from djredis._core.commands import Batch, Call, Eval

__all__ = [
    "MULTI_KEY",
    "Hooks",
    "Observer",
    "OperationInfo",
    "Sent",
    "cache_reads",
    "channel_messages",
    "command_name",
    "current",
    "failed",
    "hooks",
    "install",
    "key_count",
    "operation",
    "operation_name",
    "rate_limit_decided",
    "scope",
    "session_event",
    "topology_changed",
    "uninstall",
    "watch_async",
    "watch_sync",
]

logger = logging.getLogger("djredis.observe")

# Commands whose every argument is a key (MSET: every other one).
MULTI_KEY = frozenset({"MGET", "DEL", "UNLINK", "EXISTS", "TOUCH", "WATCH"})
_KEYLESS = frozenset({"PING", "INFO", "SCAN", "FLUSHDB", "FLUSHALL", "DBSIZE", "CLUSTER"})


class OperationInfo:
    """One operation in progress: who runs it, and what its cache reads found."""

    __slots__ = ("alias", "component", "error", "hits", "misses", "name")

    def __init__(self, component: str, alias: str, name: str) -> None:
        self.component = component
        self.alias = alias
        self.name = name
        self.hits = 0
        self.misses = 0
        # A connection or timeout error the component's error policy received (it may
        # have turned it into a miss: the operation then "succeeds" with its fallback).
        self.error: BaseException | None = None


class Observer:
    """The events an observer may follow; every method does nothing unless overridden.

    ``*_started`` return a token handed back to the matching ``*_finished``.
    """

    # Whether ``current()`` must name the operation during its commands (the slow-command
    # log names the alias) even though the observer does not follow operations.
    needs_operation = False

    def operation_started(self, op: OperationInfo) -> Any:
        return None

    def operation_finished(
        self, op: OperationInfo, token: Any, error: BaseException | None
    ) -> None:
        return None

    def command_started(self, server: Any, command: Call | Batch | Eval) -> Any:
        return None

    def command_finished(
        self,
        token: Any,
        server: Any,
        command: Call | Batch | Eval,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        return None

    def cache_reads(self, alias: str, hits: int, misses: int) -> None:
        return None

    def operation_failed(self, op: OperationInfo, exc: BaseException) -> None:
        return None

    def topology_changed(self, topology: str) -> None:
        return None

    def rate_limit_decided(self, rule: str, outcome: str) -> None:
        """A rate-limit rule (its group) decided: ``allowed``, ``limited``,
        ``failed_open`` or ``failed_closed`` (Redis gave no decision)."""
        return None

    def channel_messages(self, event: str, count: int) -> None:
        """The channel layer ``sent``, ``group_sent`` (deliveries), ``received`` messages, or
        refused one to a ``full`` channel."""
        return None

    def session_event(self, event: str, count: int) -> None:
        """Sessions: a ``login`` (a session saved under a user it was not loaded with) or
        ``revoked`` sessions (``revoke_session``, ``revoke_all_sessions``)."""
        return None


def _overrides(observer: Observer, *names: str) -> bool:
    return any(getattr(type(observer), n) is not getattr(Observer, n) for n in names)


class Hooks:
    """The installed observers (a snapshot: installing makes a new ``Hooks``), sorted by the
    events they follow, so the hot paths test one tuple each."""

    __slots__ = ("commands", "observers", "operations", "reads")

    def __init__(self, observers: tuple[Observer, ...]) -> None:
        self.observers = observers
        self.operations = tuple(
            o
            for o in observers
            if o.needs_operation
            or _overrides(o, "operation_started", "operation_finished", "operation_failed")
        )
        self.commands = tuple(
            o for o in observers if _overrides(o, "command_started", "command_finished")
        )
        # Reads are told to the observers, and added up on the operation when one runs.
        self.reads = tuple(o for o in observers if _overrides(o, "cache_reads"))
        if self.operations and not self.reads:
            self.reads = (Observer(),)


hooks: Hooks | None = None
_lock = threading.Lock()
_current: ContextVar[OperationInfo | None] = ContextVar("djredis_operation", default=None)


def install(observer: Observer) -> None:
    """Start calling ``observer`` (once, however often it is installed)."""
    global hooks
    with _lock:
        observers = hooks.observers if hooks is not None else ()
        if observer not in observers:
            hooks = Hooks((*observers, observer))


def uninstall(observer: Observer) -> None:
    """Stop calling ``observer``; with none left, observation costs nothing again."""
    global hooks
    with _lock:
        observers = tuple(o for o in (hooks.observers if hooks else ()) if o is not observer)
        hooks = Hooks(observers) if observers else None


def current() -> OperationInfo | None:
    """Return the operation this task or thread is running, if any."""
    return _current.get()


@lru_cache(maxsize=256)
def scope(where: str) -> tuple[str, str]:
    """Return (component, alias) from an error policy's ``where`` (``CACHES['default']``)."""
    if where.startswith("CACHES[") and where.endswith("]"):
        try:
            return "cache", str(ast.literal_eval(where[7:-1]))
        except (ValueError, SyntaxError):
            return "cache", where[7:-1]
    if where.startswith("SESSION_ENGINE"):
        return "sessions", "sessions"
    if where == "RATELIMIT_USE_CACHE":
        return "ratelimit", "ratelimit"
    if where == "the channel layer":
        return "channels", "channels"
    return "djredis", where


def operation_name(component: str, name: str) -> str:
    # Rate limiting names its operation by what a failure means ("group 'x' fails open").
    return "check" if component == "ratelimit" else name


@lru_cache(maxsize=1024)
def _labels(where: str, name: str) -> tuple[str, str, str]:
    component, alias = scope(where)
    return component, alias, operation_name(component, name)


# The hot paths below call observers inline (no helper frame): an observer that raises is
# logged and skipped, never allowed to fail the command it watched.


class operation:  # lower case: used as ``with observe.operation(...)``, like a function
    """Observe one operation run: ``with operation(policy.where, name): ...``."""

    __slots__ = ("_info", "_observers", "_reset", "_tokens")

    def __init__(self, where: str, name: str) -> None:
        self._info = OperationInfo(*_labels(where, name))
        found = hooks
        self._observers = found.operations if found is not None else ()

    def __enter__(self) -> OperationInfo:
        info = self._info
        self._reset: Token[OperationInfo | None] = _current.set(info)
        tokens = []
        for observer in self._observers:
            try:
                tokens.append(observer.operation_started(info))
            except Exception:
                logger.exception("djredis: an observer failed (%r)", observer)
                tokens.append(None)
        self._tokens = tokens
        return info

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Ended in reverse order: a span made current by one observer is detached last-in.
        observers, tokens = self._observers, self._tokens
        for position in range(len(observers) - 1, -1, -1):
            try:
                observers[position].operation_finished(self._info, tokens[position], error)
            except Exception:
                logger.exception("djredis: an observer failed (%r)", observers[position])
        _current.reset(self._reset)


class Sent:
    """Observe one command sent to one server: ``seen = Sent(...)``, then ``seen.end(exc)``."""

    __slots__ = ("_command", "_observers", "_server", "_started", "_tokens")

    def __init__(self, server: Any, command: Call | Batch | Eval) -> None:
        found = hooks
        observers = self._observers = found.commands if found is not None else ()
        self._server = server
        self._command = command
        tokens = []
        for observer in observers:
            try:
                tokens.append(observer.command_started(server, command))
            except Exception:
                logger.exception("djredis: an observer failed (%r)", observer)
                tokens.append(None)
        self._tokens = tokens
        self._started = time.perf_counter()

    def end(self, error: BaseException | None = None) -> None:
        seconds = time.perf_counter() - self._started
        server, command, tokens = self._server, self._command, self._tokens
        for position, observer in enumerate(self._observers):
            try:
                observer.command_finished(tokens[position], server, command, seconds, error)
            except Exception:
                logger.exception("djredis: an observer failed (%r)", observer)


def watch_sync(found: Hooks, send: Callable[..., Any], *args: Any) -> Any:
    """Run ``send(*args, server, command)`` (the last two arguments) under the observers."""
    if not found.commands:
        return send(*args)
    seen = Sent(args[-2], args[-1])
    try:
        reply = send(*args)
    except BaseException as exc:
        seen.end(exc)
        raise
    seen.end()
    return reply


async def watch_async(found: Hooks, send: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``watch_sync`` for a coroutine function."""
    if not found.commands:
        return await send(*args)
    seen = Sent(args[-2], args[-1])
    try:
        reply = await send(*args)
    except BaseException as exc:
        seen.end(exc)
        raise
    seen.end()
    return reply


def cache_reads(alias: str, hits: int, misses: int) -> None:
    """Report a cache read's hits and misses (to the operation running it, and observers)."""
    info = _current.get()
    if info is not None:
        info.hits += hits
        info.misses += misses
    found = hooks
    for observer in found.reads if found is not None else ():
        try:
            observer.cache_reads(alias, hits, misses)
        except Exception:
            logger.exception("djredis: an observer failed (%r)", observer)


def failed(exc: BaseException) -> None:
    """Report a connection or timeout error the running operation's policy receives."""
    info = _current.get()
    if info is None:
        return
    info.error = exc
    found = hooks
    for observer in found.operations if found is not None else ():
        _call(observer.operation_failed, info, exc)


def command_name(command: Call | Batch | Eval) -> str:
    """Return the command's name for spans and metrics: ``GET``, ``BATCH GET`` (a pipeline
    of GETs), ``BATCH`` (a mixed one), ``EVALSHA <script>`` (a djredis Lua script)."""
    if type(command) is Eval:
        return f"EVALSHA {command.script.name}"
    if type(command) is Batch:
        names = {_upper(args[0]) for args in command.calls}
        return f"BATCH {names.pop()}" if len(names) == 1 else "BATCH"
    return _upper(command.args[0])


def _upper(value: Any) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else str(value)).upper()


def topology_changed(topology: str) -> None:
    """Report that a topology's read servers changed (a failover, a moved primary)."""
    found = hooks
    for observer in found.observers if found is not None else ():
        _call(observer.topology_changed, topology)


# Rare events, or ones a request meets once: every observer is told (callers test
# ``hooks is not None`` first, so they cost nothing when nothing is installed).


def rate_limit_decided(rule: str, outcome: str) -> None:
    """Report a rate-limit decision (``Observer.rate_limit_decided``)."""
    found = hooks
    for observer in found.observers if found is not None else ():
        _call(observer.rate_limit_decided, rule, outcome)


def channel_messages(event: str, count: int = 1) -> None:
    """Report channel layer traffic (``Observer.channel_messages``)."""
    found = hooks
    for observer in found.observers if found is not None else ():
        _call(observer.channel_messages, event, count)


def session_event(event: str, count: int = 1) -> None:
    """Report a session login or revocations (``Observer.session_event``)."""
    found = hooks
    for observer in found.observers if found is not None else ():
        _call(observer.session_event, event, count)


def key_count(command: Call | Batch | Eval) -> int:
    """Return how many keys ``command`` names (for logs and span attributes; no values)."""
    if type(command) is Eval:
        return len(command.keys)
    if type(command) is Batch:
        return sum(_args_keys(args) for args in command.calls)
    return _args_keys(command.args)


def _args_keys(args: tuple[Any, ...]) -> int:
    name = _upper(args[0]) if args else ""
    if name in MULTI_KEY:
        return len(args) - 1
    if name == "MSET":
        return (len(args) - 1) // 2
    if name in ("EVALSHA", "EVAL") and len(args) > 2:
        return int(args[2])
    return 0 if name in _KEYLESS or len(args) < 2 else 1


def _call(method: Any, *args: Any) -> Any:
    try:
        return method(*args)
    except Exception:  # an observer's bug must not fail the command it watched
        logger.exception("djredis: an observer failed (%r)", method)
        return None
