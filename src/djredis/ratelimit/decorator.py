"""``@ratelimit``: django-ratelimit's decorator, exact and native on async views.

``@ratelimit(key="ip", rate="100/m")`` counts each request to the view; over the limit the
view is not called and a 429 (``RATELIMIT_VIEW``/``RATELIMIT_TEMPLATE``/text) with
``Retry-After`` is returned, or ``RATELIMIT_EXCEPTION_CLASS`` raised when set. With
``block=False`` the view runs and reads ``request.ratelimit`` (the ``Result``) and
``request.limited`` (django-ratelimit's flag). It decorates function views, ``async def``
views (the decision runs on the event loop, with no thread hop), methods through
``method_decorator``, and ``View`` subclasses directly (their ``dispatch``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest
from django.utils.decorators import method_decorator

from djredis.ratelimit.core import ALL, UNSAFE, Result, Rule, group_name
from djredis.ratelimit.responses import Ratelimited, add_headers, exception_class, refusal

__all__ = ["ratelimit"]

F = TypeVar("F", bound=Callable[..., Any])


def _record(request: HttpRequest, result: Result | None) -> None:
    """Keep the most restrictive decision on the request (decorators may be stacked)."""
    previous: Result | None = getattr(request, "ratelimit", None)
    if result is None:
        if not hasattr(request, "ratelimit"):
            request.ratelimit = None  # type: ignore[attr-defined]
        request.limited = getattr(request, "limited", False)  # type: ignore[attr-defined]
        return
    if (
        previous is None
        or result.limited
        or (not previous.limited and result.remaining < previous.remaining)
    ):
        request.ratelimit = result  # type: ignore[attr-defined]
    request.limited = result.limited or getattr(request, "limited", False)  # type: ignore[attr-defined]


def _refuse(request: HttpRequest, result: Result) -> Any:
    cls = exception_class()
    if cls is not None:  # django-ratelimit's behaviour: raise, for a handler to answer
        raise cls(result) if issubclass(cls, Ratelimited) else cls()
    return refusal(request, result)


def ratelimit(
    group: str | None = None,
    key: Any = None,
    rate: Any = None,
    method: Any = ALL,
    block: bool = True,
    *,
    algorithm: str = "sliding",
    burst: int | None = None,
    fail_open: bool | None = None,
    cache: str | None = None,
) -> Callable[[F], F]:
    """Limit a view to ``rate`` requests per ``key`` (django-ratelimit's arguments).

    ``algorithm``: ``"sliding"`` (exact, the default), ``"fixed"`` (django-ratelimit's
    windows, which let 2x the rate through around an edge) or ``"gcra"`` (a token bucket of
    ``burst``). ``rate=None`` is no limit and a count of 0 refuses all, as in
    django-ratelimit. ``fail_open``: what happens when Redis gives no decision
    (``RATELIMIT_FAIL_OPEN``, default False = refuse with 429, with a log line).
    ``cache``: another djredis cache alias.
    """
    rule = Rule(
        key=key,
        rate=rate,
        algorithm=algorithm,
        method=method,
        group=group,
        burst=burst,
        fail_open=fail_open,
        cache=cache,
    )

    def decorator(fn: F) -> F:
        if isinstance(fn, type):
            class_group = group or f"{fn.__module__}.{fn.__qualname__}"
            return _decorate_class(fn, lambda f: wrap(f, class_group))  # type: ignore[return-value]
        return wrap(fn, group or group_name(fn))

    def wrap(fn: F, view_group: str) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                result = await rule.acheck(request, view_group)
                _record(request, result)
                if result is not None and result.limited and block:
                    response = _refuse(request, result)
                    if inspect.isawaitable(response):
                        response = await response
                    return add_headers(response, result, refused=True)
                return add_headers(await fn(request, *args, **kwargs), result)

            return async_view  # type: ignore[return-value]

        @functools.wraps(fn)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            result = rule.check(request, view_group)
            _record(request, result)
            if result is not None and result.limited and block:
                return add_headers(_refuse(request, result), result, refused=True)
            return add_headers(fn(request, *args, **kwargs), result)

        return view  # type: ignore[return-value]

    return decorator


def _decorate_class(cls: type, decorator: Callable[[Any], Any]) -> type:
    """Limit a class-based view's ``dispatch`` (async when its handlers are)."""
    if getattr(cls, "view_is_async", False):
        original = cls.dispatch  # type: ignore[attr-defined]

        async def dispatch(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return await original(self, request, *args, **kwargs)

        functools.update_wrapper(dispatch, original)
        cls.dispatch = method_decorator(decorator)(dispatch)  # type: ignore[attr-defined]
        return cls
    decorated: type = method_decorator(decorator, name="dispatch")(cls)
    return decorated


ratelimit.ALL = ALL  # type: ignore[attr-defined]
ratelimit.UNSAFE = UNSAFE  # type: ignore[attr-defined]
