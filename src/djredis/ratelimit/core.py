"""Decide whether a request may pass: one atomic script on Redis, one round trip.

A ``Rule`` (key, rate, algorithm, methods, group, fail_open) is checked once when built;
``Rule.check(request)`` / ``await Rule.acheck(request)`` return a ``Result`` (or None when
the rule does not apply). The decision is one ``EVALSHA`` on the server's clock: the same
operation drives the sync and the async runner, which differ only in I/O.
``is_ratelimited`` and ``get_usage`` are django-ratelimit's helpers, with its arguments.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from djredis._core.commands import Eval, Operation
from djredis._core.errors import BurstLogger
from djredis._core.scripts import lua
from djredis._routing.base import run_async, run_sync
from djredis.ratelimit.conf import conf
from djredis.ratelimit.keys import KeyFunction, akey_value, key_value, resolve_key
from djredis.ratelimit.rates import Rate, parse_rate
from djredis.ratelimit.store import UNAVAILABLE, cache_alias, logger, topology_for

__all__ = [
    "ALGORITHMS",
    "ALL",
    "UNSAFE",
    "Result",
    "Rule",
    "aget_usage",
    "ais_ratelimited",
    "get_usage",
    "group_name",
    "is_ratelimited",
]

ALL = None
UNSAFE = ("DELETE", "PATCH", "POST", "PUT")
ALGORITHMS = ("sliding", "fixed", "gcra")

RateSpec = str | tuple[int, float] | Rate | Callable[[str, HttpRequest], Any] | None


@dataclass(frozen=True, slots=True)
class Result:
    """One decision. Times are in seconds.

    ``reset_after``: until the whole limit is available again; ``retry_after``: until the
    next hit would pass (0 when this one passed). ``unavailable``: Redis could not be
    reached, and ``allowed`` is the rule's ``fail_open``.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    rate: Rate
    algorithm: str
    group: str
    unavailable: bool = False

    @property
    def limited(self) -> bool:
        """Whether the request should be refused."""
        return not self.allowed

    def usage(self) -> dict[str, Any]:
        """Return django-ratelimit's ``get_usage`` dict for this decision."""
        count = self.limit - self.remaining + (0 if self.allowed else 1)
        return {
            "count": count,
            "limit": self.limit,
            "should_limit": not self.allowed,
            "time_left": math.ceil(self.reset_after),
        }


@functools.lru_cache(maxsize=4096)
def _redis_key(
    prefix: str, algorithm: str, group: str, count: int, period_us: int, value: str
) -> str:
    """The key of one counter (pure, so the busiest ones are remembered)."""
    ident = f"{algorithm}\0{group}\0{count}/{period_us}\0{value}"
    # The client's value is hashed, so no header or parameter can name another key;
    # the hash tag keeps each decision in one Cluster slot.
    return f"{prefix}{{{hashlib.sha256(ident.encode()).hexdigest()[:40]}}}"


def group_name(fn: Any) -> str:
    """Return django-ratelimit's default group for a view: its dotted name."""
    if isinstance(fn, functools.partial):
        fn = fn.func
    parts = [getattr(fn, "__module__", None) or ""]
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, type):
        parts.append(type(owner).__name__)
    parts.append(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn)))
    return ".".join(part for part in parts if part)


def _methods(method: Any) -> frozenset[str] | None:
    if method is ALL or method == "ALL":
        return None
    if isinstance(method, str):
        method = (method,)
    if not isinstance(method, Sequence | frozenset | set) or not all(
        isinstance(m, str) for m in method
    ):
        raise TypeError(f"method must be ALL, UNSAFE, a method name or a list, not {method!r}")
    return frozenset(m.upper() for m in method)


class Rule:
    """A validated rate limit: key, rate, algorithm, methods, group and failure mode."""

    def __init__(
        self,
        *,
        key: Any,
        rate: RateSpec,
        algorithm: str = "sliding",
        method: Any = ALL,
        group: str | None = None,
        burst: int | None = None,
        fail_open: bool | None = None,
        cache: str | None = None,
    ) -> None:
        if key is None:
            raise ImproperlyConfigured("A rate limit needs a key ('ip', 'user', ...).")
        self.key: str | KeyFunction = resolve_key(key)
        self._rate: Rate | Callable[[str, HttpRequest], Any] | None
        if callable(rate) and not isinstance(rate, Rate):
            self._rate = rate
        elif isinstance(rate, str) and "." in rate and "/" not in rate:
            self._rate = import_string(rate)  # django-ratelimit: a dotted path to rate(g, r)
        elif rate is None:
            raise ImproperlyConfigured("A rate limit needs a rate ('100/m', (10, 5), ...).")
        else:
            try:
                self._rate = parse_rate(rate)
            except ValueError as exc:
                raise ImproperlyConfigured(f"Bad rate limit rate: {exc}") from None
        if algorithm not in ALGORITHMS:
            raise ImproperlyConfigured(
                f"Unknown rate limit algorithm {algorithm!r}: use 'sliding', 'fixed' or 'gcra'."
            )
        self.algorithm = algorithm
        self._script = lua(f"ratelimit_{algorithm}")
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 1
        ):
            raise ImproperlyConfigured(f"burst must be a whole number >= 1, not {burst!r}.")
        self.burst = burst
        self.methods = _methods(method)
        self.group = group
        if fail_open is not None and not isinstance(fail_open, bool):
            raise ImproperlyConfigured(f"fail_open must be True or False, not {fail_open!r}.")
        self.fail_open = fail_open
        self.cache = cache
        self._garbage = BurstLogger(logger)  # one log line per burst, per rule

    # -- what both paths share -------------------------------------------------------------

    def applies(self, request: HttpRequest) -> bool:
        """Whether the request's method is one this rule counts."""
        return self.methods is None or (request.method or "").upper() in self.methods

    def _rate_for(self, group: str, request: HttpRequest) -> Rate | None:
        if isinstance(self._rate, Rate) or self._rate is None:
            return self._rate
        found = self._rate(group, request)
        return None if found is None else parse_rate(found)

    def redis_key(self, group: str, value: str, rate: Rate) -> str:
        """Return the Redis key counting ``value`` in ``group`` at ``rate``."""
        return _redis_key(conf().prefix, self.algorithm, group, rate.count, rate.period_us, value)

    def _operation(
        self, group: str, value: str, rate: Rate, increment: bool, now_us: int | None
    ) -> Operation[Any]:
        burst = self.burst or rate.count
        args = (rate.count, rate.period_us, int(increment), "" if now_us is None else now_us, burst)
        return (yield Eval(self._script, (self.redis_key(group, value, rate),), args))

    def _result(self, reply: Any, rate: Rate, group: str) -> Result:
        if reply is None:
            return Result(
                self._fails_open(), rate.count, 0, 0.0, 0.0, rate, self.algorithm, group, True
            )
        allowed, remaining, reset_us, retry_us, garbage = map(int, reply)
        if garbage:
            self._garbage.log(
                logging.WARNING,
                "djredis.ratelimit: the counter of group %r held data it did not write; reset",
                group,
            )
        limit = (self.burst or rate.count) if self.algorithm == "gcra" else rate.count
        return Result(
            bool(allowed),
            limit,
            max(0, remaining),
            max(0, reset_us) / 1e6,
            max(0, retry_us) / 1e6,
            rate,
            self.algorithm,
            group,
        )

    def _fails_open(self) -> bool:
        return conf().fail_open if self.fail_open is None else self.fail_open

    def _failure_note(self, group: str) -> str:
        failing = "open (allowed)" if self._fails_open() else "closed (refused)"
        return f"rate limit group {group!r} fails {failing}"

    # -- sync and async --------------------------------------------------------------------

    def check(
        self,
        request: HttpRequest,
        group: str | None = None,
        *,
        increment: bool = True,
        _now_us: int | None = None,
    ) -> Result | None:
        """Count ``request`` (unless ``increment`` is False) and return the decision.

        None when the rule does not apply (method, ``RATELIMIT_ENABLE``, a rate of None).
        """
        group = group or self.group or "default"
        if not self.applies(request) or not conf().enable:
            return None
        rate = self._rate_for(group, request)
        if rate is None:
            return None
        value = key_value(self.key, group, request)
        topology = topology_for(self.cache or cache_alias())
        op = self._operation(group, value, rate, increment, _now_us)
        reply = run_sync(topology, op, UNAVAILABLE, self._failure_note(group), None)
        return self._result(reply, rate, group)

    async def acheck(
        self,
        request: HttpRequest,
        group: str | None = None,
        *,
        increment: bool = True,
        _now_us: int | None = None,
    ) -> Result | None:
        """``check`` for async code: the key and the decision never leave the event loop."""
        group = group or self.group or "default"
        if not self.applies(request) or not conf().enable:
            return None
        rate = self._rate_for(group, request)
        if rate is None:
            return None
        value = await akey_value(self.key, group, request)
        topology = topology_for(self.cache or cache_alias())
        op = self._operation(group, value, rate, increment, _now_us)
        reply = await run_async(topology, op, UNAVAILABLE, self._failure_note(group), None)
        return self._result(reply, rate, group)


# -- django-ratelimit's helpers ------------------------------------------------------------


def _rule_and_group(
    group: str | None, fn: Any, key: Any, rate: Any, method: Any, algorithm: str
) -> tuple[Rule, str]:
    if group is None and fn is None:
        raise ImproperlyConfigured("get_usage must be called with either `group` or `fn`.")
    rule = Rule(key=key, rate=rate, method=method, algorithm=algorithm)
    return rule, group if group is not None else group_name(fn)


def get_usage(
    request: HttpRequest,
    group: str | None = None,
    fn: Any = None,
    key: Any = None,
    rate: Any = None,
    method: Any = ALL,
    increment: bool = False,
    *,
    algorithm: str = "sliding",
) -> dict[str, Any] | None:
    """Return ``{"count", "limit", "should_limit", "time_left"}``, or None (rule not applied).

    Without ``increment``, ``should_limit`` says whether a hit now would be refused.
    """
    rule, group = _rule_and_group(group, fn, key, rate, method, algorithm)
    result = rule.check(request, group, increment=increment)
    return None if result is None else result.usage()


async def aget_usage(
    request: HttpRequest,
    group: str | None = None,
    fn: Any = None,
    key: Any = None,
    rate: Any = None,
    method: Any = ALL,
    increment: bool = False,
    *,
    algorithm: str = "sliding",
) -> dict[str, Any] | None:
    """``get_usage`` for async views."""
    rule, group = _rule_and_group(group, fn, key, rate, method, algorithm)
    result = await rule.acheck(request, group, increment=increment)
    return None if result is None else result.usage()


def is_ratelimited(
    request: HttpRequest,
    group: str | None = None,
    fn: Any = None,
    key: Any = None,
    rate: Any = None,
    method: Any = ALL,
    increment: bool = False,
    *,
    algorithm: str = "sliding",
) -> bool:
    """Return whether ``request`` is over the limit (django-ratelimit's helper)."""
    usage = get_usage(request, group, fn, key, rate, method, increment, algorithm=algorithm)
    return bool(usage and usage["should_limit"])


async def ais_ratelimited(
    request: HttpRequest,
    group: str | None = None,
    fn: Any = None,
    key: Any = None,
    rate: Any = None,
    method: Any = ALL,
    increment: bool = False,
    *,
    algorithm: str = "sliding",
) -> bool:
    """``is_ratelimited`` for async views."""
    usage = await aget_usage(request, group, fn, key, rate, method, increment, algorithm=algorithm)
    return bool(usage and usage["should_limit"])
