"""``RateLimitMiddleware``: a site-wide policy from settings, sync and async.

``RATELIMIT_RULES`` is a list of rules, each a dict: ``path`` (a regular expression matched
at the start of ``request.path_info``; default: every path), ``rate``, ``key`` (default
``"ip"``), and optionally ``algorithm``, ``method``, ``group`` (default: the path),
``burst``, ``fail_open``, ``cache``. Every rule whose path matches counts the request; the
first refusal answers 429. It also turns a raised ``Ratelimited`` into a 429 (what
django-ratelimit's ``RatelimitMiddleware`` does with ``RATELIMIT_VIEW``).

``RatelimitMiddleware`` (lower-case ``l``) is django-ratelimit's class under its name: it
counts nothing, and answers a raised ``Ratelimited`` (or ``RATELIMIT_EXCEPTION_CLASS``) with
``RATELIMIT_VIEW``, or with the 429 page when that setting is absent.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from djredis.ratelimit.core import Result, Rule
from djredis.ratelimit.responses import Ratelimited, add_headers, exception_class, refusal

__all__ = ["RateLimitMiddleware", "RatelimitMiddleware", "parse_rules"]

RULE_OPTIONS = {
    "path",
    "rate",
    "key",
    "algorithm",
    "method",
    "group",
    "burst",
    "fail_open",
    "cache",
}


def parse_rules(value: Any) -> list[tuple[re.Pattern[str], Rule]]:
    """Return ``RATELIMIT_RULES`` as (path pattern, rule) pairs; ``ImproperlyConfigured``
    naming the rule when one is wrong."""
    if value is None:
        return []
    if isinstance(value, Mapping | str) or not isinstance(value, list | tuple):
        raise ImproperlyConfigured("RATELIMIT_RULES must be a list of dicts.")
    rules = []
    for index, spec in enumerate(value):
        where = f"RATELIMIT_RULES[{index}]"
        if not isinstance(spec, Mapping):
            raise ImproperlyConfigured(f"{where} must be a dict, not {type(spec).__name__}.")
        unknown = set(spec) - RULE_OPTIONS
        if unknown:
            raise ImproperlyConfigured(
                f"{where} has unknown options {sorted(unknown)}; known: {sorted(RULE_OPTIONS)}."
            )
        path = spec.get("path", "")
        try:
            pattern = re.compile(path)
        except (re.error, TypeError) as exc:
            raise ImproperlyConfigured(
                f"{where}['path'] is not a regular expression: {exc}"
            ) from None
        try:
            rule = Rule(
                key=spec.get("key", "ip"),
                rate=spec.get("rate"),
                algorithm=spec.get("algorithm", "sliding"),
                method=spec.get("method"),
                group=spec.get("group") or f"middleware:{path}",
                burst=spec.get("burst"),
                fail_open=spec.get("fail_open"),
                cache=spec.get("cache"),
            )
        except (ImproperlyConfigured, TypeError) as exc:
            raise ImproperlyConfigured(f"{where}: {exc}") from None
        rules.append((pattern, rule))
    return rules


class RateLimitMiddleware:
    """Apply ``RATELIMIT_RULES`` to every request; 429 with ``Retry-After`` when over."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.rules = parse_rules(getattr(settings, "RATELIMIT_RULES", None))
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _matching(self, request: HttpRequest) -> list[Rule]:
        path = request.path_info
        return [rule for pattern, rule in self.rules if pattern.match(path)]

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        result: Result | None = None
        for rule in self._matching(request):
            decided = rule.check(request)
            if decided is not None and (result is None or decided.remaining < result.remaining):
                result = decided
            if decided is not None and decided.limited:
                return add_headers(refusal(request, decided), decided, refused=True)
        return add_headers(self.get_response(request), result)

    async def __acall__(self, request: HttpRequest) -> Any:
        result: Result | None = None
        for rule in self._matching(request):
            decided = await rule.acheck(request)
            if decided is not None and (result is None or decided.remaining < result.remaining):
                result = decided
            if decided is not None and decided.limited:
                response = refusal(request, decided)
                if inspect.isawaitable(response):
                    response = await response
                return add_headers(response, decided, refused=True)
        return add_headers(await self.get_response(request), result)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """Turn a ``Ratelimited`` raised by a view into the 429 page."""
        return _answer_raised(request, exception)


def _answer_raised(request: HttpRequest, exception: Exception) -> Any:
    """The page for a raised ``Ratelimited`` (or ``RATELIMIT_EXCEPTION_CLASS``), else None."""
    configured = exception_class()
    if not isinstance(exception, Ratelimited) and not (
        configured is not None and isinstance(exception, configured)
    ):
        return None
    result: Result | None = getattr(exception, "result", None)
    response = refusal(request, result, exception)
    if inspect.isawaitable(response):
        return None  # an async RATELIMIT_VIEW cannot answer here; Django's 403 does
    return add_headers(response, result, refused=result is not None)


class RatelimitMiddleware:
    """django-ratelimit's ``RatelimitMiddleware``: ``RATELIMIT_VIEW`` answers ``Ratelimited``.

    It counts nothing (``RateLimitMiddleware`` applies ``RATELIMIT_RULES``); put it toward
    the bottom of ``MIDDLEWARE``, as django-ratelimit says.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)  # a coroutine when the chain is async

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """Answer a raised ``Ratelimited`` with ``RATELIMIT_VIEW`` (else the 429 page)."""
        return _answer_raised(request, exception)
