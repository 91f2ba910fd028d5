"""django-ratelimit 4.1's documented behaviour, after changing only the import.

Each test links the line of django-ratelimit's documentation it holds djredis to
(https://github.com/jsocol/django-ratelimit/tree/v4.1.0/docs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

import djredis.ratelimit
from djredis.ratelimit import (
    Ratelimited,
    Rule,
    get_usage,
    is_ratelimited,
    ratelimit,
)
from djredis.ratelimit.middleware import RatelimitMiddleware
from tests._topologies import Topology

USAGE = "https://github.com/jsocol/django-ratelimit/blob/v4.1.0/docs/usage.rst"
RATES = "https://github.com/jsocol/django-ratelimit/blob/v4.1.0/docs/rates.rst"


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@ratelimit(key="ip", rate="1/m", group="raising")
def limited_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


seen: list[Exception] = []


def ratelimited_page(request: HttpRequest, exception: Exception) -> HttpResponse:
    seen.append(exception)
    return HttpResponse("custom", status=403)


urlpatterns = [path("limited/", limited_view)]


def test_all_and_unsafe_are_where_django_ratelimit_documents_them(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """ "both accessible from the ``ratelimit`` decorator or the ``is_ratelimited`` helper,
    as well as on the root ``ratelimit`` module" (usage.rst, "HTTP Methods")."""
    unsafe = {"DELETE", "PATCH", "POST", "PUT"}
    for holder in (ratelimit, is_ratelimited, get_usage, djredis.ratelimit):
        assert set(holder.UNSAFE) == unsafe  # type: ignore[attr-defined]
        assert hasattr(holder, "ALL")
    view = ratelimit(key="ip", rate="1/m", method=is_ratelimited.UNSAFE)(ok)  # type: ignore[attr-defined]
    assert [view(make_request()).status_code for _ in range(3)] == [200] * 3
    assert [view(make_request(method="POST")).status_code for _ in range(2)] == [200, 429]
    # django-ratelimit's own constant, ALL = (None,), is understood too.
    everything = ratelimit(key="ip", rate="1/m", method=(None,), group="all")(ok)
    assert [everything(make_request(method=m)).status_code for m in ("GET", "PUT")] == [200, 429]


@pytest.mark.parametrize(
    "rate",
    ["0/m", lambda group, request: "0/s", lambda group, request: (0, 1)],
    ids=["0/m", "callable 0/s", "callable (0, 1)"],
)
def test_a_rate_of_zero_disallows_all_requests(
    on_redis: Topology, make_request: Callable[..., HttpRequest], rate: Any
) -> None:
    """ "A rate of ``0/s`` disallows all requests" (usage.rst, ``rate``); "Callables can
    return ``0`` in the first place to disallow any requests (e.g.: ``0/s``, ``(0, 60)``)"
    (rates.rst, "Callables")."""
    view = ratelimit(key="ip", rate=rate)(ok)
    refused = view(make_request())
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1

    async def aok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    aview = ratelimit(key="ip", rate=rate)(aok)
    assert asyncio.run(aview(make_request())).status_code == 429
    assert is_ratelimited(make_request(), group="zero", key="ip", rate=rate, increment=True)
    assert on_redis.client().dbsize() == 0  # nothing to count


def test_a_rate_of_none_means_no_limit(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """ "A rate of ``None`` means "no limit" and will allow all requests" (usage.rst,
    ``rate``); "Usage will not be tracked" (rates.rst)."""
    view = ratelimit(key="ip", rate=None)(ok)
    responses = [view(make_request()) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert "RateLimit" not in responses[-1]
    assert get_usage(make_request(), group="none", key="ip", rate=None, increment=True) is None
    assert not is_ratelimited(make_request(), group="none", key="ip", rate=None, increment=True)
    assert ratelimit(rate=None)(ok)(make_request()).status_code == 200  # no key needed either
    assert on_redis.client().dbsize() == 0


def test_rules_for_different_methods_count_apart(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """django-ratelimit puts the methods a rule counts into its cache key (core.py,
    ``_make_cache_key``), so a GET-only and a POST-only rule on one view do not share a
    count; usage.rst ("HTTP Methods") stacks such rules."""

    @ratelimit(key="ip", rate="1/m", method="GET")
    @ratelimit(key="ip", rate="1/m", method="POST")
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    codes = [view(make_request(method=m)).status_code for m in ("GET", "POST", "GET", "POST")]
    assert codes == [200, 200, 429, 429]
    args = {"group": "login", "key": "ip", "rate": "1/m", "increment": True}
    get, post = make_request(), make_request(method="POST")
    assert (
        is_ratelimited(get, method="GET", **args),
        is_ratelimited(post, method="POST", **args),
    ) == (False, False)


def test_an_unknown_cache_alias_raises_invalid_cache_backend_error(
    on_redis: Topology, make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    """Django's ``caches[alias]`` raises ``InvalidCacheBackendError`` for an unknown alias,
    which django-ratelimit lets through (core.py, ``caches[cache_name]``); it is an
    ``ImproperlyConfigured``, what djredis raised before."""
    settings.RATELIMIT_USE_CACHE = "nope"
    with pytest.raises(InvalidCacheBackendError, match="'nope'"):
        ratelimit(key="ip", rate="1/m")(ok)(make_request())
    assert issubclass(InvalidCacheBackendError, ImproperlyConfigured)


def test_block_raises_ratelimited_when_django_ratelimits_settings_say_so(
    on_redis: Topology, settings: Any
) -> None:
    """ "If a request is ratelimited and ``block`` is set to ``True``, Ratelimit will raise
    ``ratelimit.exceptions.Ratelimited``" ... "a subclass of Django's ``PermissionDenied``
    ... the built-in 403 processing" (usage.rst, "Exceptions"); "``RATELIMIT_VIEW`` ... in
    conjunction with ``RatelimitMiddleware``" (settings.rst, usage.rst "Middleware")."""
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = []
    settings.RATELIMIT_EXCEPTION_CLASS = "djredis.ratelimit.Ratelimited"
    client = Client(REMOTE_ADDR="203.0.113.7")
    assert client.get("/limited/").status_code == 200
    assert client.get("/limited/").status_code == 403  # Django's handler for PermissionDenied

    settings.MIDDLEWARE = ["djredis.ratelimit.middleware.RatelimitMiddleware"]
    settings.RATELIMIT_VIEW = f"{__name__}.ratelimited_page"
    seen.clear()
    response = Client(REMOTE_ADDR="203.0.113.7").get("/limited/")  # a client loads MIDDLEWARE
    assert (response.status_code, response.content) == (403, b"custom")
    assert isinstance(seen[0], Ratelimited)
    assert seen[0].result is not None  # the decision travels with the exception
    assert seen[0].result.limited
    assert response["Retry-After"] == "60"


def test_ratelimit_middleware_is_django_ratelimits_class(
    make_request: Callable[..., HttpRequest], settings: Any
) -> None:
    """``django_ratelimit.middleware.RatelimitMiddleware`` passes requests through and
    answers ``Ratelimited`` with ``RATELIMIT_VIEW(request, exception)`` (usage.rst,
    "Middleware": "The view ... will get two arguments, the ``request`` object ... and the
    exception")."""
    settings.RATELIMIT_VIEW = f"{__name__}.ratelimited_page"
    middleware = RatelimitMiddleware(ok)
    request = make_request()
    assert middleware(request).content == b"ok"
    assert middleware.process_exception(request, ValueError()) is None
    raised = Ratelimited()
    seen.clear()
    response = middleware.process_exception(request, raised)
    assert response is not None
    assert response.content == b"custom"
    assert seen == [raised]
    assert djredis.ratelimit.RatelimitMiddleware is RatelimitMiddleware


def test_a_dummy_cache_enforces_no_limit_as_with_django_ratelimit(
    make_request: Callable[..., HttpRequest],
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """django-ratelimit on a DummyCache counts nothing (``cache.add`` "succeeds" every time,
    core.py ``get_usage``) and its check calls it "not a real cache" (checks.py). djredis
    decides the same: no limit, one log line, and the system check W002; a rate of 0 still
    refuses, as it does there."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    view = ratelimit(key="ip", rate="1/m")(ok)
    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        assert [view(make_request()).status_code for _ in range(5)] == [200] * 5
    lines = [r.getMessage() for r in caplog.records if r.name == "djredis.ratelimit"]
    assert len(lines) == 1
    assert "DummyCache" in lines[0]
    assert Rule(key="ip", rate="1/m").check(make_request()) is None
    assert ratelimit(key="ip", rate="0/m")(ok)(make_request()).status_code == 429


def test_a_missing_key_value_counts_under_the_empty_value(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """django-ratelimit reads an absent field as ``''`` (core.py: ``r.POST.get(k, '')``,
    ``request.META.get(key, '')``): every request without it shares one bucket, so leaving
    the field out is no way around the limit."""
    view = ratelimit(key="post:username", rate="2/m", method="POST")(ok)
    codes = [view(make_request(method="POST", ip=f"198.51.100.{n}")).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    header = ratelimit(key="header:x-api-key", rate="1/m", group="h")(ok)
    assert [header(make_request()).status_code for _ in range(2)] == [200, 429]
    with pytest.raises(ImproperlyConfigured, match="key"):
        ratelimit(rate="1/m")  # django-ratelimit: "Ratelimit key must be specified"
