"""Decide whether a request may pass: one atomic script on Redis, one round trip.

A ``Rule`` (key, rate, algorithm, methods, group, fail_open) is checked once when built;
``Rule.check(request)`` / ``await Rule.acheck(request)`` return a ``Result`` (or None when
the rule does not apply). The decision is one ``EVALSHA`` on the server's clock: the same
operation drives the sync and the async runner, which differ only in I/O.
``is_ratelimited`` and ``get_usage`` are django-ratelimit's helpers, with its arguments.

As in django-ratelimit, a rate of ``None`` is no limit (nothing is counted), a count of 0
refuses every request (Redis is not asked), and the counter of a rule that counts some
methods only is its own: a GET-only and a POST-only rule never share a count. When Redis
gives no decision (down, timed out, an error reply) the rule fails closed, refusing, unless
``fail_open`` or ``RATELIMIT_FAIL_OPEN`` says to admit.
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
from redis.exceptions import RedisError

from djredis._core import observe
from djredis._core.commands import Eval, Operation
from djredis._core.errors import BurstLogger
from djredis._core.scripts import lua
from djredis._routing.base import Topology, run_async, run_sync
from djredis.ratelimit.conf import conf
from djredis.ratelimit.keys import KeyFunction, akey_value, key_value, resolve_key
from djredis.ratelimit.rates import Rate, parse_rate
from djredis.ratelimit.store import (
    RAISE,
    cache_alias,
    decision_failed,
    logger,
    topology_for,
    topology_of,
)

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
# django-ratelimit spells "every method" (None,); code passing its constant keeps working.
_ALL_SPELLINGS: tuple[Any, ...] = (None, (None,), [None], "ALL")
# How long a client refused for want of a decision is told to wait.
UNDECIDED_RETRY_AFTER = 1.0
ALGORITHMS = ("sliding", "fixed", "gcra")

RateSpec = str | tuple[int, float] | Rate | Callable[[str, HttpRequest], Any] | None


@dataclass(frozen=True, slots=True)
class Result:
    """One decision. Times are in seconds.

    ``reset_after``: until the whole limit is available again; ``retry_after``: until the
    next hit would pass (0 when this one passed). ``unavailable``: Redis gave no decision,
    and ``allowed`` is the rule's ``fail_open`` (``retry_after`` 1 s when refused).
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

    def usage(self) -> dict[str, Any] | None:
        """Return django-ratelimit's ``get_usage`` dict for this decision.

        Without a decision from Redis, django-ratelimit's answers: None when failing open,
        ``should_limit`` with a limit of 0 and ``time_left`` -1 when failing closed.
        """
        if self.unavailable:
            if self.allowed:
                return None
            return {"count": 0, "limit": 0, "should_limit": True, "time_left": -1}
        count = self.limit - self.remaining + (0 if self.allowed else 1)
        return {
            "count": count,
            "limit": self.limit,
            "should_limit": not self.allowed,
            "time_left": math.ceil(self.reset_after),
        }


def _counter_key(
    prefix: str, algorithm: str, group: str, count: int, period_us: int, value: str, methods: str
) -> str:
    """The key of one counter.

    As in django-ratelimit, a rule for some methods only counts on its own: the methods go
    before everything a client controls, so no value can make two rules' keys meet.
    """
    kind = f"{algorithm}:{methods}" if methods else algorithm
    ident = f"{kind}\0{group}\0{count}/{period_us}\0{value}"
    # The client's value is hashed, so no header or parameter can name another key;
    # the hash tag keeps each decision in one Cluster slot.
    return f"{prefix}{{{hashlib.sha256(ident.encode()).hexdigest()[:40]}}}"


# The busiest keys are remembered; only short values, so that clients sending megabyte
# usernames cannot make this process keep thousands of them.
_remembered_key = functools.lru_cache(maxsize=4096)(_counter_key)
REMEMBERED_VALUE_LENGTH = 256


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
    if any(method is spelling or method == spelling for spelling in _ALL_SPELLINGS):
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
        cache: Any = None,
    ) -> None:
        if key is None and rate is not None:
            raise ImproperlyConfigured("A rate limit needs a key ('ip', 'user', ...).")
        # No key is fine with no rate: django-ratelimit decides "no limit" before the key.
        self.key: str | KeyFunction | None = None if key is None else resolve_key(key)
        self._rate: Rate | Callable[[str, HttpRequest], Any] | None
        if callable(rate) and not isinstance(rate, Rate):
            self._rate = rate
        elif isinstance(rate, str) and "." in rate and "/" not in rate:
            self._rate = import_string(rate)  # django-ratelimit: a dotted path to rate(g, r)
        elif rate is None:
            self._rate = None  # django-ratelimit: "no limit"; nothing is counted
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
        self._methods_tag = "" if self.methods is None else ",".join(sorted(self.methods))
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
        make = _remembered_key if len(value) <= REMEMBERED_VALUE_LENGTH else _counter_key
        return make(
            conf().prefix,
            self.algorithm,
            group,
            rate.count,
            rate.period_us,
            value,
            self._methods_tag,
        )

    def _key(self, group: str) -> str | KeyFunction:
        if self.key is None:  # a rate callable gave a rate to a rule built without a key
            raise ImproperlyConfigured(
                f"Rate limit group {group!r} has a rate but no key ('ip', 'user', ...)."
            )
        return self.key

    def _topology(self) -> Topology | None:
        cache = self.cache
        if cache is None:
            return topology_for(cache_alias())
        if isinstance(cache, str):
            return topology_for(cache, "cache")
        return topology_of(cache, f"cache {cache!r}")  # a cache object (DRF's ``cache``)

    def _operation(
        self, group: str, value: str, rate: Rate, increment: bool, now_us: int | None
    ) -> Operation[Any]:
        burst = self.burst or rate.count
        args = (rate.count, rate.period_us, int(increment), "" if now_us is None else now_us, burst)
        return (yield Eval(self._script, (self.redis_key(group, value, rate),), args))

    def _refuse_all(self, rate: Rate, group: str) -> Result:
        """A count of 0: every request is refused, and Redis has nothing to count."""
        period = float(rate.seconds)
        if observe.hooks is not None:
            observe.rate_limit_decided(group, "limited")
        return Result(False, 0, 0, period, period, rate, self.algorithm, group)

    def _undecided(self, exc: Exception, rate: Rate, group: str) -> Result:
        fails_open = self._fails_open()
        decision_failed(exc, group, fails_open)
        retry_after = 0.0 if fails_open else UNDECIDED_RETRY_AFTER
        if observe.hooks is not None:
            observe.rate_limit_decided(group, "failed_open" if fails_open else "failed_closed")
        return Result(
            fails_open, rate.count, 0, 0.0, retry_after, rate, self.algorithm, group, True
        )

    def _result(self, reply: Any, rate: Rate, group: str) -> Result:
        allowed, remaining, reset_us, retry_us, garbage = map(int, reply)
        if garbage:
            self._garbage.log(
                logging.WARNING,
                "djredis.ratelimit: the counter of group %r held data it did not write; reset",
                group,
            )
        limit = (self.burst or rate.count) if self.algorithm == "gcra" else rate.count
        if observe.hooks is not None:
            observe.rate_limit_decided(group, "allowed" if allowed else "limited")
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
        if rate.count == 0:
            return self._refuse_all(rate, group)
        value = key_value(self._key(group), group, request)
        return self.decide(value, group, rate, increment=increment, _now_us=_now_us)

    def decide(
        self,
        value: str,
        group: str,
        rate: Rate,
        *,
        increment: bool = True,
        _now_us: int | None = None,
    ) -> Result | None:
        """Decide for a value found by the caller (DRF throttles find their own).

        None when the cache is a ``DummyCache`` (rate limiting is off).
        """
        if rate.count == 0:
            return self._refuse_all(rate, group)
        topology = self._topology()
        if topology is None:
            return None
        op = self._operation(group, value, rate, increment, _now_us)
        try:
            reply = run_sync(topology, op, RAISE, group, None)
        except RedisError as exc:
            return self._undecided(exc, rate, group)
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
        if rate.count == 0:
            return self._refuse_all(rate, group)
        value = await akey_value(self._key(group), group, request)
        return await self.adecide(value, group, rate, increment=increment, _now_us=_now_us)

    async def adecide(
        self,
        value: str,
        group: str,
        rate: Rate,
        *,
        increment: bool = True,
        _now_us: int | None = None,
    ) -> Result | None:
        """``decide`` for async code."""
        if rate.count == 0:
            return self._refuse_all(rate, group)
        topology = self._topology()
        if topology is None:
            return None
        op = self._operation(group, value, rate, increment, _now_us)
        try:
            reply = await run_async(topology, op, RAISE, group, None)
        except RedisError as exc:
            return self._undecided(exc, rate, group)
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


# django-ratelimit's spellings: ``is_ratelimited.ALL``, ``get_usage.UNSAFE``, ...
for _helper in (is_ratelimited, ais_ratelimited, get_usage, aget_usage):
    setattr(_helper, "ALL", ALL)  # noqa: B010 (functions take attributes; mypy says no)
    setattr(_helper, "UNSAFE", UNSAFE)  # noqa: B010
