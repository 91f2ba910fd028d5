"""Stampede protection: when a hot key expires, one caller recomputes it, the others wait.

Two mechanisms, used by ``memoize`` (both) and ``get_or_set(..., stampede=True)`` (the lock):

* a short **recompute lock** beside the key (``<key>:\\x00lock``, SET NX PX, in one script
  with the read: ``stampede_claim.lua``). The caller that takes it computes; the value and
  the release go in one script (``stampede_fill.lua``), which deletes the lock only while it
  still holds the caller's token. The others poll the same script every few milliseconds
  and return the new value soon after it is there. If the holder fails (an exception), it
  releases the lock and counts the failure beside the key (``<key>:\\x00fail``, in
  ``stampede_release.lua``); the waiters see the count on their next look: one of them
  takes the lock and tries once more, and when that fails too, every caller that waited
  through both failures raises ``RecomputeError`` at once, instead of taking the lock one
  after another (50 waiters of a function failing after 0.2 s used to queue for 10 s). If
  the holder dies without releasing, the lock expires after ``lock_timeout`` and a waiter
  takes it then. Nobody waits longer than ``lock_timeout``: past it a waiter computes on
  its own.
* **XFetch** (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede
  Prevention", VLDB 2015): a value stored with the time its computation took (``delta``)
  and its expiry is recomputed early, with a probability that grows as expiry nears:
  ``now - delta * beta * log(random()) >= expiry``. The early caller takes the lock without
  waiting; if someone else holds it, it returns the value it has. So a hot key is usually
  refreshed before it expires and nobody waits at all.

The logic is written once, as a plan: a generator that yields cache operations, ``COMPUTE``
and ``Sleep`` requests; ``drive_sync`` and ``drive_async`` run it with the one driver
(``djredis._core.driver``): blocking I/O and ``time.sleep``, or the event loop with
``asyncio.sleep`` and an awaited computation. Its operations go through the cache's
``runner`` (its topology, behind its near-cache's write watch) with a policy that raises
connection errors to the plan; every request's exception is thrown into the plan.
When Redis cannot be reached the plan fails open: it computes the value directly and logs
the burst once (``memoize``), or follows the cache's IGNORE_EXCEPTIONS (``get_or_set``).
The computation's own exceptions reach the plan wrapped (``_Failed``), so a function that
raises ``redis.ConnectionError`` itself is never taken for Redis being away (and run again).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

from djredis._core.commands import Call, Eval, Operation
from djredis._core.driver import adrive, drive
from djredis._core.errors import CONNECTION_ERRORS, BurstLogger, ErrorPolicy
from djredis._core.scripts import lua
from djredis.cache.base import MISSING, CacheBase, Runner
from djredis.cache.codec import UndecodableValue

__all__ = [
    "COMPUTE",
    "Plan",
    "RecomputeError",
    "Sleep",
    "Stampede",
    "drive_async",
    "drive_sync",
    "failures_key",
    "lock_key",
    "plan",
    "resolve",
]

logger = logging.getLogger("djredis.cache")
# One burst logger per cache and kind of event, so one cache's failures never hide another's.
_logs: weakref.WeakKeyDictionary[CacheBase, dict[str, BurstLogger]] = weakref.WeakKeyDictionary()
_logs_lock = threading.Lock()


def _log(cache: CacheBase, kind: str) -> BurstLogger:
    with _logs_lock:
        per_cache = _logs.setdefault(cache, {})
        if kind not in per_cache:
            per_cache[kind] = BurstLogger(logger)
        return per_cache[kind]


# Operations in a plan raise connection errors to the plan, which decides (fail open or not).
# One such runner per cache: its policy's ``where`` names the cache (``CACHES['default']``),
# so that tracing and metrics label the plan's operations with the cache's alias.
_raising: weakref.WeakKeyDictionary[CacheBase, Runner] = weakref.WeakKeyDictionary()


def _runner(cache: CacheBase) -> Runner:
    found = _raising.get(cache)
    if found is None:
        own = cache.runner
        policy = ErrorPolicy(ignore=False, logger=logger, where=own.policy.where)
        with _logs_lock:
            found = _raising.setdefault(cache, Runner(own.executor, policy))
    return found


@dataclass(frozen=True, slots=True)
class Stampede:
    """How a recomputation is protected. ``stampede=True`` means ``Stampede()``.

    ``lock_timeout``: seconds the recompute lock lives (and the longest anyone waits for
    it); ``beta``: XFetch's eagerness (0 turns early recomputation off, 1 is the paper's
    optimum, larger recomputes earlier); ``poll``: the shortest pause between two looks at
    the key while another caller computes (then a tenth of the time waited so far, at most
    ``max_poll``).
    """

    lock_timeout: float = 10.0
    beta: float = 1.0
    poll: float = 0.002
    max_poll: float = 0.05

    def __post_init__(self) -> None:
        for name in ("lock_timeout", "poll", "max_poll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Stampede({name}=...) must be a number of seconds > 0.")
        if isinstance(self.beta, bool) or not isinstance(self.beta, int | float) or self.beta < 0:
            raise ValueError("Stampede(beta=...) must be a number >= 0.")


def resolve(stampede: bool | Stampede | None) -> Stampede | None:
    """Return the protection ``stampede=`` asks for (None: off); TypeError for others."""
    if stampede is True:
        return DEFAULT
    if stampede is False or stampede is None:
        return None
    if isinstance(stampede, Stampede):
        return stampede
    raise TypeError(
        f"stampede must be True, False or a djredis.cache.Stampede, not {type(stampede).__name__}."
    )


DEFAULT = Stampede()


class _Compute:
    """The plan asks its driver to run the computation; it gets (value, seconds) back."""

    __slots__ = ()


COMPUTE = _Compute()


@dataclass(frozen=True, slots=True)
class Sleep:
    """The plan asks its driver to pause (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


class RecomputeError(Exception):
    """Raised to the callers that waited while the value of ``key`` failed to compute twice.

    The first failure of the caller holding the recompute lock releases every waiter; one
    of them takes the lock and tries again. When that attempt fails too, the callers still
    waiting raise this at once rather than each running the failing computation in turn.
    (The callers that ran the computation raise its own exception.) ``error`` names the
    type of the last failure, e.g. ``"builtins.RuntimeError"``.
    """

    def __init__(self, key: str, error: str) -> None:
        self.key = key
        self.error = error
        super().__init__(
            f"The value of {key!r} failed to compute twice in other callers while this one "
            f"waited for it (last error: {error or 'unknown'}); not computed again here."
        )


class _Failed(Exception):
    """The computation's exception, on its way through the plan to the driver that raises
    it: the plan's ``except CONNECTION_ERRORS`` (Redis is away) cannot catch it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


Step = Operation[Any] | _Compute | Sleep
Plan = Generator[Step, Any, Any]
# How a stored entry reads: (value, seconds its computation took, expiry as a Unix time).
Unwrap = Callable[[Any], tuple[Any, float, float | None]]
Wrap = Callable[[Any, float, float | None], Any]


def lock_key(full_key: str) -> str:
    """Return the recompute lock's key: same hash slot, and a NUL no user key has (Django
    warns about control characters in keys)."""
    return f"{full_key}:\x00lock"


def failures_key(full_key: str) -> str:
    """Return the key counting failed recomputations of ``full_key`` (``lock_key``'s rules)."""
    return f"{full_key}:\x00fail"


def plain(value: Any) -> tuple[Any, float, float | None]:
    """Unwrap a value stored as is (``get_or_set``): no XFetch data."""
    return value, 0.0, None


def store_plain(value: Any, delta: float, expiry: float | None) -> Any:
    return value


def plan(
    cache: CacheBase,
    full_key: str,
    timeout: Any,
    protection: Stampede | None,
    *,
    unwrap: Unwrap = plain,
    wrap: Wrap = store_plain,
    fail_open: bool = True,
    name: str = "memoize",
) -> Plan:
    """Return the value at ``full_key``, recomputing it under the lock when needed."""
    computed: list[Any] = []
    try:
        stored = yield _read(cache, full_key)
        if stored is not MISSING:
            try:
                value, delta, expiry = unwrap(stored)
            except UndecodableValue as exc:  # not what this caller stores: recompute
                cache._log_garbage(full_key, exc)
                return (yield from _refresh(cache, full_key, None, "", timeout, wrap, computed))
            if protection is None or not _early(delta, expiry, protection.beta):
                return value
            token = _token()
            lock = lock_key(full_key)
            if not (yield _take(lock, token, protection)):
                return value  # another caller is refreshing it; this one is still good
            return (
                yield from _refresh(
                    cache, full_key, lock, token, timeout, wrap, computed, _lock_ms(protection)
                )
            )
        if protection is None:
            return (yield from _refresh(cache, full_key, None, "", timeout, wrap, computed))
        return (
            yield from _claim_or_wait(cache, full_key, timeout, protection, unwrap, wrap, computed)
        )
    except CONNECTION_ERRORS as exc:
        if not fail_open:
            raise
        _log(cache, "fail open").log(
            logging.WARNING,
            "djredis: %s on %s could not reach Redis (%s: %s); the value is computed "
            "without the cache",
            name,
            cache._where,
            type(exc).__name__,
            exc,
        )
        if computed:
            return computed[0]
        value, _ = yield COMPUTE
        return value


def _claim_or_wait(
    cache: CacheBase,
    full_key: str,
    timeout: Any,
    protection: Stampede,
    unwrap: Unwrap,
    wrap: Wrap,
    computed: list[Any],
) -> Plan:
    token, lock = _token(), lock_key(full_key)
    give_up = time.monotonic() + protection.lock_timeout
    keys = (full_key, lock, failures_key(full_key))
    count: Any = ""  # the failure count at the last look ('' before the first)
    seen: Any = 0  # failures seen since this caller began waiting
    while True:
        claim = Eval(lua("stampede_claim"), keys, (token, _lock_ms(protection), count, seen))
        reply = yield _run_one(claim)
        if reply[0] == 1:
            try:
                return unwrap(cache._codec.decode(reply[1]))[0]
            except UndecodableValue as exc:
                # Garbage at the key: it would be there on every look, so compute now.
                cache._log_garbage(full_key, exc)
                return (yield from _refresh(cache, full_key, None, "", timeout, wrap, computed))
        count, seen = int(reply[1]), int(reply[2])
        if reply[0] == 3:
            raise RecomputeError(full_key, _text(reply[3]))
        if reply[0] == 2:
            return (
                yield from _refresh(
                    cache, full_key, lock, token, timeout, wrap, computed, _lock_ms(protection)
                )
            )
        if time.monotonic() >= give_up:
            _log(cache, "wait").log(
                logging.WARNING,
                "djredis: %r on %s is still being recomputed by another caller after %ss; "
                "computing it here as well",
                full_key,
                cache._where,
                protection.lock_timeout,
            )
            return (yield from _refresh(cache, full_key, None, "", timeout, wrap, computed))
        # Look again soon, then less often: a tenth of the time waited so far, so the
        # value is seen at most ~10% (or max_poll) after it is stored.
        waited = protection.lock_timeout - (give_up - time.monotonic())
        yield Sleep(min(max(protection.poll, waited / 10), protection.max_poll))


def _refresh(
    cache: CacheBase,
    full_key: str,
    lock: str | None,
    token: str,
    timeout: Any,
    wrap: Wrap,
    computed: list[Any],
    lock_ms: int = 0,
) -> Plan:
    """Compute the value, store it and release the lock (if held) in one script."""
    try:
        value, delta = yield COMPUTE
        computed.append(value)
        ms = cache._ms(timeout)
        expiry = None if ms is None else time.time() + ms / 1000
        data = None if ms == 0 else _encode(cache, value, wrap(value, delta, expiry))
    except BaseException as exc:
        if lock is not None:
            # An exception is a failure the waiters learn of; a cancelled caller (a
            # BaseException) only gives the lock back, for the next waiter to take.
            failure = _type_name(exc) if isinstance(exc, Exception) else ""
            yield from _release(full_key, lock, token, failure, lock_ms)
        raise
    if data is None:  # a timeout of 0: nothing to store
        if lock is not None:
            yield from _release(full_key, lock, token, "", lock_ms)
    elif lock is None:
        args: tuple[Any, ...] = ("SET", full_key, data) + (() if ms is None else ("PX", ms))
        yield _run_one(Call(args))
    else:
        fill = Eval(lua("stampede_fill"), (full_key, lock), (data, ms or 0, token))
        yield _run_one(fill)
    return value


def _encode(cache: CacheBase, value: Any, stored: Any) -> bytes | int:
    try:
        return cache._codec.encode(stored)
    except TypeError:
        if stored is not value:
            cache._codec.encode(value)  # the error names the result's type, not the entry's
        raise


def _release(full_key: str, lock: str, token: str, failure: str, lock_ms: int) -> Plan:
    """Release the lock and count a failure (``failure``: its type, or ''); if Redis is
    away the lock expires on its own, and the caller's own error is the one to report."""
    # The count outlives any waiter's wait (lock_timeout), so none misses it by expiry.
    args = (token, failure, 2 * max(lock_ms, 1))
    with contextlib.suppress(*CONNECTION_ERRORS):
        yield _run_one(Eval(lua("stampede_release"), (lock, failures_key(full_key)), args))


def _type_name(exc: BaseException) -> str:
    error = exc.error if isinstance(exc, _Failed) else exc
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def _text(raw: Any) -> str:
    """A failure's type as stored (bytes from Redis: untrusted, only ever shown)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text[:200]


def _early(delta: float, expiry: float | None, beta: float) -> bool:
    """XFetch: whether to recompute now, before ``expiry``."""
    if expiry is None or beta == 0 or delta <= 0:
        return False
    return time.time() - delta * beta * math.log(1.0 - random.random()) >= expiry


def _read(cache: CacheBase, key: str) -> Operation[Any]:
    raw = yield Call(("GET", key), False)
    return MISSING if raw is None else cache._decode(raw, key, MISSING)


def _take(lock: str, token: str, protection: Stampede) -> Operation[bool]:
    return bool((yield Call(("SET", lock, token, "NX", "PX", _lock_ms(protection)))))


def _run_one(command: Call | Eval) -> Operation[Any]:
    return (yield command)


def _lock_ms(protection: Stampede) -> int:
    return max(1, round(protection.lock_timeout * 1000))


def _token() -> str:
    return os.urandom(16).hex()


# -- drivers ----------------------------------------------------------------------------

# Every request's exception goes to the plan: it releases the lock, or fails open.
_EVERYTHING: tuple[type[BaseException], ...] = (BaseException,)


def drive_sync(cache: CacheBase, steps: Plan, compute: Callable[[], Any], name: str) -> Any:
    """Run a plan with blocking I/O; ``compute()`` returns the value."""
    runner = _runner(cache)

    def step(request: Step) -> Any:
        if isinstance(request, _Compute):
            started = time.perf_counter()
            try:
                value = compute()
            except Exception as exc:
                raise _Failed(exc) from None
            return value, time.perf_counter() - started
        if isinstance(request, Sleep):
            time.sleep(request.seconds)
            return None
        return runner.run(request, name)

    try:
        return drive(steps, step, _EVERYTHING)
    except _Failed as failed:  # the computation's own exception, as it was raised
        original = failed.error
    raise original


async def drive_async(
    cache: CacheBase, steps: Plan, compute: Callable[[], Awaitable[Any] | Any], name: str
) -> Any:
    """Run a plan on the running loop; ``compute()`` may return an awaitable."""
    runner = _runner(cache)

    async def step(request: Step) -> Any:
        if isinstance(request, _Compute):
            started = time.perf_counter()
            try:
                value = compute()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                raise _Failed(exc) from None
            return value, time.perf_counter() - started
        if isinstance(request, Sleep):
            await asyncio.sleep(request.seconds)
            return None
        return await runner.arun(request, name)

    try:
        return await adrive(steps, step, _EVERYTHING)
    except _Failed as failed:
        original = failed.error
    raise original
